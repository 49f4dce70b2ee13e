#!/usr/bin/env bash
# Profiles the ingest path once: the release exporter under valgrind's callgrind (instruction
# counts; this machine's perf has no hardware counters) while examples/ingest_load.rs posts
# batches of 1,000 `order` events to it, then lists the hottest functions.
#
# The exporter runs with `fsync: batch` as in bench/ingest.sh. Under valgrind it crashes when
# /metrics is read (rustix's auxv parsing behind procfs::ticks_per_second faults there), so the
# load generator is told not to read /metrics and readiness is checked on /-/healthy.
#
# Usage: bench/profile.sh     Environment: DURATION (30), CONNECTIONS (4), PORT (19490),
#                             OUT (bench/out/profile)
set -euo pipefail

DURATION=${DURATION:-30}
CONNECTIONS=${CONNECTIONS:-4}
PORT=${PORT:-19490}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/machine.sh
. "$ROOT/bench/machine.sh"
OUT=${OUT:-$ROOT/bench/out/profile}
WORK=$(mktemp -d /tmp/tradewatch-profile.XXXXXX)
VG_PID=
cleanup() {
    if [ -n "$VG_PID" ]; then
        kill "$VG_PID" 2>/dev/null || true
        wait "$VG_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$OUT"
(cd "$ROOT" && cargo build --release --quiet --bin tradewatch --example ingest_load)
# Copies, so that someone else's build in the shared tree cannot swap the binaries mid-run.
cp "$ROOT/target/release/tradewatch" "$ROOT/target/release/examples/ingest_load" "$WORK/"
printf 'storage:\n  fsync: batch\n' >"$WORK/tradewatch.yaml"
describe_build "$ROOT" "$WORK/tradewatch"
echo "   callgrind, $CONNECTIONS connections, ${DURATION}s of load"
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.exporter" \
    "$WORK/tradewatch" exporter --listen "127.0.0.1:$PORT" \
    --data-dir "$WORK/data" --config "$WORK/tradewatch.yaml" >"$OUT/valgrind.log" 2>&1 &
VG_PID=$!
for _ in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/-/healthy" && break
    sleep 0.3
done
"$WORK/ingest_load" --url "http://127.0.0.1:$PORT" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup 2 --skip-metrics
kill "$VG_PID"
wait "$VG_PID" 2>/dev/null || true
VG_PID=
grep -E 'Collected|refs' "$OUT/valgrind.log" || true
python3 "$ROOT/bench/callgrind_top.py" "$OUT/callgrind.out.exporter" 15 | tee "$OUT/top.txt"

# The same path at full speed, sampled by the kernel's cpu-clock (a software event, which this
# machine's perf supports), to see kernel time and which thread is busy: callgrind counts only
# user-space instructions and runs the threads one at a time.
if perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
    echo "== perf cpu-clock sampling of the exporter, 8 connections, full speed"
    wait_for_quiet
    rm -rf "$WORK/data"
    "$WORK/tradewatch" exporter --listen "127.0.0.1:$PORT" \
        --data-dir "$WORK/data" --config "$WORK/tradewatch.yaml" >"$WORK/exporter.log" 2>&1 &
    VG_PID=$!
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT/-/healthy" && break
        sleep 0.1
    done
    "$WORK/ingest_load" --url "http://127.0.0.1:$PORT" \
        --connections 8 --duration 12 --warmup 1 --exporter-pid "$VG_PID" >"$OUT/perf-load.txt" &
    LOAD_PID=$!
    sleep 3
    perf record -e cpu-clock -F 499 -g -p "$VG_PID" -o "$OUT/perf.data" -- sleep 8 2>/dev/null
    wait "$LOAD_PID"
    cat "$OUT/perf-load.txt"
    kill "$VG_PID"
    wait "$VG_PID" 2>/dev/null || true
    VG_PID=
    report() { # ARGS... -> the report's lines, without comments
        perf report -i "$OUT/perf.data" --stdio --no-children -g none "$@" 2>/dev/null |
            grep -v '^#' | grep -v '^$' || true
    }
    {
        echo "-- by thread"
        report --sort comm
        echo "-- by object"
        report --sort dso
        echo "-- top symbols, all threads"
        report --sort sym | sed -n 1,25p
        echo "-- top symbols, the journal thread (percent of all samples)"
        report --comm journal --sort sym | sed -n 1,12p
    } | tee "$OUT/perf-top.txt"
fi
