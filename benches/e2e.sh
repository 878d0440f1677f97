#!/usr/bin/env bash
# End-to-end benchmarks (issue 6) in network namespaces: builds the
# `mooring` CLI and the bench binaries (release) and runs them.
#   sudo benches/e2e.sh            full: every benchmark (announce throughput at
#                                  10k/100k/1M median of 3, receive 100k/1M,
#                                  change latency, failover, scale, cluster)
#   sudo benches/e2e.sh --quick    CI: small sizes, one run each (a few minutes)
# One benchmark or several: --bench throughput,receive,latency,failover,scale,central,probes,cluster.
# Other options: --sizes 10000,100000 --reps N --speakers mooring,gobgp,bird
# --receivers sink,frr --changes N --kinds endpoint,service (see benches/README.md);
# `--receive [--sizes ..] [--receivers ..]` runs benchmark 2 alone with its own options.
# Outside CI a missing daemon or non-root skips with a reason; under CI it
# fails. A harness error (panic, daemon that did not start, no samples)
# exits 1; a missed target is reported (MBENCH_STRICT=1 makes it exit 3).
# MBENCH_KEEP_LOGS=1 keeps the daemons' logs. The micro-benchmarks: cargo bench -p mooring-benches.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p mooring-agent --bin mooring -p mooring-benches --bin e2e --bin bgp-sink --bin bgp-recv --bin bgp-replay --bin kube-mock
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/e2e" "$@"
