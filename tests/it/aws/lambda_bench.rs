//! The ingest Lambda's figures (`make bench_lambda`, issue 13): the latency and peak memory
//! of one full Kinesis batch, 10,000 records of 600 bytes, plain and KPL-aggregated, and
//! the cold start of its binary, under cargo-lambda's emulator on moto (S3, DynamoDB).
//! `make test` runs it on 200 records (`LAKEHOUSE_BENCH_RECORDS` sets the number) and
//! checks that every record lands once; timings are printed, never asserted.

use std::time::Instant;

use lakehouse_ingest::kpl::{UserRecord, aggregate};
use serde_json::{Value, json};

use super::kinesis::event_document;
use super::lambda::INGEST;
use super::stack::{Stack, StackOptions};

const RECORD_BYTES: usize = 600;
/// User records per KPL aggregate: 60 KB, well under a Kinesis record's 1 MB.
const PER_AGGREGATE: usize = 100;

fn event(prefix: &str, i: usize) -> Vec<u8> {
    let mut line = format!(
        r#"{{"event_uuid":"{prefix}-{i}","event_name":"bench:batch","created_at":{},"pad":""#,
        1_764_000_000 + i
    );
    line.push_str(&"x".repeat(RECORD_BYTES.saturating_sub(line.len() + 2)));
    line.push_str("\"}");
    line.into_bytes()
}

/// Sequence numbers increase within a shard; the Lambda checks they do.
fn sequence(i: usize) -> String {
    format!("4959{:020}", i + 1)
}

fn plain(shard: &str, prefix: &str, n: usize) -> Value {
    let records: Vec<_> = (0..n)
        .map(|i| (sequence(i), format!("k{}", i % 16), event(prefix, i)))
        .collect();
    event_document("bench", shard, &records)
}

fn kpl(shard: &str, prefix: &str, n: usize) -> Value {
    let events: Vec<Vec<u8>> = (0..n).map(|i| event(prefix, i)).collect();
    let records: Vec<_> = events
        .chunks(PER_AGGREGATE)
        .enumerate()
        .map(|(i, chunk)| {
            let users: Vec<UserRecord> = chunk
                .iter()
                .map(|data| UserRecord {
                    partition_key: "k",
                    data,
                })
                .collect();
            (sequence(i), "k".to_string(), aggregate(&users))
        })
        .collect();
    event_document("bench", shard, &records)
}

/// Invokes the ingest Lambda with `document`; returns its wall time in milliseconds.
fn timed_ingest(stack: &Stack, document: &Value) -> f64 {
    let started = Instant::now();
    let failed = stack.ingest(document);
    assert!(failed.is_empty(), "records failed: {failed:?}");
    started.elapsed().as_secs_f64() * 1e3
}

fn peak_mb(stack: &Stack) -> f64 {
    let peaks = stack.emulator.peak_memory(INGEST);
    assert_eq!(peaks.len(), 1, "one execution environment");
    peaks[0] as f64 / (1 << 20) as f64
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread")]
async fn one_full_kinesis_batch_plain_and_kpl_lands_once_and_is_timed() {
    let n: usize = std::env::var("LAKEHOUSE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let options = StackOptions {
        compact_instances: 0,
        ..StackOptions::default()
    };
    let mut stack = Stack::start(options).await;
    let one = |shard: &str, prefix: &str| plain(shard, prefix, 1);

    // Cold: the first invocation of a fresh process (start-up, AWS configuration, the
    // tables opened), then the same call warm; their difference is the cold start.
    let cold = timed_ingest(&stack, &one("cold", "cold"));
    let warm = timed_ingest(&stack, &one("warm", "warm"));
    let plain_doc = plain("plain", "plain", n);
    let plain_ms = timed_ingest(&stack, &plain_doc);
    let plain_peak = peak_mb(&stack);
    // The function's own account of the batch (its metrics line), to tell its time from
    // the emulator's.
    if let Some(line) = stack
        .emulator
        .function_output()
        .iter()
        .rev()
        .find(|l| l.contains("\"batch done\""))
    {
        println!("plain batch, as the function logged it: {line}");
    }

    // A fresh process for the KPL batch, so its peak is its own.
    stack.emulator.kill_function(INGEST);
    let env = stack.env.clone();
    stack.emulator.start_function(INGEST, 1, &env);
    timed_ingest(&stack, &one("cold2", "cold2"));
    let kpl_doc = kpl("kpl", "kpl", n);
    let kpl_ms = timed_ingest(&stack, &kpl_doc);
    let kpl_peak = peak_mb(&stack);

    let rows = stack.query("SELECT count(*) AS n, count(DISTINCT event_uuid) AS u FROM raw");
    let expected = 3 + 2 * n as i64;
    assert_eq!(rows[0]["n"].as_i64(), Some(expected), "every record once");
    assert_eq!(rows[0]["u"].as_i64(), Some(expected));
    assert_eq!(stack.count("quarantine"), 0);
    let size = |doc: &Value| doc.to_string().len() as f64 / 1e6;
    println!(
        "{}",
        json!({
            "records": n,
            "record_bytes": RECORD_BYTES,
            "plain": { "document_mb": size(&plain_doc), "ms": plain_ms, "peak_rss_mb": plain_peak },
            "kpl": { "document_mb": size(&kpl_doc), "ms": kpl_ms, "peak_rss_mb": kpl_peak },
            "cold_invocation_ms": cold,
            "warm_invocation_ms": warm,
            "cold_start_ms": cold - warm,
        })
    );
}
