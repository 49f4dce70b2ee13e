#!/usr/bin/env bash
# Scrape latency at 100k series: tradewatch's /metrics beside the Pushgateway's, same series.
#
# Both servers get the shared workload (bench/scrape_series.py, after /work/shared/bench/series.py):
# 100,000 series, three labels (strategy, symbol, venue), four counters, four gauges and a histogram
# family with 9 finite buckets. The Pushgateway gets it as text 0.0.4 (one PUT); tradewatch as
# `metric` events (counter increments, gauge sets, histogram observations) in NDJSON batches. The
# script checks that both then serve the same value for every series, then times GET /metrics,
# uncompressed, alternating the servers request by request, and reads each server's resident
# memory (VmRSS, VmHWM from /proc/PID/status).
#
# Usage: bench/scrape.sh            (from the repository root; builds the release binary)
# Environment: SERIES (100000), REQUESTS (50 per server), BATCH (events per POST, 5000),
#              TW_PORT (19470), PG_PORT (19091), OUT (bench/out/scrape).
# Needs: curl, python3 with prometheus_client, prometheus-pushgateway
#        (apt-get install -y prometheus-pushgateway).
set -euo pipefail

SERIES=${SERIES:-100000}
REQUESTS=${REQUESTS:-50}
BATCH=${BATCH:-5000}
TW_PORT=${TW_PORT:-19470}
PG_PORT=${PG_PORT:-19091}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/machine.sh
. "$ROOT/bench/machine.sh"
OUT=${OUT:-$ROOT/bench/out/scrape}
ACCEPT='Accept: application/openmetrics-text; version=1.0.0'
WORK=$(mktemp -d /tmp/tradewatch-scrape.XXXXXX)
TW_PID=
PG_PID=

cleanup() {
    [ -n "$TW_PID" ] && kill "$TW_PID" 2>/dev/null && wait "$TW_PID" 2>/dev/null
    [ -n "$PG_PID" ] && kill "$PG_PID" 2>/dev/null && wait "$PG_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_up() { # URL
    for _ in $(seq 100); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

rss() { # PID -> "VmRSS_kB VmHWM_kB"
    awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{print r, h}' "/proc/$1/status"
}

mkdir -p "$OUT"
command -v prometheus-pushgateway >/dev/null || {
    echo "prometheus-pushgateway is missing: apt-get install -y prometheus-pushgateway" >&2
    exit 1
}
(cd "$ROOT" && cargo build --release --quiet --bin tradewatch)
# A copy, so that someone else's build in the shared tree cannot swap the binary mid-run.
cp "$ROOT/target/release/tradewatch" "$WORK/tradewatch"

describe_build "$ROOT" "$WORK/tradewatch"
echo "   $SERIES series, $REQUESTS requests per server, tradewatch fed in batches of $BATCH events"
python3 "$ROOT/bench/scrape_series.py" generate --series "$SERIES" \
    --text "$WORK/series.prom" --events "$WORK/events.ndjson" --config "$WORK/tradewatch.yaml"

"$WORK/tradewatch" exporter --listen "127.0.0.1:$TW_PORT" \
    --data-dir "$WORK/data" --config "$WORK/tradewatch.yaml" >"$WORK/tradewatch.log" 2>&1 &
TW_PID=$!
prometheus-pushgateway --web.listen-address="127.0.0.1:$PG_PORT" --persistence.file= \
    >"$WORK/pushgateway.log" 2>&1 &
PG_PID=$!
TW=http://127.0.0.1:$TW_PORT
PG=http://127.0.0.1:$PG_PORT
wait_up "$TW/metrics"
wait_up "$PG/metrics"
read -r tw_idle _ < <(rss "$TW_PID")
read -r pg_idle _ < <(rss "$PG_PID")

split -l "$BATCH" "$WORK/events.ndjson" "$WORK/batch."
for f in "$WORK"/batch.*; do
    reply=$(curl -sf --data-binary @"$f" -H 'Content-Type: application/x-ndjson' "$TW/api/v1/events")
    case $reply in
    *'"rejected":[]'*) ;;
    *) echo "tradewatch rejected events of $f: ${reply:0:300}" >&2; exit 1 ;;
    esac
done
curl -sf -X PUT --data-binary @"$WORK/series.prom" \
    -H 'Content-Type: text/plain; version=0.0.4' "$PG/metrics/job/bench"
read -r tw_loaded _ < <(rss "$TW_PID")
read -r pg_loaded _ < <(rss "$PG_PID")

curl -sf -D "$OUT/tradewatch.headers" -o "$WORK/tradewatch.metrics" -H "$ACCEPT" "$TW/metrics"
curl -sf -D "$OUT/pushgateway.headers" -o "$WORK/pushgateway.metrics" -H "$ACCEPT" "$PG/metrics"
python3 "$ROOT/bench/scrape_series.py" compare "$WORK/tradewatch.metrics" "$WORK/pushgateway.metrics"
tw_bytes=$(wc -c <"$WORK/tradewatch.metrics")
pg_bytes=$(wc -c <"$WORK/pushgateway.metrics")
echo "tradewatch answers: $(grep -i '^content-type' "$OUT/tradewatch.headers" | tr -d '\r' | cut -d' ' -f2-)"
echo "pushgateway answers: $(grep -i '^content-type' "$OUT/pushgateway.headers" | tr -d '\r' | cut -d' ' -f2-)"

time_get() { # URL ACCEPT -> seconds
    curl -sf -o /dev/null -w '%{time_total}\n' -H "$2" "$1"
}
wait_for_quiet
# Warm-up, then REQUESTS rounds; the order alternates so neither server always goes first.
for _ in 1 2 3; do
    time_get "$TW/metrics" "$ACCEPT" >/dev/null
    time_get "$PG/metrics" "$ACCEPT" >/dev/null
done
: >"$OUT/tradewatch.times"
: >"$OUT/pushgateway.times"
: >"$OUT/tradewatch-text.times"
for i in $(seq "$REQUESTS"); do
    if [ $((i % 2)) -eq 0 ]; then
        time_get "$TW/metrics" "$ACCEPT" >>"$OUT/tradewatch.times"
        time_get "$PG/metrics" "$ACCEPT" >>"$OUT/pushgateway.times"
    else
        time_get "$PG/metrics" "$ACCEPT" >>"$OUT/pushgateway.times"
        time_get "$TW/metrics" "$ACCEPT" >>"$OUT/tradewatch.times"
    fi
    # tradewatch in text 0.0.4 too, the format the Pushgateway answers with.
    time_get "$TW/metrics" 'Accept: text/plain; version=0.0.4' >>"$OUT/tradewatch-text.times"
done
echo "   machine busy $(machine_busy_pct 2)% just after the timed requests"
read -r tw_after tw_peak < <(rss "$TW_PID")
read -r pg_after pg_peak < <(rss "$PG_PID")

python3 - "$OUT" "$tw_bytes" "$pg_bytes" <<'EOF'
import statistics, sys
out, tw_bytes, pg_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    return sorted(float(x) * 1000 for x in open(f"{out}/{name}.times"))
def p(xs, q):  # nearest-rank percentile
    return xs[max(0, -(-len(xs) * q // 100) - 1)]
rows = {n: load(n) for n in ["tradewatch", "pushgateway", "tradewatch-text"]}
print(f"{'server':<34} {'n':>3} {'median ms':>10} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}")
for n, xs in rows.items():
    label = {"tradewatch": "tradewatch (OpenMetrics)",
             "pushgateway": "pushgateway (asked for OpenMetrics)",
             "tradewatch-text": "tradewatch (text 0.0.4)"}[n]
    print(f"{label:<34} {len(xs):>3} {statistics.median(xs):>10.2f} {p(xs, 90):>8.2f} "
          f"{xs[0]:>8.2f} {xs[-1]:>8.2f}")
ratio = statistics.median(rows["pushgateway"]) / statistics.median(rows["tradewatch"])
print(f"median ratio pushgateway/tradewatch: {ratio:.1f}x (target >= 6x: "
      f"{'met' if ratio >= 6 else 'NOT met'})")
print(f"body bytes: tradewatch {tw_bytes}, pushgateway {pg_bytes}")
EOF
mib() { awk -v k="$1" 'BEGIN{printf "%.1f MiB", k/1024}'; }
echo "tradewatch RSS: idle $(mib "$tw_idle"), after load $(mib "$tw_loaded"), after scrapes $(mib "$tw_after"), peak (VmHWM) $(mib "$tw_peak") (target <= 50 MiB after scrapes: $([ "$tw_after" -le 51200 ] && echo met || echo 'NOT met'))"
echo "pushgateway RSS: idle $(mib "$pg_idle"), after load $(mib "$pg_loaded"), after scrapes $(mib "$pg_after"), peak (VmHWM) $(mib "$pg_peak")"
