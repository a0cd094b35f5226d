//! The analyst SQL in `sql/queries` on a local lake, and view inference on known payloads.

use std::process::Command;

use lakehouse_catalog::infer::FieldType;
use lakehouse_catalog::{
    GENERATED_MARKER, ScanOptions, plan_views, scan_staging, write_view_files,
};
use serde_json::Value;

use crate::helpers::{TestLake, event};

fn query_file(lake: &TestLake, file: &std::path::Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(["query", "--lake", lake.path(), "--format", "json", "--file"])
        .arg(file)
        .output()
        .expect("run lakehouse query");
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON row"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_analyst_query_runs_locally_and_adds_up() {
    let lake = TestLake::new();
    let generated = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args([
            "generate",
            "--events",
            "6000",
            "--seed",
            "5",
            "--invalid-rate",
            "0.02",
        ])
        .output()
        .expect("generate");
    let lines: Vec<&[u8]> = generated
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    lake.ingest(&lines).await;
    lake.compact().await;
    let (raw, staging, quarantine) = (
        lake.count("raw").await,
        lake.count("staging").await,
        lake.count("quarantine").await,
    );

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/queries");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("sql/queries")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let sum = |rows: &[Value], column: &str| -> i64 {
        rows.iter().map(|r| r[column].as_i64().unwrap_or(0)).sum()
    };
    for file in &files {
        let rows = query_file(&lake, file);
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        // Compaction searched the whole key index: no uuid is staged twice. The sweep's
        // tests give this query copies to find.
        if name == "duplicated_events" {
            assert!(rows.is_empty(), "{rows:?}");
            continue;
        }
        assert!(!rows.is_empty(), "{} returned no rows", file.display());
        match name {
            "events_per_day_and_type" => {
                assert_eq!(sum(&rows, "raw_rows"), raw);
                assert_eq!(sum(&rows, "events"), staging);
            }
            "duplicate_rate" => assert_eq!(sum(&rows, "duplicates"), raw - staging),
            "late_arriving_events" => assert_eq!(sum(&rows, "events"), raw),
            "quarantine_reasons" => {
                assert_eq!(sum(&rows, "records"), quarantine);
                assert!(
                    rows.iter().any(|r| r["reason"] == "invalid JSON"),
                    "{rows:?}"
                );
            }
            "event_latest_state" => {
                assert_eq!(rows[0]["source_table"], "staging");
                assert!(
                    rows.len() >= 3,
                    "the most-copied event has revisions: {rows:?}"
                );
                let uuid = &rows[0]["event_uuid"];
                assert!(rows.iter().all(|r| &r["event_uuid"] == uuid));
            }
            "funnel" => {
                let (customers, converted) = (sum(&rows, "customers"), sum(&rows, "converted"));
                assert!(
                    customers > 0 && converted > 0 && converted <= customers,
                    "{rows:?}"
                );
            }
            "typed_amount_per_day" => {
                let staged = lake
                    .query("SELECT count(*) AS n FROM staging WHERE event_type = 'payment_item'")
                    .await;
                assert_eq!(Some(sum(&rows, "events")), staged[0]["n"].as_i64());
                assert_eq!(sum(&rows, "amounts"), sum(&rows, "events"), "{rows:?}");
                assert_eq!(sum(&rows, "rescued"), 0, "{rows:?}");
            }
            other => panic!("no check for sql/queries/{other}.sql: add one"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_inferred_from_known_payloads_and_conflicts_widen() {
    let lake = TestLake::new();
    let t = 1_764_000_000;
    lake.ingest(&[
        event(
            "a1",
            "shop_order:web:created",
            t,
            r#","amount":10,"paid":true,"note":"x","items":[1]"#,
        ),
        event(
            "a2",
            "shop_order:web:created",
            t,
            r#","amount":12.5,"paid":false,"note":5"#,
        ),
        event(
            "a3",
            "shop_order:api:created",
            t,
            r#","amount":3,"Event Date":"d","meta":{"k":1}"#,
        ),
        event("b1", "user_login:web:ok", t, r#","user_id":7,"ok":null"#),
        event("b2", "user_login:web:ok", t, r#","user_id":8"#),
    ])
    .await;
    lake.compact().await;
    let options = ScanOptions {
        days: None,
        ..ScanOptions::default()
    };
    let inference = scan_staging(&lake.lake, &options).await.expect("scan");
    let views = plan_views(&inference.into_shapes());
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["shop_order", "user_login"]);

    let shop = &views[0];
    assert_eq!(shop.events_sampled, 3);
    let fields: Vec<(&str, FieldType, bool)> = shop
        .fields
        .iter()
        .map(|f| (f.column.as_str(), f.field_type, f.widened))
        .collect();
    assert_eq!(
        fields,
        [
            ("payload_event_date", FieldType::String, false),
            ("amount", FieldType::Double, false),
            ("items", FieldType::Json, false),
            ("meta", FieldType::Json, false),
            ("note", FieldType::String, true),
            ("paid", FieldType::Boolean, false),
        ]
    );
    assert!(
        shop.notes
            .iter()
            .any(|n| n.contains("\"note\" seen as 1 integer, 1 string: widened to string")),
        "{:?}",
        shop.notes
    );
    let login = &views[1];
    assert_eq!(
        login
            .fields
            .iter()
            .map(|f| (f.column.as_str(), f.field_type))
            .collect::<Vec<_>>(),
        [("ok", FieldType::String), ("user_id", FieldType::Integer)]
    );

    // Files: one per view; stale generated ones go, hand-written ones stay.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("gone_type.sql"),
        format!("{GENERATED_MARKER}\nx"),
    )
    .unwrap();
    std::fs::write(dir.path().join("mine.sql"), "SELECT 1").unwrap();
    let written = write_view_files(dir.path(), &views).expect("write");
    assert_eq!(written.len(), 2);
    assert!(!dir.path().join("gone_type.sql").exists());
    assert!(dir.path().join("mine.sql").exists());
    let sql = std::fs::read_to_string(dir.path().join("shop_order.sql")).expect("view");
    assert!(sql.contains("-- note: field \"note\" seen as"), "{sql}");
    assert!(
        sql.contains(r#"json_extract_scalar(payload, '$["Event Date"]') AS "payload_event_date""#),
        "{sql}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_of_a_lake_without_staging_or_events_say_why() {
    let lake = TestLake::new();
    let err = scan_staging(&lake.lake, &ScanOptions::default())
        .await
        .expect_err("no staging");
    assert!(
        err.to_string().contains("staging does not exist yet"),
        "{err}"
    );
    lake.ingest(&[event("a", "t:s", 1_000_000_000, "")]).await;
    lake.compact().await;
    let err = scan_staging(&lake.lake, &ScanOptions::default())
        .await
        .expect_err("nothing recent");
    assert!(
        err.to_string().contains("no events in the last 7 days"),
        "{err}"
    );
}

/// The SQL Athena runs parses as Athena SQL: the files in `sql/` and the views generated
/// for a lake (`tests/sql/check_athena.py`, sqlglot's Athena dialect).
#[ignore = "needs sqlglot: pip install -r tests/requirements.txt (make test installs it and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn athena_sql_and_generated_views_parse_as_athena_sql() {
    let lake = TestLake::new();
    let generated =
        crate::helpers::lakehouse(&["generate", "--events", "3000", "--seed", "7"], b"");
    crate::helpers::lakehouse(&["ingest", "--lake", lake.path()], &generated.stdout);
    lake.compact().await;
    let views = tempfile::tempdir().expect("tempdir");
    let out = views.path().to_str().expect("utf-8");
    crate::helpers::lakehouse_ok(
        &[
            "catalog",
            "views",
            "--lake",
            lake.path(),
            "--days",
            "0",
            "--out",
            out,
        ],
        b"",
    );
    let script = format!("{}/tests/sql/check_athena.py", env!("CARGO_MANIFEST_DIR"));
    let check = Command::new("python3")
        .args([script.as_str(), "--views", out])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.contains("files parse"), "{stdout}");
}
