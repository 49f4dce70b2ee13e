#!/usr/bin/env bash
# An alert storm, tradewatch beside Debian's Alertmanager 0.25 on the same alertmanager.yml:
# ALERTS alerts in GROUP_COUNT label groups posted to `POST /api/v2/alerts` of each (one after the
# other, in batches of BATCH), a local webhook receiver counting the notifications
# (examples/am_storm.rs). Prints, per notifier and as ratios tradewatch / Alertmanager: post
# time per alert, CPU time per alert (first post until the last group was notified), resident
# memory grown per aggregation group, and the time until the last group was notified.
#
# Usage: bench/am_side_by_side.sh            (from the repository root)
# Environment: ALERTS (10000), GROUP_COUNT (1000), BATCH (500), RUNS (3: each with fresh processes),
#              FAIL_EVERY (0; 10: the receiver answers 500 to every tenth request of each),
#              BACKOFF_MIN (tradewatch's notifier.outbox.backoff.min; its default when unset),
#              OUT (bench/out/am).
# Needs: prometheus-alertmanager (apt-get install -y prometheus-alertmanager).
set -euo pipefail

ALERTS=${ALERTS:-10000}
GROUP_COUNT=${GROUP_COUNT:-1000}
BATCH=${BATCH:-500}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/machine.sh
. "$ROOT/bench/machine.sh"
OUT=${OUT:-$ROOT/bench/out/am}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"
(cd "$ROOT" && cargo build --release --quiet --bin tradewatch --example am_storm)
WORK=$(mktemp -d /tmp/tradewatch-am.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# A private copy: another build in a shared target/ must not swap the binary mid-run.
cp "$TARGET_DIR/release/tradewatch" "$TARGET_DIR/release/examples/am_storm" "$WORK/"
describe_build "$ROOT" "$WORK/tradewatch"
prometheus-alertmanager --version 2>&1 | head -1
: > "$OUT/runs.txt"
for run in $(seq "$RUNS"); do
  echo "== run $run"
  wait_for_quiet
  "$WORK/am_storm" "$WORK/tradewatch" "$ALERTS" "$GROUP_COUNT" "$BATCH" | tee -a "$OUT/runs.txt"
done
# Medians over the runs of each ratio.
python3 - "$OUT/runs.txt" <<'PY'
import re, statistics, sys
ratios = [l for l in open(sys.argv[1]) if l.startswith("ratio")]
cols = {}
for l in ratios:
    for name, value in re.findall(r"([a-z/ ]+?) ([0-9.]+)", l.split("tw/am", 1)[1]):
        cols.setdefault(name.strip(), []).append(float(value))
print("median ratios tw/am over", len(ratios), "runs:",
      ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in cols.items()))
PY
