//! The `lakehouse` binary as a user runs it: exit codes, the error line, output formats.

use std::process::Command;

use crate::helpers::{TestLake, lakehouse, lakehouse_ok, lakehouse_read_by_head};

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
            "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/events",
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
        r#"{"source":"kinesis:events/shardId-000000000001","source_position":"100"}"#
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

#[test]
fn the_demo_runs_and_its_suggested_commands_work_as_printed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(["demo", "--lake", "demo-lake", "--events", "2000"])
        .current_dir(dir.path())
        .env_remove("LAKEHOUSE_LAKE")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The rounds searched the whole key index: the sweep finds nothing to resolve.
    assert!(
        stdout.contains(" 0 events staged more than once, 0 rows removed"),
        "{stdout}"
    );
    // One customer erased, with its check.
    assert!(stdout.contains(", 0 rows left in "), "{stdout}");
    let suggestion = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Try: "))
        .unwrap_or_else(|| panic!("the demo suggests no command: {stdout}"));
    // Pasted into a shell in the folder the demo ran in, as a user would.
    let run = Command::new("bash")
        .args(["-c", suggestion])
        .current_dir(dir.path())
        .output()
        .expect("run the suggestion");
    assert!(
        run.status.success(),
        "{suggestion}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("event_uuid"),
        "{suggestion} printed no staging rows"
    );
}

#[test]
fn reads_never_write_and_a_missing_lake_is_an_error() {
    let lake = TestLake::new();
    let typo = lake.dir.path().join("no-such-lake");
    let typo = typo.to_str().expect("utf-8 path");
    for args in [
        vec!["query", "--lake", typo, "SELECT 1"],
        vec![
            "query",
            "--lake",
            typo,
            "--as-of",
            "2025-01-01T00:00:00Z",
            "SELECT 1",
        ],
        vec!["query", "--lake", typo, "--version", "raw=0", "SELECT 1"],
        vec!["history", "--lake", typo, "raw"],
    ] {
        let out = lakehouse(&args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a missing lake"
        );
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            !std::path::Path::new(typo).exists(),
            "{args:?} created the folder it was reading"
        );
    }
    // Ingest writes raw and quarantine; staging, never compacted, reads as empty and is
    // not created by reading it.
    let line = r#"{"event_uuid":"a","event_name":"x:1","created_at":1700000000}"#;
    lakehouse_ok(&["ingest", "--lake", lake.path()], line.as_bytes());
    let out = lakehouse_ok(
        &[
            "query",
            "--lake",
            lake.path(),
            "--format",
            "json",
            "SELECT (SELECT count(*) FROM raw) AS raw, (SELECT count(*) FROM staging) AS staging",
        ],
        b"",
    );
    assert_eq!(out.trim(), r#"{"raw":1,"staging":0}"#);
    assert!(
        !lake.dir.path().join("staging").exists(),
        "a query created staging"
    );
}

/// A reader that stops early (`lakehouse history raw | head -1`, issue 22 §6): every command
/// that prints ends quietly, with 141 as a process stopped by SIGPIPE does, instead of a
/// panic (exit 101) or an error line.
#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let lake = TestLake::new();
    let path = lake.path();
    let lines: Vec<String> = (0..50)
        .map(|i| crate::helpers::event(&format!("u{i}"), "x:1", 1_700_000_000, ""))
        .collect();
    for _ in 0..3 {
        lakehouse_ok(
            &["ingest", "--lake", path],
            lines.join("\nbroken\n").as_bytes(),
        );
    }
    lakehouse_ok(&["compact", "--lake", path], b"");
    let commands: [&[&str]; 7] = [
        &["history", "--lake", path, "raw"],
        &["status", "--lake", path],
        &["quarantine", "list", "--lake", path],
        &["quarantine", "export", "--lake", path],
        &["query", "--lake", path, "SELECT * FROM raw"],
        &["generate", "--events", "100000"],
        &[
            "catalog", "views", "--lake", path, "--days", "0", "--out", path,
        ],
    ];
    for args in commands {
        let out = lakehouse_read_by_head(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
