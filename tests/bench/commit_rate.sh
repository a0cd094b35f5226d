#!/usr/bin/env bash
# Commit-rate ceiling of one Delta log: W concurrent writers appending small commits to
# `raw` on moto's S3 (served one request at a time, so conditional PUTs are atomic as on
# S3). Prints one line per writer count; see README "Scaling".
set -euo pipefail
cd "$(dirname "$0")/../.."
WRITERS="${BENCH_WRITERS:-1,2,4,8,16}"
COMMITS="${BENCH_COMMITS:-20}"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 tests/tools/moto_serial.py "$PORT" > /dev/null 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
       AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
  sleep 0.1
done
python3 -c "import boto3; boto3.client('s3').create_bucket(Bucket='bench')"
"${CARGO_TARGET_DIR:-target}/${PROFILE_DIR:-debug}/examples/commit_rate" s3://bench/commits "$WRITERS" "$COMMITS"
