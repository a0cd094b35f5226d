#!/usr/bin/env bash
# Benchmark (issue 25): each Lambda's binary and zip size, and its cold start, for the
# Lambdas as they link now (the ingest and commit Lambdas built alone: no DataFusion) and
# as they linked before (built together with the compaction Lambda, whose SQL engine
# Cargo's feature unification then links into all three). Native release builds,
# stripped and zipped as `make lambdas` ships them (which cross-compiles for arm64:
# sizes differ a little, the difference between the two builds does not).
# Cold start: from exec to the binary's first request for an event from the Lambda
# runtime API (a local listener that records it): the process's own init, configuration
# read and clients built, without Lambda's download of the code.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="${CARGO_TARGET_DIR:-target}"
OUT="${BENCH_OUT:-bench-out/lambda_size}"
RUNS="${BENCH_RUNS:-5}"
rm -rf "$OUT" && mkdir -p "$OUT/lake"

# measure LABEL BINARY: strip, zip, time RUNS cold starts; one JSON object to results.
measure() {
  local label=$1 binary=$2
  cp "$TARGET/release/$binary" "$OUT/$label"
  strip "$OUT/$label"
  (cd "$OUT" && cp "$label" bootstrap && zip -q -9 "$label.zip" bootstrap && rm bootstrap)
  python3 - "$OUT/$label" "$OUT/$label.zip" "$label" "$RUNS" "$OUT/lake" >> "$OUT/results.jsonl" <<'PY'
import http.server, json, os, socket, statistics, subprocess, sys, threading, time
binary, zipped, label, runs, lake = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
first = threading.Event()
class Runtime(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if "/runtime/invocation/next" in self.path:
            first.set()
        self.send_response(500)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(os.environ,
    AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
    AWS_LAMBDA_FUNCTION_NAME=label, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
    AWS_LAMBDA_FUNCTION_VERSION="1", AWS_REGION="eu-west-1",
    AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
    LAKEHOUSE_LAKE=lake, LAKEHOUSE_CHECKPOINT_TABLE="checkpoints",
    LAKEHOUSE_MANIFEST_TABLE="manifests", LAKEHOUSE_LEASE_TABLE="leases")
times = []
for _ in range(runs):
    first.clear()
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not first.wait(30):
        process.kill()
        sys.exit(f"{label}: no request for an event within 30 s: {process.stderr.read().decode()[-500:]}")
    times.append((time.perf_counter() - started) * 1000)
    process.kill()
    process.wait()
print(json.dumps({
    "lambda": label,
    "binary_mb": round(os.path.getsize(binary) / 2**20, 1),
    "zip_mb": round(os.path.getsize(zipped) / 2**20, 1),
    "cold_start_ms": round(statistics.median(times), 1),
}))
PY
  tail -n 1 "$OUT/results.jsonl"
}

cargo build --release --quiet -p lakehouse-ingest-lambda -p lakehouse-commit-lambda
measure ingest lakehouse-ingest-lambda
measure commit lakehouse-commit-lambda
cargo build --release --quiet -p lakehouse-ingest-lambda -p lakehouse-commit-lambda -p lakehouse-compact-lambda
measure ingest-with-datafusion lakehouse-ingest-lambda
measure commit-with-datafusion lakehouse-commit-lambda
measure compact lakehouse-compact-lambda
