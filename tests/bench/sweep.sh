#!/usr/bin/env bash
# Benchmark (issue 23): the sweep by the key index against a whole sweep, on staging of
# 1×, 4× and 16× STEP (1M) events over DAYS (56) days, swept once, after the same new work
# as a day brings: NEW (50k) fresh events of the last day and COPIES (100) newer copies of
# staged events a year later, merged by a round with a window of 0 hours (so every copy
# lands beside its row). Per sweep: wall seconds, peak RSS, rows read, rows removed. Both
# must remove every copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
SIZES="${BENCH_SIZES:-1 4 16}"
STEP="${BENCH_STEP:-1000000}"
NEW="${BENCH_NEW:-50000}"
COPIES="${BENCH_COPIES:-100}"
DAYS="${BENCH_DAYS:-56}"
OUT="${BENCH_OUT:-bench-out/sweep}"
rm -rf "$OUT" && mkdir -p "$OUT"
LAKE="$OUT/lake"

# shellcheck source=tests/bench/measure.sh
. tests/bench/measure.sh
# sweep NAME LAKE ARGS...: one sweep, its figures printed.
sweep() {
  local name=$1 lake=$2; shift 2
  /usr/bin/time -v -o "$OUT/$name.time" "$BIN" keys sweep --lake "$lake" "$@" > "$OUT/$name.out"
  local read removed
  read=$(grep -o 'swept staging v[0-9]*: [0-9]* rows' "$OUT/$name.out" | awk '{print $4}')
  removed=$(grep -o '[0-9]* rows removed' "$OUT/$name.out" | awk '{print $1}')
  echo "$name wall_s=$(secs "$OUT/$name.time") rss_mb=$(rss "$OUT/$name.time") rows_read=$read rows_removed=$removed"
  [ "$removed" = "$COPIES" ] || { echo "expected $COPIES rows removed" >&2; exit 1; }
}

have=0
for m in $SIZES; do
  while [ "$have" -lt "$m" ]; do
    have=$((have + 1))
    "$BIN" generate --events "$STEP" --seed $((300 + have)) --days "$DAYS" --duplicate-rate 0 \
      --invalid-rate 0 > "$OUT/input.jsonl"
    "$BIN" ingest --lake "$LAKE" "$OUT/input.jsonl" > /dev/null
    # No time-travel history kept: the lake is copied below, and at 16M its history
    # filled this machine's disk.
    "$BIN" compact --lake "$LAKE" --retention-hours 0 > /dev/null
    if [ "$have" -eq 1 ]; then
      # The copies' originals: the first step's events, a year later, a newer revision.
      python3 - "$OUT/input.jsonl" "$COPIES" > "$OUT/copies.jsonl" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    for i, line in enumerate(f):
        if i % 997 == 0 and n > 0:
            event = json.loads(line)
            event["created_at"] += 365 * 86400
            event["revision"] = "bench"
            print(json.dumps(event))
            n -= 1
PY
    fi
  done
  rm -f "$OUT/input.jsonl"
  "$BIN" keys sweep --lake "$LAKE" > /dev/null # the record the sweep by the index goes from
  rows=$("$BIN" query --lake "$LAKE" --format csv "SELECT count(*) AS n FROM staging" | tail -1)
  # The new work: fresh events and the copies, in rounds that leave every copy.
  # (New uuids and newer copies at each size: what the last size staged is not new again.)
  "$BIN" generate --events "$NEW" --seed $((900 + m)) --days 1 --duplicate-rate 0 \
    --invalid-rate 0 > "$OUT/new.jsonl"
  python3 -c 'import json,sys
for line in open(sys.argv[1]):
    e = json.loads(line); e["created_at"] += int(sys.argv[2]); print(json.dumps(e))' \
    "$OUT/copies.jsonl" "$m" > "$OUT/copies-now.jsonl"
  "$BIN" ingest --lake "$LAKE" "$OUT/new.jsonl" "$OUT/copies-now.jsonl" > /dev/null
  "$BIN" compact --lake "$LAKE" --hot-hours 0 --retention-hours 0 > /dev/null
  rm -rf "$OUT/whole" && cp -r "$LAKE" "$OUT/whole"
  echo "staged=$rows new=$NEW copies=$COPIES"
  sweep "by_index-$m" "$LAKE" --by-index
  sweep "whole-$m" "$OUT/whole"
  # Both leave the same staging: the index's copies resolved again for the next size.
  rm -rf "$OUT/whole"
done
