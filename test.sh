#!/usr/bin/env bash
# Every check CI runs, in order. On a fresh Debian machine run it as root:
# it installs the routing daemons and tools the lab tests need first.
# Outside CI, tests that need root or a missing daemon skip with a reason;
# under CI (CI set to anything but empty, false, 0, no or off: the one
# rule, mooring_lab::ci) nothing skips: they fail instead.
set -euo pipefail
cd "$(dirname "$0")"

. integration/apt.sh
# frr brings zebra, bgpd and bfdd (the BFD tests); tshark the codec's
# Wireshark check and the benchmarks' clock; podman, runc, debootstrap and
# buildah build and run the image offline; prometheus brings promtool and
# curl scrapes a lab node's /metrics (the alert and dashboard check).
apt_install "test dependencies" \
  frr gobgpd bird2 iproute2 tshark nftables python3 python3-venv iputils-ping \
  podman runc debootstrap buildah prometheus curl

# Each stage prints how long it took, so a slow CI run shows where.
stage() {
  local name=$1 t0=$SECONDS
  shift
  echo "== $name"
  "$@"
  echo "== $name: $((SECONDS - t0)) s (total $SECONDS s)"
}
stage format cargo fmt --all --check
stage clippy cargo clippy --workspace --all-targets --locked -- -D warnings
stage tests cargo test --workspace --locked
stage helm bash helm/check.sh
stage "benches (micro-benchmarks once as tests, quick end-to-end run)" benches/all.sh --quick
stage fuzz bgp/fuzz/run.sh "${FUZZ_SECONDS:-60}"
echo "== all checks passed in $SECONDS s"
