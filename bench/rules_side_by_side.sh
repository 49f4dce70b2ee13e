#!/usr/bin/env bash
# The 50-rule workload of ../shared/bench through the whole rule layer, side by side: Debian's
# Prometheus 2.42 and a release `tradewatch sidecar` scrape the same live target (the workload's
# exposition files, one tick per scrape interval, served to both alike) and evaluate the same
# rules; each is read from its own `/api/v1/rules`, `evaluationTime` summed over the five groups,
# once per evaluation interval after the warm-up. Prints both medians and their ratio.
#
# Usage: bench/rules_side_by_side.sh       (from the repository root)
# Environment: SERIES (10000), TICKS (36), INTERVAL (5, seconds), SAMPLES (10 readings),
#              BIN (target/release/tradewatch; built when absent), OUT (bench/out/rules).
# Needs: python3 with prometheus_client, prometheus (apt-get install -y prometheus).
set -euo pipefail

SERIES=${SERIES:-10000}
TICKS=${TICKS:-36}
INTERVAL=${INTERVAL:-5}
SAMPLES=${SAMPLES:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
# shellcheck source=bench/machine.sh
. "$ROOT/bench/machine.sh"
OUT=${OUT:-$ROOT/bench/out/rules}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET_DIR/release/tradewatch}
if [ ! -x "$BIN" ]; then (cd "$ROOT" && cargo build --release --quiet --bin tradewatch); fi
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tradewatch-rules.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TARGET_PORT=$(free_port); PROM_PORT=$(free_port); TW_PORT=$(free_port)

echo "generating $SERIES series x $TICKS ticks"
python3 "$SHARED/series.py" --series "$SERIES" --ticks "$TICKS" --out "$WORK/ticks" >/dev/null
# One tick per interval since the server started, the last one held: both scrapers see the same.
cat > "$WORK/serve.py" <<PY
import glob, http.server, time
files = sorted(glob.glob("$WORK/ticks/*"))
start = time.time()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        i = min(int((time.time() - start) / $INTERVAL), len(files) - 1)
        body = open(files[i], "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", $TARGET_PORT), H).serve_forever()
PY
python3 "$WORK/serve.py" & PIDS+=($!)

cat > "$WORK/prometheus.yml" <<YML
global: {scrape_interval: ${INTERVAL}s, evaluation_interval: ${INTERVAL}s}
rule_files: ['$SHARED/rules-50.yml']
scrape_configs:
  - job_name: trading
    static_configs: [{targets: ['127.0.0.1:$TARGET_PORT']}]
YML
prometheus --config.file="$WORK/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
  --storage.tsdb.path="$WORK/prom" >"$WORK/prometheus.log" 2>&1 & PIDS+=($!)
PROM_PID=$!

cat > "$WORK/tradewatch.yaml" <<YML
storage: {data_dir: '$WORK/tw'}
sidecar:
  evaluation_interval: ${INTERVAL}s
  rule_files: ['$SHARED/rules-50.yml']
  scrape: {interval: ${INTERVAL}s, timeout: ${INTERVAL}s, targets: [{url: 'http://127.0.0.1:$TARGET_PORT/metrics', job: trading}]}
YML
"$BIN" sidecar --config "$WORK/tradewatch.yaml" --listen "127.0.0.1:$TW_PORT" >"$WORK/tradewatch.log" 2>&1 & PIDS+=($!)
TW_PID=$!

WARMUP=$(( TICKS * INTERVAL ))
echo "warming up ${WARMUP}s (every tick scraped); machine busy: $(machine_busy_pct 2)% of one core"
sleep "$WARMUP"

sum_eval() {
  curl -s "$1/api/v1/rules" | python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
print(sum(g["evaluationTime"] for g in groups) * 1000, len(groups), sum(len(g["rules"]) for g in groups))'
}
: > "$OUT/readings.txt"
for _ in $(seq "$SAMPLES"); do
  p=$(sum_eval "http://127.0.0.1:$PROM_PORT"); t=$(sum_eval "http://127.0.0.1:$TW_PORT")
  echo "prometheus $p tradewatch $t" | tee -a "$OUT/readings.txt"
  sleep "$INTERVAL"
done
rss=$(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$TW_PID/status")
prom_rss=$(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$PROM_PID/status")
python3 - "$OUT/readings.txt" "$rss" "$prom_rss" <<'PY'
import statistics, sys
p, t = [], []
for line in open(sys.argv[1]):
    f = line.split()
    p.append(float(f[1])); t.append(float(f[5]))
mp, mt = statistics.median(p), statistics.median(t)
print(f"median sum of group evaluation times: prometheus {mp:.1f} ms, tradewatch {mt:.1f} ms; "
      f"tradewatch {mp / mt:.1f}x faster; resident memory: tradewatch {sys.argv[2]}, "
      f"prometheus {sys.argv[3]}")
PY
