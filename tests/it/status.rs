//! `lakehouse status` (issue 14): the lake's health from its logs, as a cron check runs it.

use lakehouse_compact::CompactOptions;
use lakehouse_lake::{RunRange, Table};
use serde_json::Value;

use crate::helpers::{TestLake, event, lakehouse, lakehouse_ok};

const T0: i64 = 1_700_000_000;

fn status(lake: &TestLake, extra: &[&str]) -> (Value, std::process::Output) {
    let mut args = vec!["status", "--lake", lake.path(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = lakehouse(&args, b"");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (json, out)
}

fn table<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == name)
        .expect("table")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_counts_lag_and_quarantine_by_reason_from_the_logs_and_fails_past_a_limit() {
    let lake = TestLake::new();
    let out = lakehouse(&["status", "--lake", lake.path()], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.starts_with("error: no table"),
        "{stderr}"
    );

    // Two days, two types; three rejections of two kinds.
    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            event(
                &format!("u{i}"),
                if i % 2 == 0 { "a:x" } else { "b:y" },
                T0 + (i % 2) * 86_400,
                "",
            )
        })
        .collect();
    lines.extend([
        "not json".into(),
        "{broken".into(),
        r#"{"event_name":"a:x","created_at":1}"#.into(),
    ]);
    lake.ingest(&lines).await;
    lake.ingest(&[event("u40", "a:x", T0, "")]).await;

    let (s, out) = status(&lake, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = table(&s, "raw");
    assert_eq!(raw["version"], 2);
    assert_eq!(raw["last_operation"], "WRITE");
    assert_eq!(raw["partitions"], 2);
    assert_eq!(raw["files"], raw["small_files"]);
    assert_eq!(raw["oldest_version"], 0);
    assert_eq!(raw["retention_hours"], 168);
    assert_eq!(table(&s, "staging")["version"], Value::Null);
    // Staging does not exist: both ingests are behind (not the table's creation).
    assert_eq!(s["compaction"]["consumed"], Value::Null);
    assert_eq!(s["compaction"]["commits_behind"], 2);
    assert_eq!(s["compaction"]["rows_behind"], 41);
    let q = &s["quarantine"];
    assert_eq!(q["rows"], 3);
    assert_eq!(q["by_reason"]["invalid JSON"], 2);
    assert_eq!(q["by_reason"]["missing field `event_uuid`"], 1);
    assert_eq!(q["unrecorded"], 0);

    // Past a limit: the table is printed, then one `error:` line, and the exit is non-zero.
    let out = lakehouse(
        &[
            "status",
            "--lake",
            lake.path(),
            "--max-quarantined",
            "2",
            "--max-small-files",
            "1000",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr
            .starts_with("error: unhealthy: 3 rows quarantined in 24 h exceed --max-quarantined 2"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("quarantine"));

    // Compacted: nothing behind, and --max-lag holds.
    lake.compact().await;
    let (s, out) = status(&lake, &["--max-lag", "0s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s["compaction"]["commits_behind"], 0);
    assert_eq!(s["compaction"]["consumed"], 2);
    assert_eq!(s["compaction"]["lag_seconds"], 0);
    assert!(table(&s, "staging")["files"].as_u64().expect("files") > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fan_out_lag_is_the_slowest_range_and_a_recreated_raw_is_a_problem() {
    let lake = TestLake::new();
    let lines: Vec<String> = (0..60)
        .map(|i| event(&format!("u{i}"), &format!("t{}:x", i % 6), T0, ""))
        .collect();
    lake.ingest(&lines).await;
    // Only range 0 of 2 runs: the lag is range 1's, which consumed nothing of its own and
    // has no whole-table run to start from; status names it.
    lake.compact_with(CompactOptions {
        range: RunRange::keys(0, 2),
        ..CompactOptions::default()
    })
    .await;
    let (s, _) = status(&lake, &[]);
    assert_eq!(s["compaction"]["consumed"], Value::Null, "{s}");
    let ranges = &s["compaction"]["ranges"];
    assert_eq!(ranges[0]["range"], "keys 0/2", "{s}");
    assert_eq!(ranges[0]["consumed"], 1, "{s}");
    assert_eq!(ranges[1]["range"], "keys 1/2", "{s}");
    assert_eq!(ranges[1]["consumed"], Value::Null, "{s}");
    let text = lakehouse(&["status", "--lake", lake.path()], b"");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("ranges: keys 0/2 v1, keys 1/2 nothing yet"),
        "{text}"
    );
    lake.compact_with(CompactOptions {
        range: RunRange::keys(1, 2),
        ..CompactOptions::default()
    })
    .await;
    lake.ingest(&[event("late", "t0:x", T0, "")]).await;
    let (s, _) = status(&lake, &[]);
    assert_eq!(s["compaction"]["consumed"], 1, "{s}");
    assert_eq!(s["compaction"]["commits_behind"], 1);
    assert_eq!(s["compaction"]["rows_behind"], 1);

    // raw removed and written again under staging.
    std::fs::remove_dir_all(lake.dir.path().join(Table::Raw.name())).expect("remove raw");
    lake.ingest(&[event("new", "t0:x", T0, "")]).await;
    let out = lakehouse(&["status", "--lake", lake.path(), "--max-lag", "1d"], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("recreated"), "{stderr}");
    let stdout = lakehouse_ok(&["status", "--lake", lake.path()], b"");
    assert!(
        stdout.contains("problem: staging was built from raw table"),
        "{stdout}"
    );
}

/// Time travel as far as the files allow (issue 22 §6): after a vacuum with a retention
/// shorter than the table's own, `status` reports time travel from when that vacuum left
/// the files whole, not from what `delta.deletedFileRetentionDuration` promises.
#[tokio::test(flavor = "multi_thread")]
async fn time_travel_starts_where_a_short_retention_vacuum_left_it() {
    let lake = TestLake::new();
    for i in 0..3 {
        lake.ingest(&[event(&format!("u{i}"), "a:x", T0, "")]).await;
    }
    lake.compact().await;
    let (json, _) = status(&lake, &[]);
    let created = table(&json, "raw")["oldest_version_at"].clone();
    assert_eq!(table(&json, "raw")["time_travel_from"], created, "{json}");

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let vacuumed_at = chrono::Utc::now();
    lake.compact_with(CompactOptions {
        retention: chrono::Duration::zero(),
        ..CompactOptions::default()
    })
    .await;
    let (json, _) = status(&lake, &[]);
    for name in ["raw", "staging", "quarantine"] {
        let from: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(table(&json, name)["time_travel_from"].clone())
                .expect("time_travel_from");
        assert!(from >= vacuumed_at, "{name}: {from} before {vacuumed_at}");
    }
    // A later vacuum with the table's own retention does not move it back.
    lake.compact().await;
    let (again, _) = status(&lake, &[]);
    assert_eq!(
        table(&again, "raw")["time_travel_from"],
        table(&json, "raw")["time_travel_from"]
    );
}
