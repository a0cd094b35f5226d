#!/usr/bin/env bash
# Benchmark (issue 23): the same 50k new events merged into staging of 1M, 4M and 16M rows
# over the same 7 days, without and with 5 % newer copies of staged events, through the key
# index and through the 7-day horizon search. Per run: wall seconds and peak RSS
# (/usr/bin/time -v), bytes read from disk (page cache dropped before each run when
# allowed, less what a run with nothing to do reads: mostly table data, plus the code pages
# only real work touches), staging files scanned and rewritten, bytes rewritten per
# replaced row, and the index's bytes per
# key (its live files, from `status`). Then `keys sweep` over each staging, and `keys sweep
# --sql` (the search Athena runs at scale, on DataFusion). Disk: at 16M the
# lake (with its time-travel history) is ~10 GB and each measured run copies it: ~14 GB free.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
SIZES="${BENCH_SIZES:-1 4 16}" # staged events, in steps
STEP="${BENCH_STEP:-1000000}"    # events per step
NEW="${BENCH_NEW:-50000}"
DATA="bench-data/dedup-$STEP"
OUT="${BENCH_OUT:-bench-out/dedup}"
rm -rf "$OUT" && mkdir -p "$DATA" "$OUT"
LAKE="$OUT/lake"
RESULTS="$OUT/results"

# The new events: fresh uuids dated inside the same 7 days; and the same with 5 % of them
# replaced by newer copies (created_at + 1 s) of events staged from the first million.
gen() { "$BIN" generate --events "$1" --seed "$2" --days 7 --duplicate-rate 0 --invalid-rate 0; }
[ -s "$DATA/base-1.jsonl" ] || gen "$STEP" 101 > "$DATA/base-1.jsonl"
[ -s "$DATA/new.jsonl" ] || gen "$NEW" 7 > "$DATA/new.jsonl"
COPIES=$((NEW / 20))
head -n $((NEW - COPIES)) "$DATA/new.jsonl" > "$DATA/updates.jsonl"
python3 - "$DATA/base-1.jsonl" "$COPIES" >> "$DATA/updates.jsonl" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    for i, line in enumerate(f):
        if i % 300 == 0 and n > 0:
            event = json.loads(line)
            event["created_at"] = event["created_at"] + 1
            event["revision"] = "bench"
            print(json.dumps(event))
            n -= 1
PY

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }


# measure NAME LAKE ARGS...: one compaction of LAKE, its figures appended to $RESULTS.
measure() {
  local name=$1 lake=$2; shift 2
  drop_caches
  /usr/bin/time -v -o "$OUT/$name.time" "$BIN" compact --lake "$lake" --no-maintenance "$@" > "$OUT/$name.out"
  local wall rss inputs scanned rewritten rewritten_mb updated per_row
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$OUT/$name.time")
  # The same command again, with nothing left to do, reads what every run reads (the
  # binary, both logs): the difference is what this merge read of the tables' data.
  drop_caches
  /usr/bin/time -v -o "$OUT/$name.idle.time" "$BIN" compact --lake "$lake" --no-maintenance "$@" > /dev/null
  local idle
  idle=$(awk -F': ' '/File system inputs/ {print $2*512}' "$OUT/$name.idle.time")
  inputs=$(awk -F': ' -v idle="$idle" '/File system inputs/ {printf "%.1f", ($2*512-idle)/1048576}' "$OUT/$name.time")
  scanned=$(grep -o 'files scanned [0-9]*' "$OUT/$name.out" | awk '{print $3}')
  rewritten=$(grep -o 'rewritten [0-9]*' "$OUT/$name.out" | awk '{print $2}')
  rewritten_mb=$(grep -o 'rewritten [0-9]* ([0-9.]* MB)' "$OUT/$name.out" | tr -d '(' | awk '{print $3}')
  updated=$(grep -o 'updated [0-9]*' "$OUT/$name.out" | awk '{print $2}')
  per_row=$(awk -v mb="$rewritten_mb" -v n="$updated" 'BEGIN {printf "%.0f", (n > 0 ? mb * 1000 / n : 0)}')
  echo "$name wall_s=$wall rss_mb=$rss read_mb=$inputs scanned=$scanned rewritten=$rewritten rewritten_mb=$rewritten_mb kb_per_replaced_row=$per_row" | tee -a "$RESULTS"
}

have=0
for m in $SIZES; do
  while [ "$have" -lt "$m" ]; do
    have=$((have + 1))
    input="$DATA/base-$have.jsonl"
    [ -s "$input" ] || gen "$STEP" $((100 + have)) > "$input"
    "$BIN" ingest --lake "$LAKE" "$input" > /dev/null
    "$BIN" compact --lake "$LAKE" --no-maintenance > /dev/null
    [ "$have" -eq 1 ] || rm -f "$input"
  done
  # Staging files at their steady size, as a scheduled compaction leaves them.
  "$BIN" compact --lake "$LAKE" > /dev/null
  # Live files only (`status`): optimize's replaced files stay on disk for time travel.
  keys_bytes=$("$BIN" status --lake "$LAKE" --format json \
    | python3 -c 'import json, sys; print(next(t["bytes"] for t in json.load(sys.stdin)["tables"] if t["table"] == "staging_keys"))')
  echo "staging ${m}x$STEP: index bytes per key $(awk -v b="$keys_bytes" -v k="$((m * STEP))" 'BEGIN {printf "%.1f", b/k}')" | tee -a "$RESULTS"
  # The sweep over all of staging (nothing to remove here: the cost of finding copies).
  drop_caches
  /usr/bin/time -v -o "$OUT/${m}x-sweep.time" "$BIN" keys sweep --lake "$LAKE" > "$OUT/${m}x-sweep.out"
  echo "${m}x-sweep wall_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$OUT/${m}x-sweep.time") rss_mb=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$OUT/${m}x-sweep.time") read_mb=$(awk -F': ' '/File system inputs/ {printf "%.1f", $2*512/1048576}' "$OUT/${m}x-sweep.time") $(cat "$OUT/${m}x-sweep.out")" | tee -a "$RESULTS"
  # The same search as the SQL Athena runs at scale, here on DataFusion, then the sweep of
  # the partitions it names (none here).
  drop_caches
  /usr/bin/time -v -o "$OUT/${m}x-sweep-sql.time" "$BIN" keys sweep --lake "$LAKE" --sql > "$OUT/${m}x-sweep-sql.out"
  echo "${m}x-sweep-sql wall_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$OUT/${m}x-sweep-sql.time") rss_mb=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$OUT/${m}x-sweep-sql.time") read_mb=$(awk -F': ' '/File system inputs/ {printf "%.1f", $2*512/1048576}' "$OUT/${m}x-sweep-sql.time") $(tr '\n' ' ' < "$OUT/${m}x-sweep-sql.out")" | tee -a "$RESULTS"
  for variant in new updates; do
    for search in index horizon; do
      run="$OUT/run"
      rm -rf "$run" && cp -a "$LAKE" "$run"
      "$BIN" ingest --lake "$run" "$DATA/$variant.jsonl" > /dev/null
      if [ "$search" = horizon ]; then
        measure "${m}x-$variant-$search" "$run" --horizon-days 7
      else
        measure "${m}x-$variant-$search" "$run"
      fi
    done
  done
done
rm -rf "$OUT/run"
echo "results in $RESULTS"
