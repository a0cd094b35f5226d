#!/usr/bin/env bash
# Benchmark (issue 23): compaction by key ranges against one run, on the same new events.
# Two stagings of BASE events (7 days, 100 types): one built by the whole-table run, one by
# N key ranges; each then merges NEW fresh events, or NEW/20 newer copies of staged ones,
# by one run and by N key ranges at once. Prints each run's summary line (rows read, files
# scanned and rewritten, index pages read, merges planned again) and staging's rows and
# distinct uuids after it. Counters only: they do not depend on the build or the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${LAKEHOUSE_BIN:-${CARGO_TARGET_DIR:-target}/${PROFILE_DIR:-release}/lakehouse}"
BASE="${BENCH_BASE:-400000}"
NEW="${BENCH_NEW:-40000}"
N="${BENCH_RANGES:-4}"
D="${BENCH_OUT:-bench-out/key_ranges}"
rm -rf "$D" && mkdir -p "$D"
gen() { "$BIN" generate --events "$1" --seed "$2" --days 7 --duplicate-rate 0 --invalid-rate 0; }
gen "$BASE" 1 > "$D/base.jsonl"
gen "$NEW" 2 > "$D/new.jsonl"
python3 - "$D/base.jsonl" $((NEW / 20)) > "$D/copies.jsonl" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    for i, line in enumerate(f):
        if i % 7 == 0 and n > 0:
            event = json.loads(line)
            event["created_at"] += 1
            event["revision"] = "late"
            print(json.dumps(event))
            n -= 1
PY
ranges() { # ranges LAKE: the N key ranges at once, one summary line each
  for i in $(seq 0 $((N - 1))); do
    "$BIN" compact --lake "$1" --keys "$i/$N" --no-maintenance > "$D/out.$i" &
  done
  wait
  for i in $(seq 0 $((N - 1))); do echo "  keys $i/$N: $(cat "$D/out.$i")"; done
}
for built in whole keys; do
  lake="$D/$built-base"
  "$BIN" ingest --lake "$lake" "$D/base.jsonl" > /dev/null
  if [ "$built" = whole ]; then
    "$BIN" compact --lake "$lake" --no-maintenance > /dev/null
  else
    ranges "$lake" > /dev/null
  fi
  "$BIN" compact --lake "$lake" > /dev/null # optimize, as range 0 of a schedule would
  echo "raw bytes per event: $(du -sb "$lake/raw" | awk -v n="$BASE" '{printf "%.1f", $1 / n}')"
done
for built in whole keys; do
  for input in new copies; do
    for run in one ranges; do
      lake="$D/$built-$input-$run"
      cp -r "$D/$built-base" "$lake"
      "$BIN" ingest --lake "$lake" "$D/$input.jsonl" > /dev/null
      echo "staging built by $built, $input events, $run:"
      if [ "$run" = one ]; then
        echo "  one run: $("$BIN" compact --lake "$lake" --no-maintenance)"
      else
        ranges "$lake"
      fi
      echo "  staging rows, distinct: $("$BIN" query --lake "$lake" --format csv \
        'SELECT count(*) AS n, count(DISTINCT event_uuid) AS d FROM staging' | tail -1)"
      rm -rf "$lake"
    done
  done
done
