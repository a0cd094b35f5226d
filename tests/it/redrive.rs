//! `lakehouse quarantine list|export|redrive` (issue 14), run as an operator runs them:
//! each quarantine row reaches raw at most once, however often or concurrently re-driven.

use std::collections::BTreeSet;
use std::path::PathBuf;

use lakehouse_ingest::{Destinations, IngestOptions, Ingestor, SourceRecord};
use serde_json::Value;

use crate::helpers::{TestLake, event, kill_after, lakehouse, lakehouse_ok};

const T0: i64 = 1_700_000_000;

/// Three events, four valid ones an older rule quarantined ("a rule change": rejected
/// through the ingest's own `reject`, as a stricter rule would have), and two lines that
/// are no JSON at all, all from one file.
fn quarantined_lake() -> (TestLake, Vec<String>) {
    let lake = TestLake::new();
    let mut lines: Vec<String> = (0..3)
        .map(|i| event(&format!("s{i}"), "a:b", T0, ""))
        .collect();
    lines.extend((0..4).map(|i| event(&format!("l{i}"), "a:b", T0, ",\"note\":\"x\"")));
    lines.extend(["garbage one".to_string(), "{garbage two".to_string()]);
    let source = lake.dir.path().join("in.jsonl").display().to_string();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut ingestor = Ingestor::open(&lake.lake, IngestOptions::default())
            .await
            .expect("open");
        for (i, line) in lines.iter().enumerate() {
            let position = (i + 1).to_string();
            let record = SourceRecord {
                data: line.as_bytes(),
                source: &source,
                position: &position,
            };
            if line.contains("note") {
                let reason = "field `note` is not allowed (an old rule)";
                ingestor
                    .reject(&record, reason, "old rule", Destinations::ALL)
                    .await
                    .expect("reject");
            } else {
                ingestor.push(&record).await.expect("push");
            }
        }
        ingestor.commit().await.expect("commit");
    });
    (lake, lines)
}

/// `quarantine list --format json`.
fn list(lake: &TestLake) -> Value {
    let out = lakehouse_ok(
        &[
            "quarantine",
            "list",
            "--lake",
            lake.path(),
            "--format",
            "json",
        ],
        b"",
    );
    serde_json::from_str(&out).expect("json")
}

fn raw_rows(lake: &TestLake) -> Vec<(String, String, String)> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(
            lake.query("SELECT event_uuid, source, source_position FROM raw ORDER BY event_uuid"),
        )
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (text("event_uuid"), text("source"), text("source_position"))
        })
        .collect()
}

#[test]
fn a_filter_redrive_lands_each_row_once_and_leaves_the_still_invalid_alone() {
    let (lake, lines) = quarantined_lake();
    let listed = list(&lake);
    assert_eq!(listed[0]["rows"], 4, "{listed}");
    assert_eq!(
        listed[0]["error"],
        "field `note` is not allowed (an old rule)"
    );
    assert_eq!(listed[0]["redriven"], 0);

    let redrive_old_rule = [
        "quarantine",
        "redrive",
        "--lake",
        lake.path(),
        "--where",
        "error LIKE '%old rule%'",
    ];
    let out = lakehouse_ok(&redrive_old_rule, b"");
    assert!(
        out.contains("selected 4 already re-driven 0 appended 4 still invalid 0"),
        "{out}"
    );
    let rows = raw_rows(&lake);
    assert_eq!(rows.len(), 7);
    let redriven: Vec<&(String, String, String)> = rows
        .iter()
        .filter(|r| r.1.starts_with("quarantine:"))
        .collect();
    assert_eq!(redriven.len(), 4);
    for (uuid, source, position) in &redriven {
        // The raw row names the quarantine row: its file and line, ingest time and sequence.
        assert!(
            uuid.starts_with('l') && source.ends_with("in.jsonl"),
            "{source}"
        );
        let line: usize = position
            .split('@')
            .next()
            .expect("line")
            .parse()
            .expect("number");
        assert!(lines[line - 1].contains(uuid.as_str()), "{position}");
    }

    // Again, and everything: nothing twice, the garbage stays where it is.
    let out = lakehouse_ok(&redrive_old_rule, b"");
    assert!(
        out.contains("selected 4 already re-driven 4 appended 0")
            && out.ends_with("raw unchanged\n"),
        "{out}"
    );
    let out = lakehouse_ok(&["quarantine", "redrive", "--lake", lake.path()], b"");
    assert!(
        out.contains("selected 6 already re-driven 4 appended 0 still invalid 2 (invalid JSON: 2)"),
        "{out}"
    );
    assert_eq!(raw_rows(&lake).len(), 7);
    let listed = list(&lake);
    assert_eq!(
        (listed[0]["rows"].clone(), listed[0]["redriven"].clone()),
        (4.into(), 4.into())
    );
    // Quarantine keeps every row: re-driving marks, it does not delete.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    assert_eq!(runtime.block_on(lake.count("quarantine")), 6);
}

#[test]
fn export_gives_the_bytes_exactly_and_a_fixed_file_loads_once() {
    let (lake, lines) = quarantined_lake();
    lakehouse_ok(
        &[
            "quarantine",
            "redrive",
            "--lake",
            lake.path(),
            "--where",
            "error LIKE '%old rule%'",
        ],
        b"",
    );
    // Re-driven rows are left out unless --all.
    let out = lakehouse(&["quarantine", "export", "--lake", lake.path()], b"");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n{}\n", lines[7], lines[8])
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("exported 2 records (4 already re-driven left out)")
    );
    let all = lakehouse_ok(
        &["quarantine", "export", "--lake", lake.path(), "--all"],
        b"",
    );
    let exported: BTreeSet<&str> = all.lines().collect();
    let expected: BTreeSet<&str> = lines[3..].iter().map(String::as_str).collect();
    assert_eq!(exported, expected);

    // The operator fixes the garbage and re-drives the file: once, however often.
    let fixed = lake.dir.path().join("fixed.jsonl");
    let fixes = [event("g1", "a:b", T0, ""), event("g2", "a:b", T0, "")].join("\n");
    std::fs::write(&fixed, fixes).expect("write");
    let fixed = fixed.to_str().expect("utf-8");
    for _ in 0..2 {
        lakehouse_ok(
            &[
                "quarantine",
                "redrive",
                "--lake",
                lake.path(),
                "--file",
                fixed,
            ],
            b"",
        );
    }
    assert_eq!(
        raw_rows(&lake)
            .iter()
            .filter(|r| r.0.starts_with('g'))
            .count(),
        2
    );
    // A filter and a file at once is refused before anything runs.
    let out = lakehouse(
        &[
            "quarantine",
            "redrive",
            "--lake",
            lake.path(),
            "--file",
            fixed,
            "--where",
            "true",
        ],
        b"",
    );
    assert!(!out.status.success());
}

#[test]
fn concurrent_redrives_take_each_row_once_and_a_rerun_converges() {
    let (lake, _) = quarantined_lake();
    let path = lake.path().to_string();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || lakehouse(&["quarantine", "redrive", "--lake", &path], b""))
        })
        .collect();
    for run in runs {
        let out = run.join().expect("thread");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A loser fails whole, with a clear line, having committed nothing.
        assert!(
            out.status.success() || stderr.starts_with("error: "),
            "{stderr}"
        );
    }
    lakehouse_ok(&["quarantine", "redrive", "--lake", &path], b"");
    let rows = raw_rows(&lake);
    let redriven: BTreeSet<&String> = rows
        .iter()
        .filter(|r| r.1.starts_with("quarantine:"))
        .map(|r| &r.0)
        .collect();
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert_eq!(redriven.len(), 4);
}

#[test]
fn errors_are_clear() {
    let lake = TestLake::new();
    let valid = event("ok", "a:b", T0, "");
    lakehouse_ok(&["ingest", "--lake", lake.path()], valid.as_bytes());
    let path = lake.path();
    let fails = |args: &[&str], says: &str| {
        let out = lakehouse(args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("error: ") && stderr.contains(says),
            "{stderr}"
        );
    };
    // A lake with no quarantine table at all.
    let empty = TestLake::new();
    fails(
        &["quarantine", "list", "--lake", empty.path()],
        "nothing is quarantined",
    );
    lakehouse_ok(&["ingest", "--lake", path], b"not json\n");
    fails(
        &["quarantine", "list", "--lake", path, "--since", "yesterday"],
        "RFC 3339",
    );
    fails(
        &[
            "quarantine",
            "redrive",
            "--lake",
            path,
            "--where",
            "no_such_column = 1",
        ],
        "no_such_column",
    );
    assert_eq!(raw_rows(&lake).len(), 1);
}

/// SIGKILL at spread-out moments of a re-drive: the rerun re-drives each row once.
#[test]
fn a_redrive_killed_anywhere_reruns_to_each_row_once() {
    let (lake, _) = quarantined_lake();
    let args = ["quarantine", "redrive", "--lake", lake.path()];
    kill_after(&args, &[5, 30, 80, 150, 300]);
    lakehouse_ok(&args, b"");
    let rows = raw_rows(&lake);
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.1.starts_with("quarantine:"))
            .count(),
        4
    );
}

/// The round trip an operator makes: export with keys, fix lines in place (an empty line
/// skips one), re-drive the file: each fixed line re-drives the row it came from, once.
#[test]
fn an_export_fixed_in_place_redrives_the_rows_it_names_once() {
    let (lake, _) = quarantined_lake();
    let invalid_json = "error LIKE 'invalid JSON%'";
    let (export, export_path) = export_to(&lake, "fix.jsonl", Some(invalid_json));
    let export_path = export_path.as_str();
    let keys = std::fs::read_to_string(format!("{export_path}.keys")).expect("keys file");
    assert_eq!(keys.lines().count(), 2);
    assert_eq!(
        std::fs::read_to_string(&export).expect("export"),
        "garbage one\n{garbage two\n"
    );

    // Too few lines: refused, nothing re-driven.
    std::fs::write(&export, event("g1", "a:b", T0, "")).expect("write");
    let out = lakehouse(
        &[
            "quarantine",
            "redrive",
            "--lake",
            lake.path(),
            "--file",
            export_path,
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("has 1 lines but its keys file 2"),
        "{stderr}"
    );

    // The first fixed, the second left for later.
    std::fs::write(&export, format!("{}\n\n", event("g1", "a:b", T0, ""))).expect("write");
    let redrive = [
        "quarantine",
        "redrive",
        "--lake",
        lake.path(),
        "--file",
        export_path,
    ];
    let out = lakehouse_ok(&redrive, b"");
    assert!(
        out.contains("selected 1 already re-driven 0 appended 1"),
        "{out}"
    );
    let out = lakehouse_ok(&redrive, b"");
    assert!(
        out.contains("selected 1 already re-driven 1 appended 0"),
        "{out}"
    );
    let rows = raw_rows(&lake);
    let g1: Vec<_> = rows.iter().filter(|r| r.0 == "g1").collect();
    assert_eq!(g1.len(), 1);
    assert!(
        g1[0].1.starts_with("quarantine:") && g1[0].2.starts_with("8@"),
        "{g1:?}"
    );
    // Compacted, the re-driven event is a row of its type's typed table, once.
    lakehouse_ok(&["compact", "--lake", lake.path()], b"");
    let query = "SELECT count(*) AS n FROM typed_a WHERE event_uuid = 'g1'";
    let out = lakehouse_ok(
        &["query", "--lake", lake.path(), "--format", "json", query],
        b"",
    );
    assert_eq!(out.trim(), r#"{"n":1}"#);

    // The row is marked: a new export leaves it out, list counts it.
    let out = lakehouse_ok(
        &[
            "quarantine",
            "export",
            "--lake",
            lake.path(),
            "--where",
            invalid_json,
        ],
        b"",
    );
    assert_eq!(out, "{garbage two\n");
    let listed = list(&lake);
    let row = listed
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("invalid JSON: expected value"))
        })
        .cloned();
    assert_eq!(
        row.map(|r| r["redriven"].clone()),
        Some(1.into()),
        "{listed}"
    );
}

fn redrive_file_ok(lake: &TestLake, file: &str) -> String {
    let out = redrive_file(lake, file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn redrive_file(lake: &TestLake, file: &str) -> std::process::Output {
    lakehouse(
        &[
            "quarantine",
            "redrive",
            "--lake",
            lake.path(),
            "--file",
            file,
        ],
        b"",
    )
}

/// Re-drive trusts nothing it is given (issue 22 §5): two lines naming one row land it once
/// (the same bytes) or are refused (different bytes), a key naming no quarantine row is
/// refused, and a `--where` that is not one condition is refused, each with nothing
/// re-driven.
#[test]
fn redrive_checks_every_key_and_takes_no_row_twice() {
    let (lake, _) = quarantined_lake();
    let (export, export_path) = export_to(&lake, "fix.jsonl", Some("error LIKE 'invalid JSON%'"));
    let export_path = export_path.as_str();
    let keys_path = format!("{export_path}.keys");
    let keys: Vec<String> = std::fs::read_to_string(&keys_path)
        .expect("keys")
        .lines()
        .map(String::from)
        .collect();
    let write = |lines: &[String], keys: &[&String]| {
        std::fs::write(&export, lines.join("\n") + "\n").expect("write");
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        std::fs::write(&keys_path, keys.join("\n") + "\n").expect("write keys");
    };
    let g1 = event("g1", "a:b", T0, "");

    // Two overlapping exports joined: the same line twice lands once.
    write(
        &[g1.clone(), String::new(), g1.clone(), String::new()],
        &[&keys[0], &keys[1], &keys[0], &keys[1]],
    );
    let out = redrive_file_ok(&lake, export_path);
    assert!(out.contains("appended 1"), "{out}");
    assert_eq!(raw_rows(&lake).iter().filter(|r| r.0 == "g1").count(), 1);

    // One row fixed two ways: which is meant cannot be told.
    let (g2, g3) = (event("g2", "a:b", T0, ""), event("g3", "a:b", T0, ""));
    write(&[g2.clone(), g3.clone()], &[&keys[1], &keys[1]]);
    let out = redrive_file(&lake, export_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("name the same quarantine row"),
        "{stderr}"
    );

    // A key edited to name a row that does not exist.
    let forged = keys[1].replace("\"ingest_seq\":", "\"ingest_seq\":9");
    assert_ne!(forged, keys[1]);
    write(std::slice::from_ref(&g2), &[&forged]);
    let out = redrive_file(&lake, export_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("name no quarantine row"),
        "{stderr}"
    );
    let rows = raw_rows(&lake);
    assert!(!rows.iter().any(|r| r.0 == "g2" || r.0 == "g3"), "{rows:?}");

    // A condition that tries to be a query of its own.
    let out = lakehouse(
        &[
            "quarantine",
            "redrive",
            "--lake",
            lake.path(),
            "--where",
            "false) UNION ALL SELECT CAST(payload AS BYTEA), 'x', source, source_position, \
             ingested_at, ingest_seq FROM raw WHERE (true",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert_eq!(raw_rows(&lake).len(), rows.len());
}

/// A record quarantined as too large keeps only its first bytes; a prefix may parse where
/// the whole record does not (here: an event, then padding, then garbage). It is re-driven
/// only from a line that brings the whole record, never from the prefix.
#[test]
fn a_row_quarantined_as_too_large_is_redriven_only_from_its_whole_record() {
    let lake = TestLake::new();
    let valid_start = event("big", "a:b", T0, "");
    let record = format!("{valid_start}{} trailing garbage", " ".repeat(5000));
    let out = lakehouse_ok(
        &["ingest", "--lake", lake.path(), "--max-record-bytes", "100"],
        record.as_bytes(),
    );
    assert!(out.contains("quarantined 1"), "{out}");

    // By filter: left alone, said so.
    let out = lakehouse_ok(&["quarantine", "redrive", "--lake", lake.path()], b"");
    assert!(
        out.contains("appended 0") && out.contains("too large 1"),
        "{out}"
    );
    assert!(raw_rows(&lake).is_empty());

    // Exported and re-driven unchanged: still the prefix, still left alone.
    let (export, export_path) = export_to(&lake, "big.jsonl", None);
    let export_path = export_path.as_str();
    let out = redrive_file_ok(&lake, export_path);
    assert!(
        out.contains("appended 0") && out.contains("too large 1"),
        "{out}"
    );
    assert!(raw_rows(&lake).is_empty());

    // The whole record, fixed, from the original: re-driven once.
    std::fs::write(&export, format!("{valid_start}\n")).expect("write");
    let out = redrive_file_ok(&lake, export_path);
    assert!(out.contains("appended 1"), "{out}");
    assert_eq!(raw_rows(&lake).len(), 1);
}

/// Exports the quarantine rows matching `condition` (all when `None`) with their keys to
/// `name` in the lake's folder; returns the file and its path as text.
fn export_to(lake: &TestLake, name: &str, condition: Option<&str>) -> (PathBuf, String) {
    let export = lake.dir.path().join(name);
    let path = export.to_str().expect("utf-8").to_string();
    let mut args = vec![
        "quarantine",
        "export",
        "--lake",
        lake.path(),
        "--out",
        &path,
    ];
    if let Some(condition) = condition {
        args.extend(["--where", condition]);
    }
    lakehouse_ok(&args, b"");
    (export, path)
}
