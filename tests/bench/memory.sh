#!/usr/bin/env bash
# Peak memory at the extremes issue 11 names, against the Lambdas' memory (docs/benchmarks.md):
# one ingest of 20,000 event types, and the compaction of one raw commit of 5M rows.
# Peak RSS from /usr/bin/time -v; fails when a figure exceeds its budget.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
EVENTS="${BENCH_EVENTS:-5000000}"
INGEST_BUDGET_MB="${INGEST_BUDGET_MB:-1024}"   # terraform: ingest_memory_mb
COMPACT_BUDGET_MB="${COMPACT_BUDGET_MB:-2048}" # terraform: compact_memory_mb (dev)
DATA=bench-data
OUT=bench-out/memory
rm -rf "$OUT" && mkdir -p "$DATA" "$OUT"

if [ ! -s "$DATA/types-20000.jsonl" ]; then
  python3 -c '
import json
for i in range(100000):
    print(json.dumps({"event_uuid": f"u{i}", "event_name": f"type{i % 20000:05d}:x",
                      "created_at": 1700000000 + (i % 3) * 3600, "amount": i}))' > "$DATA/types-20000.jsonl"
fi
if [ ! -s "$DATA/events-$EVENTS.jsonl" ]; then
  "$BIN" generate --events "$EVENTS" --seed 7 > "$DATA/events-$EVENTS.jsonl"
fi

# peak NAME COMMAND...: prints the command's peak RSS in MB and its wall time
peak() {
  local name=$1; shift
  /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out"
  awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$OUT/$name.time"
}

fail=0
check() {
  local what=$1 mb=$2 budget=$3
  local verdict="within"
  if [ "$mb" -gt "$budget" ]; then verdict="OVER"; fail=1; fi
  printf '%-44s peak %6s MB  budget %5s MB  %s\n' "$what" "$mb" "$budget" "$verdict"
}

mb=$(peak types "$BIN" ingest --lake "$OUT/types" "$DATA/types-20000.jsonl")
check "ingest: 100k events of 20,000 types" "$mb" "$INGEST_BUDGET_MB"
"$BIN" ingest --lake "$OUT/big" "$DATA/events-$EVENTS.jsonl" > "$OUT/big-ingest.out"
mb=$(peak big "$BIN" compact --lake "$OUT/big" --no-maintenance)
check "compact: one raw commit of $EVENTS events" "$mb" "$COMPACT_BUDGET_MB"
cat "$OUT/big-ingest.out" "$OUT/big.out"
exit "$fail"
