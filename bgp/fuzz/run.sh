#!/usr/bin/env bash
# Run every fuzz target of mooring-bgp for a bounded time.
#
#   bgp/fuzz/run.sh [SECONDS]     # per target, default 30
#
# Installs cargo-fuzz when it is missing. Builds with the nightly toolchain
# when rustup has one, else (or with FUZZ_STABLE=1) with the stable one and
# RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Zsanitizer flags). The seed corpus is made from the
# golden fixtures (bgp/tests/fixtures/*.hex) at each run; corpus/ and
# artifacts/ are not committed. Exits non-zero when a target crashes,
# after printing the crashing input in hex.
set -euo pipefail

secs="${1:-30}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS per target]" >&2; exit 2 ;; esac
cd "$(dirname "$0")"
fixtures=../tests/fixtures
targets=(decode_message frame)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ "${FUZZ_STABLE:-0}" != 1 ] && rustup run nightly rustc --version >/dev/null 2>&1; then
  cargo_fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  cargo_fuzz=(cargo fuzz)
fi

# --- seed corpus from the fixtures: lines "<label> <TYPE> <hex>", # comments
unhex() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")"; }
for t in "${targets[@]}"; do mkdir -p "corpus/$t"; done
seeds=0
for f in "$fixtures"/*.hex; do
  [ -e "$f" ] || continue
  name=$(basename "$f" .hex)
  n=0
  while read -r label type hex _; do
    case "$label" in '' | '#'*) continue ;; esac
    n=$((n + 1))
    [ -n "${hex:-}" ] || continue
    unhex "$hex" >"corpus/frame/seed-$name-$n"
    # decode_message: first byte selects the session (bit 0: 4-octet AS,
    # 1: extended message, 2: ADD-PATH IPv4, 3: ADD-PATH IPv6).
    for sel in 00 01 03 05 0d; do
      { unhex "$sel"; unhex "$hex"; } >"corpus/decode_message/seed-$name-$n-$sel"
    done
    seeds=$((seeds + 1))
  done <"$f"
  # A whole capture as one receive buffer.
  grep -v '^#' "$f" | awk 'NF >= 3 { printf "%s", $3 }' | { read -r all || true; unhex "${all:-}"; } >"corpus/frame/stream-$name"
done
echo "== seed corpus: $seeds messages from $fixtures"

# --- run
failed=()
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${secs}s"
  mkdir -p "artifacts/$t"
  before=$(ls "artifacts/$t" | sort)
  if ! "${cargo_fuzz[@]}" run --debug-assertions "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1; then
    failed+=("$t")
    for a in $(comm -13 <(echo "$before") <(ls "artifacts/$t" | sort)); do
      echo "!! $t crashed on artifacts/$t/$a:"
      od -An -v -tx1 "artifacts/$t/$a" | tr -d ' \n'
      echo
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzzing FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzzing passed: ${targets[*]} ran ${secs}s each without a crash"
