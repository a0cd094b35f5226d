//! One Kinesis decoder: the same event document, ingested by the Lambda (on moto's S3) and
//! by `lakehouse ingest --format kinesis-event` (on a local folder), gives the same rows.

use serde_json::Value;

use super::kinesis::Stream;
use super::stack::{Stack, StackOptions};
use super::workload::Workload;
use crate::helpers::{TestLake, lakehouse_ok};

const RAW_ROWS: &str = "SELECT event_uuid, event_name, event_type, event_subtype, created_at, \
     created_datetime, event_date, source, source_position, ingest_seq, payload \
     FROM raw ORDER BY source_position, ingest_seq";
const QUARANTINE_ROWS: &str = "SELECT encode(raw, 'hex') AS raw, error, source, \
     source_position, ingest_seq FROM quarantine ORDER BY source_position, ingest_seq";

fn local_rows(lake: &str, sql: &str) -> Vec<Value> {
    lakehouse_ok(&["query", "--lake", lake, "--format", "json", sql], b"")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON row"))
        .collect()
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_lambda_decode_one_document_into_the_same_rows() {
    let stack = Stack::start(StackOptions::default()).await;
    // Plain records, invalid ones, KPL aggregates and one corrupt aggregate, side by side.
    let w = Workload::new("decode", 300, 1);
    let stream = Stream::create(&stack.moto, "decoded", 1).await;
    stream.put(&w.records).await;
    let shard = stream.shard_ids().remove(0);
    let records = stream.read_shard(&shard).await;
    assert_eq!(records.len(), w.records.len(), "moto returned every record");
    let document = stream.event_document(&shard, &records);

    assert!(
        stack.ingest(&document).is_empty(),
        "the Lambda took the batch"
    );

    let local = TestLake::new();
    let file = local.dir.path().join("batch.json");
    std::fs::write(&file, document.to_string()).expect("write the document");
    let summary = lakehouse_ok(
        &[
            "ingest",
            "--lake",
            local.path(),
            "--format",
            "kinesis-event",
            file.to_str().expect("utf-8 path"),
        ],
        b"",
    );
    assert!(summary.starts_with("ingested: "), "{summary}");

    for (table, sql) in [("raw", RAW_ROWS), ("quarantine", QUARANTINE_ROWS)] {
        let through_lambda = stack.query(sql);
        let through_cli = local_rows(local.path(), sql);
        assert!(!through_lambda.is_empty(), "{table}: the Lambda wrote rows");
        assert_eq!(
            through_cli.len(),
            through_lambda.len(),
            "{table}: row counts differ between CLI and Lambda"
        );
        for (cli_row, lambda_row) in through_cli.iter().zip(&through_lambda) {
            assert_eq!(
                cli_row, lambda_row,
                "{table}: the CLI and the Lambda disagree"
            );
        }
    }
    let raw = stack.query(RAW_ROWS);
    assert_eq!(raw.len() as i64, w.raw_rows(), "every valid user record");
    let source = format!("kinesis:decoded/{shard}");
    assert!(raw.iter().all(|r| r["source"] == source.as_str()));
    assert!(
        raw.iter().any(|r| r["source_position"]
            .as_str()
            .is_some_and(|p| p.contains(':'))),
        "user records of KPL aggregates carry <sequence>:<index>"
    );
    let quarantine = stack.query(QUARANTINE_ROWS);
    assert_eq!(
        quarantine.len() as i64,
        w.quarantine,
        "every invalid record"
    );
    assert!(
        quarantine.iter().any(|r| r["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("corrupt KPL aggregate"))),
        "the corrupt aggregate is quarantined whole"
    );
}
