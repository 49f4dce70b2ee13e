#!/usr/bin/env bash
# Sustained ingest over loopback HTTP: examples/ingest_load.rs against a release exporter with the
# journal on and `fsync: batch`, at several concurrency levels, the generator on the same cores.
#
# Each level gets a fresh exporter and data directory (so the journal, the registry and the page
# cache start alike), D seconds of measured load after a 1 s warm-up, and the load generator's
# report: accepted events/s, request latency, the exporter's fsync durations and the CPU used by
# the exporter, the generator and everything else on the machine (it is shared). The levels run
# ROUNDS times, interleaved, each after waiting (up to QUIET_WAIT s) for the machine to be under
# QUIET_PCT % busy; the curve is the median at each level of the rounds in which other processes
# used under 25 % of a core ("quiet" rounds), or of all rounds when none was quiet.
#
# Usage: bench/ingest.sh                 (from the repository root; builds release binaries)
# Environment: LEVELS ("1 2 4 8 16 32"), ROUNDS (3), DURATION (10), FSYNC (batch), PORT (19480),
#              DATA_ROOT (a temporary directory under /tmp), OUT (bench/out/ingest),
#              THREADS (generator runtime threads, 1), QUIET_PCT (25), QUIET_WAIT (300).
set -euo pipefail

LEVELS=${LEVELS:-"1 2 4 8 16 32"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
FSYNC=${FSYNC:-batch}
PORT=${PORT:-19480}
THREADS=${THREADS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/machine.sh
. "$ROOT/bench/machine.sh"
OUT=${OUT:-$ROOT/bench/out/ingest}
WORK=$(mktemp -d "${DATA_ROOT:-/tmp}/tradewatch-ingest.XXXXXX")
TW_PID=

stop_exporter() {
    if [ -n "$TW_PID" ]; then
        kill "$TW_PID" 2>/dev/null || true
        wait "$TW_PID" 2>/dev/null || true
        TW_PID=
    fi
}
cleanup() {
    stop_exporter
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$OUT"
(cd "$ROOT" && cargo build --release --quiet --bin tradewatch --example ingest_load)
# Copies, so that someone else's build in the shared tree cannot swap the binaries mid-run.
cp "$ROOT/target/release/tradewatch" "$ROOT/target/release/examples/ingest_load" "$WORK/"
cat >"$WORK/tradewatch.yaml" <<EOF
# Written by bench/ingest.sh.
storage:
  fsync: $FSYNC
EOF

describe_build "$ROOT" "$WORK/tradewatch"
echo "   fsync: $FSYNC, ${DURATION}s a level, levels: $LEVELS, $ROUNDS rounds"
echo "   data directory on: $(df --output=source,fstype "$WORK" | tail -1)"
: >"$OUT/summary.txt"
for round in $(seq "$ROUNDS"); do
    for n in $LEVELS; do
        rm -rf "$WORK/data"
        echo "-- round $round, $n connections"
        wait_for_quiet
        "$WORK/tradewatch" exporter --listen "127.0.0.1:$PORT" \
            --data-dir "$WORK/data" --config "$WORK/tradewatch.yaml" >"$WORK/exporter.log" 2>&1 &
        TW_PID=$!
        for _ in $(seq 100); do
            curl -sf -o /dev/null "http://127.0.0.1:$PORT/metrics" && break
            sleep 0.1
        done
        "$WORK/ingest_load" --url "http://127.0.0.1:$PORT" \
            --connections "$n" --duration "$DURATION" --threads "$THREADS" \
            --exporter-pid "$TW_PID" --summary | tee "$OUT/c$n.r$round.txt"
        grep '^SUMMARY' "$OUT/c$n.r$round.txt" | sed "s/^SUMMARY/round=$round/" >>"$OUT/summary.txt"
        echo "   journal: $(du -sh "$WORK/data/journal" | cut -f1)"
        stop_exporter
    done
done

echo "== curve: median of the quiet rounds at each level (all rounds where none was quiet)"
python3 - "$OUT/summary.txt" <<'EOF'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1])]
keys = ["events_per_s", "p50_ms", "p99_ms", "fsync_mean_ms", "fsync_p99_ms",
        "exporter_cpu_pct", "generator_cpu_pct", "others_cpu_pct"]
print(f"{'conns':>5} {'quiet':>5} " + " ".join(f"{k:>17}" for k in keys)
      + "  every round: events/s (others' CPU %)")
best = None
for n in sorted({int(r["connections"]) for r in rows}):
    every = [r for r in rows if int(r["connections"]) == n]
    quiet = [r for r in every if float(r["others_cpu_pct"]) < 25]
    rs = quiet or every
    med = {k: statistics.median(float(r[k]) for r in rs) for k in keys}
    each = ", ".join(f"{r['events_per_s']} ({r['others_cpu_pct']})" for r in every)
    print(f"{n:>5} {len(quiet):>2}/{len(every):<2} " + " ".join(f"{med[k]:>17.2f}" for k in keys)
          + f"  {each}")
    if best is None or med["events_per_s"] > best[1]:
        best = (n, med["events_per_s"])
print(f"best: {best[0]} connections, {best[1]:.0f} events/s (median of rounds); "
      f"target >= 500000 events/s: {'met' if best[1] >= 500000 else 'NOT met'}")
EOF
