//! The `lakehouse` binary as a user runs it: exit codes, the error line, output formats.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::helpers::TestLake;

fn lakehouse(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(args)
        .env_remove("LAKEHOUSE_LAKE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lakehouse");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn generate_ingest_compact_query_history_through_the_binary() {
    let lake = TestLake::new();
    let generated = lakehouse(
        &[
            "generate",
            "--events",
            "3000",
            "--seed",
            "9",
            "--invalid-rate",
            "0.02",
        ],
        b"",
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    assert_eq!(
        generated.stdout.iter().filter(|&&b| b == b'\n').count(),
        3000
    );

    // Half from stdin, half as a file with CRLF line ends.
    let lines: Vec<&[u8]> = generated
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let (first, second) = lines.split_at(1500);
    let file = lake.dir.path().join("second.jsonl");
    std::fs::write(&file, second.join(&b"\r\n"[..])).unwrap();
    let out = lakehouse(&["ingest", "--lake", lake.path()], &first.join(&b'\n'));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ingested: read 1500 "),
        "{}",
        text(&out.stdout)
    );
    let out = lakehouse(
        &["ingest", "--lake", lake.path(), file.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = lakehouse(&["compact", "--lake", lake.path()], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("compacted: "));

    let out = lakehouse(
        &[
            "query",
            "--lake",
            lake.path(),
            "--format",
            "json",
            "SELECT (SELECT count(*) FROM raw) + (SELECT count(*) FROM quarantine) AS total, \
           (SELECT count(DISTINCT event_uuid) FROM raw) AS distinct_raw, \
           (SELECT count(*) FROM staging) AS staging",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(row["total"], 3000, "every line is in raw or quarantine");
    assert_eq!(
        row["staging"], row["distinct_raw"],
        "one staging row per uuid"
    );

    let out = lakehouse(
        &[
            "query",
            "--lake",
            lake.path(),
            "--format",
            "csv",
            "--version",
            "raw=1",
            "SELECT count(*) AS n FROM raw",
        ],
        b"",
    );
    assert_eq!(text(&out.stdout).lines().collect::<Vec<_>>()[0], "n");

    let out = lakehouse(
        &[
            "history",
            "--lake",
            lake.path(),
            "--format",
            "json",
            "staging",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.contains("\"operation\":\"MERGE\""))
    );
}

#[test]
fn kinesis_event_documents_are_ingested() {
    use base64::Engine;
    let lake = TestLake::new();
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let doc = serde_json::json!({"Records": [
        {"eventID": "shardId-000000000001:100", "eventSource": "aws:kinesis",
         "kinesis": {"data": encode(r#"{"event_uuid":"k1","event_name":"a:b","created_at":1700000000}"#),
                     "sequenceNumber": "100", "partitionKey": "p", "approximateArrivalTimestamp": 1700000000.0}},
        {"eventID": "shardId-000000000001:101", "eventSource": "aws:kinesis",
         "kinesis": {"data": encode("garbage"), "sequenceNumber": "101", "partitionKey": "p",
                     "approximateArrivalTimestamp": 1700000000.0}}
    ]});
    let file = lake.dir.path().join("event.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = lakehouse(
        &[
            "ingest",
            "--lake",
            lake.path(),
            "--format",
            "kinesis-event",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("appended 1 quarantined 1"),
        "{}",
        text(&out.stdout)
    );
    let out = lakehouse(
        &[
            "query",
            "--lake",
            lake.path(),
            "--format",
            "json",
            "SELECT source, source_position FROM raw",
        ],
        b"",
    );
    assert_eq!(
        text(&out.stdout).trim(),
        r#"{"source":"kinesis:shardId-000000000001","source_position":"100"}"#
    );
}

#[test]
fn failures_exit_non_zero_with_one_error_line() {
    let lake = TestLake::new();
    let cases: Vec<Vec<&str>> = vec![
        vec!["query", "--lake", lake.path(), "SELECT * FROM nowhere"],
        vec![
            "query",
            "--lake",
            lake.path(),
            "--version",
            "raw=x",
            "SELECT 1",
        ],
        vec![
            "query",
            "--lake",
            lake.path(),
            "--as-of",
            "yesterday",
            "SELECT 1",
        ],
        vec!["ingest", "--lake", lake.path(), "/no/such/file.jsonl"],
        vec!["ingest", "--lake", "ftp://nope/x"],
        vec!["history", "--lake", lake.path(), "nosuchtable"],
        vec![
            "ingest",
            "--lake",
            lake.path(),
            "--format",
            "kinesis-event",
            "-",
        ],
    ];
    for args in cases {
        let out = lakehouse(&args, b"{not a kinesis document");
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].starts_with("error: "), "{args:?}: {stderr}");
    }
}
