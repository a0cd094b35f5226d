#!/usr/bin/env bash
# Benchmark (issue 24): erasure on a lake of EVENTS (1M) events over DAYS (7) days, with
# the subject path PATH: `$.user_id` by default (the generator gives one event type in
# five a user id of 5M, so a subject sits in a raw and a staging file: well under 1 % of
# the files), or `$.customer_id` (about 50 events each, every event type). Erases 1
# subject, then BATCH (1,000) subjects in one request. Per request:
# wall seconds, peak RSS, files rewritten, bytes read (bloom filters plus the files read
# whole, an upper bound; footers aside) against the lake's bytes, and the residue the
# check found. Last line: one JSON object for the batch, with the single subject's figures
# under "one_subject".
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
EVENTS="${BENCH_EVENTS:-1000000}"
BATCH="${BENCH_BATCH:-1000}"
DAYS="${BENCH_DAYS:-7}"
INPUTS="${BENCH_INPUTS:-10}"
SUBJECT="${BENCH_SUBJECT:-user_id}"
OUT="${BENCH_OUT:-bench-out/erase}"
rm -rf "$OUT" && mkdir -p "$OUT"
LAKE="$OUT/lake"

# shellcheck source=tests/bench/measure.sh
. tests/bench/measure.sh

"$BIN" subjects --lake "$LAKE" --set "{\"*\": \"\$.$SUBJECT\"}" > /dev/null
"$BIN" generate --events "$EVENTS" --seed 24 --days "$DAYS" > "$OUT/input.jsonl"
# Several inputs, as several ingests: raw holds a file per type and day per commit.
split -n "l/$INPUTS" -d "$OUT/input.jsonl" "$OUT/part-"
for part in "$OUT"/part-*; do "$BIN" ingest --lake "$LAKE" "$part" > /dev/null; done
"$BIN" compact --lake "$LAKE" > /dev/null
python3 - "$OUT/input.jsonl" "$BATCH" "$OUT/one.txt" "$OUT/batch.txt" "$SUBJECT" <<'PY'
import json, sys
path, n, one, batch, field = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
seen = []  # in order; n is small
with open(path, errors="replace") as f:
    for line in f:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        c = event.get(field) if isinstance(event, dict) else None
        c = None if c is None or isinstance(c, (dict, list, bool)) else str(c)
        if c and c not in seen:
            seen.append(c)
            if len(seen) > n:
                break
open(one, "w").write(seen[0] + "\n")
open(batch, "w").write("\n".join(seen[1 : n + 1]) + "\n")
PY
rm -f "$OUT/input.jsonl" "$OUT"/part-*

# erase NAME FILE: one request, its receipt kept and its figures printed.
erase() {
  local name=$1 file=$2
  /usr/bin/time -v -o "$OUT/$name.time" "$BIN" erase --lake "$LAKE" --subjects-file "$file" \
    --request-id "bench-$name" --format json > "$OUT/$name.json"
  python3 - "$OUT/$name.json" "$(secs "$OUT/$name.time")" "$(rss "$OUT/$name.time")" "$EVENTS" "$SUBJECT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
tables = r["tables"]
lake = sum(t["table_bytes"] for t in tables)
read = sum(t["filter_bytes"] + t["bytes_read"] for t in tables)
print(json.dumps({
    "events": int(sys.argv[4]),
    "subject_path": "$." + sys.argv[5],
    "subjects": len(r["subject_hashes"]),
    "files": sum(t["files"] for t in tables),
    "files_read": sum(t["files_read"] for t in tables),
    "files_rewritten": r["files_rewritten"],
    "rows_removed": r["rows_removed"],
    "lake_bytes": lake,
    "bytes_read": read,
    "bytes_read_fraction": round(read / lake, 5) if lake else 0,
    "quarantine_bytes_read": sum(t["bytes_read"] for t in tables if t["table"] == "quarantine"),
    "seconds": float(sys.argv[2]),
    "peak_rss_mb": int(sys.argv[3]),
    "residue_rows": r["residue_rows"],
}))
PY
}

one=$(erase one "$OUT/one.txt")
echo "one subject: $one"
batch=$(erase batch "$OUT/batch.txt")
echo "batch: $batch"
receipts=$("$BIN" query --lake "$LAKE" --format csv "SELECT count(*) FROM erasures" | tail -1)
python3 -c '
import json, sys
one, batch, receipts = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
batch["receipts"] = receipts
batch["one_subject"] = one
print(json.dumps(batch))
' "$one" "$batch" "$receipts"
