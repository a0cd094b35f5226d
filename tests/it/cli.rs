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

/// Runs a command that must succeed and returns its stdout.
fn lakehouse_ok(args: &[&str], stdin: &[u8]) -> String {
    let out = lakehouse(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn generate_ingest_compact_query_history_through_the_binary() {
    let lake = TestLake::new();
    let path = lake.path();
    let generated = lakehouse_ok(
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
    assert_eq!(generated.matches('\n').count(), 3000);

    // Half from stdin, half from a file with CRLF line ends.
    let lines: Vec<&str> = generated.lines().collect();
    let (first, second) = lines.split_at(1500);
    let file = lake.dir.path().join("second.jsonl");
    std::fs::write(&file, second.join("\r\n")).unwrap();
    let out = lakehouse_ok(&["ingest", "--lake", path], first.join("\n").as_bytes());
    assert!(out.starts_with("ingested: read 1500 appended "), "{out}");
    let appended_first = out.split(' ').nth(4).expect("appended count").to_string();
    lakehouse_ok(&["ingest", "--lake", path, file.to_str().unwrap()], b"");

    let out = lakehouse_ok(&["compact", "--lake", path], b"");
    assert!(out.starts_with("compacted: "), "{out}");

    let sql = "SELECT (SELECT count(*) FROM raw) + (SELECT count(*) FROM quarantine) AS total, \
               (SELECT count(DISTINCT event_uuid) FROM raw) AS distinct_raw, \
               (SELECT count(*) FROM staging) AS staging";
    let out = lakehouse_ok(&["query", "--lake", path, "--format", "json", sql], b"");
    let row: serde_json::Value = serde_json::from_str(&out).expect("one JSON line");
    assert_eq!(row["total"], 3000, "every line is in raw or quarantine");
    assert_eq!(
        row["staging"], row["distinct_raw"],
        "one staging row per uuid"
    );

    let args = [
        "query",
        "--lake",
        path,
        "--format",
        "csv",
        "--version",
        "raw=1",
    ];
    let out = lakehouse_ok(
        &[&args[..], &["SELECT count(*) AS n FROM raw"]].concat(),
        b"",
    );
    assert_eq!(out, format!("n\n{appended_first}\n"));

    let out = lakehouse_ok(
        &["history", "--lake", path, "--format", "json", "staging"],
        b"",
    );
    assert!(
        out.lines().any(|l| l.contains("\"operation\":\"MERGE\"")),
        "{out}"
    );
}

#[test]
fn kinesis_event_documents_are_ingested() {
    use base64::Engine;
    let lake = TestLake::new();
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let record = |seq: u32, data: &str| {
        serde_json::json!({
            "eventID": format!("shardId-000000000001:{seq}"),
            "eventSource": "aws:kinesis",
            "kinesis": {"data": encode(data), "sequenceNumber": seq.to_string(),
                        "partitionKey": "p", "approximateArrivalTimestamp": 1700000000.0}
        })
    };
    let doc = serde_json::json!({"Records": [
        record(100, r#"{"event_uuid":"k1","event_name":"a:b","created_at":1700000000}"#),
        record(101, "garbage"),
    ]});
    let file = lake.dir.path().join("event.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let args = ["ingest", "--lake", lake.path(), "--format", "kinesis-event"];
    let out = lakehouse_ok(&[&args[..], &[file.to_str().unwrap()]].concat(), b"");
    assert!(out.contains("appended 1 quarantined 1"), "{out}");
    let sql = "SELECT source, source_position FROM raw";
    let out = lakehouse_ok(
        &["query", "--lake", lake.path(), "--format", "json", sql],
        b"",
    );
    assert_eq!(
        out.trim(),
        r#"{"source":"kinesis:shardId-000000000001","source_position":"100"}"#
    );
}

#[test]
fn failures_exit_non_zero_with_one_error_line() {
    let lake = TestLake::new();
    let path = lake.path();
    let cases: Vec<Vec<&str>> = vec![
        vec!["query", "--lake", path, "SELECT * FROM nowhere"],
        vec!["query", "--lake", path, "--version", "raw=x", "SELECT 1"],
        vec!["query", "--lake", path, "--version", "raw=99", "SELECT 1"],
        vec!["query", "--lake", path, "--as-of", "yesterday", "SELECT 1"],
        vec!["ingest", "--lake", path, "/no/such/file.jsonl"],
        vec!["ingest", "--lake", "ftp://nope/x"],
        vec!["history", "--lake", path, "nosuchtable"],
        vec!["ingest", "--lake", path, "--format", "kinesis-event", "-"],
    ];
    for args in cases {
        let out = lakehouse(&args, b"{not a kinesis document");
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].starts_with("error: "), "{args:?}: {stderr}");
    }
}
