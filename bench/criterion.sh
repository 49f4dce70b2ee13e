#!/usr/bin/env bash
# Runs the criterion benchmarks (benches/encode.rs, benches/ingest.rs) in release mode and prints
# each benchmark's median with its throughput.
#
# Usage: bench/criterion.sh [encode|ingest ...]   (default: both)
# Environment: OUT (bench/out/criterion), QUIET_PCT (25), QUIET_WAIT (300).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/machine.sh
. "$ROOT/bench/machine.sh"
OUT=${OUT:-$ROOT/bench/out/criterion}
BENCHES=${*:-encode ingest}
mkdir -p "$OUT"
describe_build "$ROOT"
(cd "$ROOT" && cargo bench --no-run --quiet --bench encode --bench ingest 2>/dev/null)
for bench in $BENCHES; do
    echo "-- cargo bench --bench $bench"
    wait_for_quiet
    (cd "$ROOT" && cargo bench --quiet --bench "$bench") >"$OUT/$bench.log" 2>&1
    grep -E '^(encode/[a-z]+/[0-9]+|ingest): ' "$OUT/$bench.log" || true
    echo "   machine busy $(machine_busy_pct 2)% just after"
done
echo "== medians"
# shellcheck disable=SC2086
python3 "$ROOT/bench/criterion_medians.py" "${CARGO_TARGET_DIR:-$ROOT/target}" $BENCHES
