#!/usr/bin/env bash
# Benchmark: 1M generated events through `lakehouse ingest` and `compact` (release build),
# and the same work through a small Python reference (json + pyarrow + deltalake + duckdb),
# in one run so the ratio is printed. Peak RSS from /usr/bin/time -v.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
EVENTS="${BENCH_EVENTS:-1000000}"
INCREMENT="${BENCH_INCREMENT:-50000}"
DATA=bench-data
# The lakes; BENCH_OUT=/dev/shm/… measures without the disk (on this VM creating a file
# costs ~0.5 ms of system time, more right after a large delete).
OUT="${BENCH_OUT:-bench-out}"
rm -rf "$OUT" && mkdir -p "$DATA" "$OUT"

# The issue's shape: 100 event types over 7 days (about 900 partitions).
INPUT="$DATA/events-$EVENTS-7d.jsonl"
if [ ! -s "$INPUT" ]; then
  "$BIN" generate --events "$EVENTS" --seed 1 --days 7 > "$INPUT"
fi
if [ ! -s "$DATA/increment-$INCREMENT.jsonl" ]; then
  "$BIN" generate --events "$INCREMENT" --seed 2 --days 1 > "$DATA/increment-$INCREMENT.jsonl"
fi
BYTES=$(stat -c %s "$INPUT")

# measure NAME COMMAND...: records wall seconds and peak RSS (MB) in $OUT/NAME.time
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$OUT/$name.time")
  echo "$name $wall $rss" >> "$OUT/results"
}

measure rust_ingest "$BIN" ingest --lake "$OUT/rust" "$INPUT"
measure rust_compact_first "$BIN" compact --lake "$OUT/rust" --no-maintenance
"$BIN" ingest --lake "$OUT/rust" "$DATA/increment-$INCREMENT.jsonl" > /dev/null
measure rust_compact_incremental "$BIN" compact --lake "$OUT/rust" --no-maintenance
measure rust_maintenance "$BIN" compact --lake "$OUT/rust"

measure py_ingest python3 tests/bench/reference.py ingest "$OUT/py" "$INPUT"
measure py_compact_first python3 tests/bench/reference.py compact "$OUT/py"
python3 tests/bench/reference.py ingest "$OUT/py" "$DATA/increment-$INCREMENT.jsonl" > /dev/null
measure py_compact_incremental python3 tests/bench/reference.py compact "$OUT/py"

python3 - "$OUT/results" "$EVENTS" "$INCREMENT" "$BYTES" <<'PY'
import sys
rows = {l.split()[0]: (float(l.split()[1]), int(l.split()[2])) for l in open(sys.argv[1])}
events, inc, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"input: {events} events, {size/1e6:.0f} MB JSON Lines; increment {inc} events")
print(f"{'step':<26}{'rust s':>9}{'rust MB':>9}{'python s':>10}{'python MB':>11}{'speed-up':>10}")
for step, n in [("ingest", events), ("compact_first", events), ("compact_incremental", inc)]:
    r, p = rows[f"rust_{step}"], rows[f"py_{step}"]
    print(f"{step:<26}{r[0]:>9.2f}{r[1]:>9}{p[0]:>10.2f}{p[1]:>11}{p[0]/max(r[0],1e-9):>9.1f}x")
r = rows["rust_ingest"]
print(f"rust ingest: {events/r[0]:,.0f} events/s, peak RSS {r[1]} MB")
print(f"incremental/first compaction: {100*rows['rust_compact_incremental'][0]/rows['rust_compact_first'][0]:.1f} %")
m = rows["rust_maintenance"]
print(f"maintenance (optimize + vacuum, 3 tables): {m[0]:.2f} s, peak RSS {m[1]} MB")
PY
