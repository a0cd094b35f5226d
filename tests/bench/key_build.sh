#!/usr/bin/env bash
# Benchmark (issue 23): building the key index from an existing staging, in one process
# (`keys update`) against its chunks run at once (`keys build --plan`, then `keys build
# --as-of V --files A..B` in PARALLEL processes, then `keys update` to record it), at 1×, 4×
# and 16× the staging. Per build: wall seconds, peak RSS, and each chunk's rows per second (what
# sizes a chunk against a Lambda's 15 minutes). Every build is checked exact (`keys check`).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/release/lakehouse}"
SIZES="${BENCH_SIZES:-1 4 16}"  # staged events, in steps
STEP="${BENCH_STEP:-1000000}"   # events per step
PARALLEL="${BENCH_PARALLEL:-2}" # chunk processes at once (the machine's cores)
CHUNK_ROWS="${BENCH_CHUNK_ROWS:-1000000}"
OUT="${BENCH_OUT:-bench-out/key_build}"
rm -rf "$OUT" && mkdir -p "$OUT"
LAKE="$OUT/lake"
RESULTS="$OUT/results"

# shellcheck source=tests/bench/measure.sh
. tests/bench/measure.sh
check() {
  "$BIN" keys check --lake "$LAKE" --format json > "$OUT/check.json"
  python3 - "$OUT/check.json" "$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c["missing"] == 0 and c["wrong"] == 0 and c["extra"] == 0, c
assert c["index_entries"] == int(sys.argv[2]), (c["index_entries"], sys.argv[2])
print(f"exact: {c['index_entries']} entries")
PY
}

have=0
for m in $SIZES; do
  while [ "$have" -lt "$m" ]; do
    have=$((have + 1))
    "$BIN" generate --events "$STEP" --seed $((200 + have)) --days 7 --duplicate-rate 0 \
      --invalid-rate 0 > "$OUT/input.jsonl"
    "$BIN" ingest --lake "$LAKE" "$OUT/input.jsonl" > /dev/null
    "$BIN" compact --lake "$LAKE" --no-maintenance > /dev/null
  done
  rm -f "$OUT/input.jsonl"
  "$BIN" compact --lake "$LAKE" > /dev/null # optimized, as a scheduled compaction leaves it
  rows=$("$BIN" query --lake "$LAKE" --format csv "SELECT count(*) AS n FROM staging" | tail -1)

  # One process.
  rm -rf "$LAKE/staging_keys"
  /usr/bin/time -v -o "$OUT/seq.time" "$BIN" keys update --lake "$LAKE" > "$OUT/seq.out"
  check "$rows"
  echo "staged=$rows one_process wall_s=$(secs "$OUT/seq.time") rss_mb=$(rss "$OUT/seq.time") $(grep -o '(build.*)' "$OUT/seq.out")" | tee -a "$RESULTS"

  # Chunks, PARALLEL at once.
  rm -rf "$LAKE/staging_keys" "$OUT/chunks" && mkdir -p "$OUT/chunks"
  start=$(date +%s.%N)
  "$BIN" keys build --plan --lake "$LAKE" --rows-per-chunk "$CHUNK_ROWS" --format json > "$OUT/plan.json"
  as_of=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["as_of"])' "$OUT/plan.json")
  python3 -c 'import json,sys; [print("%d..%d" % (c["from"], c["to"])) for c in json.load(open(sys.argv[1]))["chunks"]]' \
    "$OUT/plan.json" > "$OUT/chunks.txt"
  export BIN LAKE OUT as_of
  xargs -P "$PARALLEL" -I{} sh -c '/usr/bin/time -v -o "$OUT/chunks/{}.time" "$BIN" keys build --lake "$LAKE" --as-of "$as_of" --files {} --format json > "$OUT/chunks/{}.json"' < "$OUT/chunks.txt"
  "$BIN" keys update --lake "$LAKE" > "$OUT/finish.out"
  end=$(date +%s.%N)
  check "$rows"
  python3 - "$OUT" "$rows" "$start" "$end" "$PARALLEL" <<'PY' | tee -a "$RESULTS"
import json, pathlib, re, sys
out, rows, start, end, parallel = sys.argv[1:]
files = json.loads(pathlib.Path(out, "plan.json").read_text())["files"]
rates, rss = [], []
for t in sorted(pathlib.Path(out, "chunks").glob("*.time")):
    text = t.read_text()
    wall = re.search(r"Elapsed \(wall clock\).*: (.*)", text).group(1)
    secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
    entries = json.loads(t.with_suffix(".json").read_text())["entries"]
    rates.append(entries / secs)
    rss.append(int(re.search(r"Maximum resident set size.*: (\d+)", text).group(1)) // 1024)
print(f"staged={rows} files={files} chunks={len(rates)} at_once={parallel} "
      f"wall_s={float(end) - float(start):.1f} chunk_rows_per_s={min(rates):.0f}..{max(rates):.0f} "
      f"chunk_rss_mb={min(rss)}..{max(rss)}")
PY
done
