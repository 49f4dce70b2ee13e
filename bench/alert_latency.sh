#!/usr/bin/env bash
# Latency from an accepted event to its notification (a kill switch, `for: 0s`, `group_wait: 0s`,
# a local webhook receiver), 100 trials, each its own alert group: `tradewatch run` (one process)
# and `tradewatch exporter` + `tradewatch sidecar` (two processes; the sidecar follows the
# exporter's change long poll). Each latency runs from just before the POST to the webhook
# request's arrival.
#
# Usage: bench/alert_latency.sh            (from the repository root; builds the release binary)
# Environment: TRIALS (100), OUT (bench/out/alert_latency).
set -euo pipefail

TRIALS=${TRIALS:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/machine.sh
. "$ROOT/bench/machine.sh"
OUT=${OUT:-$ROOT/bench/out/alert_latency}
mkdir -p "$OUT"
cd "$ROOT"
cargo build --release --quiet --bin tradewatch --example alert_latency
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET/release/tradewatch"
for mode in run split; do
  "$TARGET/release/examples/alert_latency" "$BIN" "$mode" "$TRIALS" | tee "$OUT/$mode.txt"
done
