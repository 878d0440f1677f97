#!/usr/bin/env bash
# Every benchmark of issue 6 with one command: the criterion
# micro-benchmarks (codec, model, Adj-RIB-Out diff), then the end-to-end
# set in network namespaces against GoBGP, BIRD and FRR (as root).
#   sudo benches/all.sh           full: criterion's measurements, then `benches/e2e.sh`
#   sudo benches/all.sh --quick   CI: each micro-benchmark run once as a test
#                                 (its assertions checked, nothing timed), then
#                                 `benches/e2e.sh --quick`
# Further arguments go to e2e.sh (see benches/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--quick" ]]; then
    cargo bench --locked -q -p mooring-benches --benches -- --test
else
    cargo bench --locked -p mooring-benches --benches
fi
exec benches/e2e.sh "$@"
