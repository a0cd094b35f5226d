#!/usr/bin/env bash
# The commit protocol at 1B events/hour in real time (examples/scale): direct mode's curve
# over 1-350 shards, one 6 MB batch's CPU in either raw layout, grouped mode's curve over
# 1-100 shards, then grouped mode at 350 shards for 5 minutes, crashes injected throughout.
# Every run's JSON line goes to bench-out/scale.jsonl; the last stdout line is grouped mode's.
# SCALE_SECONDS (300), SCALE_DIRECT_SECONDS (60, every curve point), SCALE_DIRECT_SHARDS
# (1,10,50,100,350), SCALE_GROUPED_SHARDS (1,10,50,100).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${CARGO_TARGET_DIR:-target}/${PROFILE_DIR:-debug}/examples/scale"
OUT=bench-out
mkdir -p "$OUT"
: > "$OUT/scale.jsonl"
for shards in $(echo "${SCALE_DIRECT_SHARDS:-1,10,50,100,350}" | tr , ' '); do
  echo "direct mode, $shards shards, ${SCALE_DIRECT_SECONDS:-60} s" >&2
  "$BIN" --mode direct --shards "$shards" --seconds "${SCALE_DIRECT_SECONDS:-60}" \
    2>>"$OUT/scale.log" | tail -1 | tee -a "$OUT/scale.jsonl" >&2
done
echo "one batch of 5,000 events (~6 MB) on one core, raw by date and type, then by date" >&2
for layout in date-type date; do
  "$BIN" --measure-batch 20 --raw-layout "$layout" 2>>"$OUT/scale.log" | tail -1 | tee -a "$OUT/scale.jsonl" >&2
done
for shards in $(echo "${SCALE_GROUPED_SHARDS:-1,10,50,100}" | tr , ' '); do
  echo "grouped mode, $shards shards, ${SCALE_DIRECT_SECONDS:-60} s, crashes injected" >&2
  "$BIN" --mode grouped --shards "$shards" --seconds "${SCALE_DIRECT_SECONDS:-60}" \
    2>>"$OUT/scale.log" | tail -1 | tee -a "$OUT/scale.jsonl" >&2
done
echo "grouped mode, 350 shards, ${SCALE_SECONDS:-300} s, crashes injected" >&2
"$BIN" --mode grouped --shards 350 --seconds "${SCALE_SECONDS:-300}" 2>>"$OUT/scale.log" \
  | tail -1 | tee -a "$OUT/scale.jsonl"
