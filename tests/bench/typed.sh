#!/usr/bin/env bash
# Benchmark (issue 26): typed tables against the views, on a lake of EVENTS (1M) events of
# 100 types, each padded to EVENT_BYTES (1 KB, production's size; 0: the generator's bare
# ~200-byte events). Two lakes get the same inputs: one compacted with `--no-typed` (today's
# compaction), one maintaining the typed tables; each compacts a first batch (95 %), then
# the rest (5 %, holding a field no event had before). Reports:
# - bytes one field of one type costs, all dates: through the view's source (staging's
#   `payload` of that type's partitions) against the typed table's column, as DataFusion's
#   scan counts them (`bytes_scanned` of EXPLAIN ANALYZE) and as the Parquet column
#   chunks sum them; and whether both give the same sum;
# - whether the new field is a typed column after the one compaction that followed it;
# - compaction wall time with typed tables over without, first run and incremental;
# - values rescued (status).
# Last line: one JSON object.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
EVENTS="${BENCH_EVENTS:-1000000}"
EVENT_BYTES="${BENCH_EVENT_BYTES:-1024}"
OUT="${BENCH_OUT:-bench-out/typed}"
rm -rf "$OUT" && mkdir -p "$OUT"

# shellcheck source=tests/bench/measure.sh
. tests/bench/measure.sh

"$BIN" generate --events "$EVENTS" --seed 26 --days 7 --event-bytes "$EVENT_BYTES" > "$OUT/input.jsonl"
FIRST=$((EVENTS * 95 / 100))
head -n "$FIRST" "$OUT/input.jsonl" > "$OUT/first.jsonl"
# The rest, with a field never seen before on every event of one type.
tail -n +"$((FIRST + 1))" "$OUT/input.jsonl" | python3 -c '
import json, sys
for line in sys.stdin.buffer:
    try:
        event = json.loads(line)
    except ValueError:
        sys.stdout.buffer.write(line)
        continue
    if isinstance(event, dict) and str(event.get("event_name", "")).startswith("payment_item:"):
        event["bench_new_field"] = 1.5
        line = (json.dumps(event) + "\n").encode()
    sys.stdout.buffer.write(line)
' > "$OUT/second.jsonl"
rm -f "$OUT/input.jsonl"

# run LAKE NAME FLAGS…: ingest NAME's input, then time its compaction.
run() {
  local lake=$1 name=$2
  shift 2
  "$BIN" ingest --lake "$lake" "$OUT/$name.jsonl" > /dev/null
  /usr/bin/time -v -o "$OUT/$(basename "$lake")-$name.time" "$BIN" compact --lake "$lake" "$@" > "$OUT/$(basename "$lake")-$name.out"
  secs "$OUT/$(basename "$lake")-$name.time"
}
plain_first=$(run "$OUT/plain" first --no-typed)
typed_first=$(run "$OUT/typed" first)
plain_second=$(run "$OUT/plain" second --no-typed)
typed_second=$(run "$OUT/typed" second)
echo "compaction: first ${plain_first}s without typed tables, ${typed_first}s with; incremental ${plain_second}s, ${typed_second}s"

LAKE="$OUT/typed"
query() { "$BIN" query --lake "$LAKE" --format json "$1"; }
analyze() { "$BIN" query --lake "$LAKE" "EXPLAIN ANALYZE $1"; }
TYPE=payment_item
FIELD=amount
analyze "SELECT $FIELD FROM typed_$TYPE" > "$OUT/typed.plan"
analyze "SELECT payload FROM staging WHERE event_type = '$TYPE'" > "$OUT/view.plan"
query "SELECT sum($FIELD) AS s, count($FIELD) AS n FROM typed_$TYPE" > "$OUT/typed.json"
query "SELECT payload FROM staging WHERE event_type = '$TYPE'" > "$OUT/view.json"
query "SELECT count(bench_new_field) AS n FROM typed_$TYPE" > "$OUT/new_field.json" 2> "$OUT/new_field.err" || true
"$BIN" status --lake "$LAKE" --format json > "$OUT/status.json"

python3 - "$OUT" "$LAKE" "$TYPE" "$FIELD" "$EVENTS" \
  "$plain_first" "$typed_first" "$plain_second" "$typed_second" <<'PY'
import glob, json, os, re, sys
import pyarrow.parquet as pq
out, lake, kind, field, events = sys.argv[1:6]
plain_first, typed_first, plain_second, typed_second = map(float, sys.argv[6:10])

UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}
def scanned(plan):
    total = 0
    for number, unit in re.findall(r"bytes_scanned=([0-9.]+) ?([KMG]?B?)", open(plan).read()):
        total += float(number) * UNITS[unit]
    return int(total)

def chunks(files, column):
    total = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                if group.column(c).path_in_schema == column:
                    total += group.column(c).total_compressed_size
    return total

def rows(path):
    # `lakehouse query --format json` writes JSON Lines: one object per row.
    return [json.loads(line) for line in open(path) if line.strip()]

view_rows = rows(f"{out}/view.json")
view_sum, view_n = 0.0, 0
for row in view_rows:
    payload = json.loads(row["payload"])
    value = payload.get(field)
    # The view: TRY_CAST(json_extract_scalar(payload, '$.field') AS double).
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        view_sum += float(value)
        view_n += 1
typed = rows(f"{out}/typed.json")[0]
same = typed["n"] == view_n and abs((typed["s"] or 0.0) - view_sum) <= 1e-6 * max(1.0, abs(view_sum))

from deltalake import DeltaTable
staging_files = [f for f in DeltaTable(f"{lake}/staging").file_uris() if f"event_type={kind}/" in f]
typed_files = DeltaTable(f"{lake}/typed/{kind}").file_uris()
strip = lambda uris: [u.removeprefix("file://") for u in uris]
chunk_view = chunks(strip(staging_files), "payload")
chunk_typed = chunks(strip(typed_files), field)

new_field = False
try:
    new_field = rows(f"{out}/new_field.json")[0]["n"] > 0
except (ValueError, IndexError, KeyError):
    pass
status = json.load(open(f"{out}/status.json"))
rescued = sum(n for fields in status["typed"]["rescued"].values() for n in fields.values())
result = {
    "events": int(events),
    "types": status["typed"]["tables"],
    "bytes_view": scanned(f"{out}/view.plan"),
    "bytes_typed": scanned(f"{out}/typed.plan"),
    "same_answer": same,
    "new_field_after_one_compaction": new_field,
    "compaction_ratio_first": round(typed_first / plain_first, 2),
    "compaction_ratio_incremental": round(typed_second / plain_second, 2),
    "rescued": rescued,
}
print(f"one field ({kind}.{field}, {view_n} values, all dates): view's scan {result['bytes_view']:,} bytes, "
      f"typed table's {result['bytes_typed']:,} ({result['bytes_view'] / max(1, result['bytes_typed']):.0f}x fewer); "
      f"column chunks {chunk_view:,} against {chunk_typed:,} ({chunk_view / max(1, chunk_typed):.0f}x); same answer {same}")
print(f"typed tables {result['types']}, rows {status['typed']['rows']} (staging {status['typed']['staging_rows']}), rescued {rescued}")
print(json.dumps(result))
PY
