#!/usr/bin/env bash
# Benchmark (issue 23): the key index's lookups at scale (examples/dedup_scale). Builds an
# index of DEDUP_SCALE_KEYS (100M) keys in bench-data/dedup_scale once (~2.4 GB; reused while
# the size matches), then looks up rounds of DEDUP_SCALE_ROUND_KEYS (1M) new keys, 5 % of
# them staged copies, through an object store with S3-like latency. The run's log goes to
# bench-out/dedup_scale.log; the last stdout line is the summary JSON. A last round looks
# up only 4M fresh keys written beside the index (the hot window), then removes them.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${CARGO_TARGET_DIR:-target}/${PROFILE_DIR:-debug}/examples/dedup_scale"
mkdir -p bench-out
/usr/bin/time -v "$BIN" --keys "${DEDUP_SCALE_KEYS:-100000000}" \
  --round-keys "${DEDUP_SCALE_ROUND_KEYS:-1000000}" --rounds "${DEDUP_SCALE_ROUNDS:-3}" \
  2>bench-out/dedup_scale.log | tee bench-out/dedup_scale.out
grep -E "Maximum resident|Elapsed" bench-out/dedup_scale.log >&2
tail -1 bench-out/dedup_scale.out
