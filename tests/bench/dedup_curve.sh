#!/usr/bin/env bash
# Benchmark (issue 23): the same round of ROUND_KEYS (1M) new keys looked up in a cold index
# of 1×, 4× and 16× CURVE_BASE (1M) keys, through the whole index and through a hot window
# holding HOT_KEYS (1M) keys (examples/dedup_scale, S3-like latency): the curve of what a
# round costs against what the index holds. Indexes are kept in bench-data/dedup_curve_N.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${DEDUP_SCALE_BIN:-${CARGO_TARGET_DIR:-target}/${PROFILE_DIR:-debug}/examples/dedup_scale}"
BASE="${CURVE_BASE:-1000000}"
DATA="${BENCH_DIR:-bench-data}"
OUT="${BENCH_DIR:-bench-out}"
mkdir -p "$DATA" "$OUT"
for m in 1 4 16; do
  n=$((BASE * m))
  "$BIN" --keys "$n" --round-keys "${ROUND_KEYS:-1000000}" --rounds 1 \
    --hot-keys "${HOT_KEYS:-1000000}" --get-ms "${GET_MS:-25}" --dir "$DATA/dedup_curve_$n" \
    > "$OUT/dedup_curve_$n.out"
  python3 - "$OUT/dedup_curve_$n.out" "$m" <<'PY'
import json, sys
summary = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"{sys.argv[2]:>2}x: {summary['keys_indexed']} keys indexed | whole index: "
      f"{summary['round_s']:.2f} s, {summary['bytes_read_per_new_key']:.1f} bytes and "
      f"{summary['requests_per_new_key'] * 1e6:.0f} GETs per million new keys | hot window: "
      f"{summary['hot_window_round_s']:.2f} s, {summary['hot_window_round_bytes'] / 1e6:.1f} MB, "
      f"{summary['hot_window_round_gets']} GETs | copies missed {summary['duplicates']}")
PY
done
