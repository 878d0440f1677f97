#!/usr/bin/env bash
# Every check CI runs, in order. On a fresh Debian machine run it as root:
# it installs the routing daemons and tools the lab tests need first.
# Outside CI, tests that need root or a missing daemon skip with a reason;
# under CI (CI set to anything but empty, false, 0, no or off: the one
# rule, mooring_lab::ci) nothing skips: they fail instead.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing test dependencies (apt)"
  apt-get update -qq
  # frr brings zebra, bgpd and bfdd (the BFD tests); tshark the codec's
  # Wireshark check and the benchmarks' clock; podman, runc, debootstrap and
  # buildah build and run the image offline; prometheus brings promtool.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    frr gobgpd bird2 iproute2 tshark nftables python3 python3-venv iputils-ping \
    podman runc debootstrap buildah prometheus >/dev/null
fi

echo "== format";  cargo fmt --all --check
echo "== clippy";  cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests";   cargo test --workspace --locked
echo "== helm";    bash helm/check.sh
echo "== benches (micro-benchmarks once as tests, quick end-to-end run)"; benches/all.sh --quick
echo "== fuzz";    bgp/fuzz/run.sh "${FUZZ_SECONDS:-60}"
echo "== all checks passed"
