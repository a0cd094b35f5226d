//! Other engines read our tables: Python `deltalake` (delta-rs's Python binding, which
//! checks the protocol like Spark and Athena do) opens all three tables, and so does
//! delta-kernel-rs (DuckDB's `delta_scan`), past a checkpoint and over the tags compaction
//! leaves on `add` and `remove` actions.

use std::process::{Command, Output};

use lakehouse_compact::CompactOptions;
use lakehouse_lake::{RunRange, Table};

use crate::helpers::{TestLake, event};

const SCRIPT: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for name in ("raw", "staging", "quarantine"):
    t = DeltaTable(f"{sys.argv[1]}/{name}")
    p = t.protocol()
    data = t.to_pyarrow_table()
    out[name] = {
        "rows": data.num_rows,
        "reader": p.min_reader_version,
        "writer": p.min_writer_version,
        "features": (p.reader_features or []) + (p.writer_features or []),
        "types": {f.name: str(f.type) for f in data.schema},
        "partitions": t.metadata().partition_columns,
    }
print(json.dumps(out), flush=True)
# pyarrow's and delta-rs's thread pools can abort the interpreter's teardown
# ("terminate called without an active exception"); the answer is already out.
os._exit(0)
"#;

/// Python deltalake and DuckDB's delta_scan count each table's rows (and staging's uuids).
const ENGINES: &str = r#"
import glob, json, os, sys
import duckdb, duckdb_extension_delta
from deltalake import DeltaTable
[extension] = glob.glob(os.path.join(
    os.path.dirname(duckdb_extension_delta.__file__), "extensions", "*", "delta.duckdb_extension"))
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{extension}'")
out = {}
for name in sys.argv[2:]:
    path = f"{sys.argv[1]}/{name}"
    rows = DeltaTable(path).to_pyarrow_table().num_rows
    [kernel] = con.execute(f"SELECT count(*) FROM delta_scan('{path}')").fetchall()
    out[name] = {"deltalake": rows, "kernel": kernel[0]}
[uuids] = con.execute(
    f"SELECT count(DISTINCT event_uuid) FROM delta_scan('{sys.argv[1]}/staging')").fetchall()
out["staging_uuids"] = uuids[0]
print(json.dumps(out), flush=True)
os._exit(0)
"#;

/// Runs `script` with `args` under python3; panics, naming the install, when python3 or its
/// modules are missing (the tests are `#[ignore]`d with that reason; `make test` runs them).
fn python(script: &str, args: &[&str]) -> Output {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is not runnable: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python3 failed (a missing module: pip install -r tests/requirements.txt): {stderr}"
    );
    output
}

/// Key ranges leave tags on staging's adds and removes (and carried rows), maintenance
/// rewrites, an erasure rewrites three tables (staging's metadata with it) and writes its
/// receipt, and a checkpoint folds it all; commits follow it. Both engines read every
/// table as DataFusion does, `erasures` and `subject_id` included: the same rows, one per
/// uuid in staging.
#[ignore = "needs Python deltalake and duckdb: pip install -r tests/requirements.txt (make test installs them and runs it)"]
#[tokio::test]
async fn other_engines_read_every_table_past_a_checkpoint_after_key_ranges() {
    let lake = TestLake::new();
    let keys = |round: i64| -> Vec<String> {
        let mut lines: Vec<String> = (0..120)
            .map(|i| {
                // Newer copies of earlier rounds' events under other types, and new ones.
                let uuid = format!("u{}", (round * 60 + i) % 200);
                let kind = format!("t{}:x", (round + i) % 5);
                let subject = format!(r#","user_id":"s{}""#, i % 3);
                event(&uuid, &kind, 1_700_000_000 + round * 10 + i % 7, &subject)
            })
            .collect();
        lines.push("not json".into());
        lines
    };
    for round in 0..4 {
        lake.ingest(&keys(round)).await;
        for range in RunRange::keys(0, 2).expect("range").siblings() {
            lake.compact_with(CompactOptions {
                range: Some(range),
                retention: chrono::Duration::zero(),
                ..CompactOptions::default()
            })
            .await;
        }
        if round == 1 {
            // An erasure: rewrites in raw, staging (with its metadata change) and the
            // index, purged files, and the erasures table.
            let erase = ["erase", "--lake", lake.path(), "--subject", "s0"];
            crate::helpers::lakehouse_ok(&erase, b"");
        }
        if round == 2 {
            for table in [
                Table::Raw,
                Table::Staging,
                Table::Quarantine,
                Table::Keys,
                Table::Erasures,
            ] {
                let delta = lake.lake.open(table).await.expect("table");
                deltalake::checkpoints::create_checkpoint(&delta, None)
                    .await
                    .expect("checkpoint");
            }
            // The typed tables too: their files' source tags must survive it, or the
            // next round's mirror would add every row again.
            for typed in lake.lake.typed_tables().await.expect("typed") {
                deltalake::checkpoints::create_checkpoint(&typed.delta, None)
                    .await
                    .expect("checkpoint");
            }
        }
    }
    let log = lake.dir.path().join("staging").join("_delta_log");
    let checkpoints = std::fs::read_dir(&log)
        .expect("log")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains(".checkpoint."))
        })
        .count();
    assert_eq!(checkpoints, 1);
    let tables = ["raw", "staging", "quarantine", "staging_keys", "erasures"];
    let mut args = vec![lake.path()];
    args.extend(tables);
    let output = python(ENGINES, &args);
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    for name in tables {
        let ours = lake.count(name).await;
        assert!(ours > 0, "{name}");
        assert_eq!(read[name]["deltalake"], ours, "{name}: {read}");
        assert_eq!(read[name]["kernel"], ours, "{name}: {read}");
    }
    assert_eq!(read["staging_uuids"], lake.count("staging").await);

    // Each typed table, read by both engines past its checkpoint, holds staging's rows of
    // its type: together, one row per staged event. (Range 0 mirrors; range 1 merged
    // after it in the last round, so one more mirror catches up, as the next run would.)
    let staging = lake.lake.open(Table::Staging).await.expect("staging");
    lakehouse_lake::typed::mirror(&lake.lake, &staging, Default::default())
        .await
        .expect("mirror");
    let typed = lake.lake.typed_tables().await.expect("typed");
    assert_eq!(typed.len(), 5);
    let names: Vec<String> = typed
        .iter()
        .map(|t| {
            let folder = lakehouse_lake::typed::table::typed_folder(&t.event_type);
            format!("typed/{folder}")
        })
        .collect();
    let mut args = vec![lake.path()];
    args.extend(names.iter().map(String::as_str));
    let read: serde_json::Value =
        serde_json::from_slice(&python(ENGINES, &args).stdout).expect("json");
    let mut total = 0;
    for (name, table) in names.iter().zip(&typed) {
        let staged = lake
            .query(&format!(
                "SELECT count(*) AS n FROM staging WHERE event_type = '{}'",
                table.event_type
            ))
            .await[0]["n"]
            .as_i64()
            .expect("count");
        assert_eq!(read[name]["deltalake"], staged, "{name}: {read}");
        assert_eq!(read[name]["kernel"], staged, "{name}: {read}");
        total += staged;
    }
    assert_eq!(total, lake.count("staging").await);
}

#[ignore = "needs Python deltalake and duckdb: pip install -r tests/requirements.txt (make test installs them and runs it)"]
#[tokio::test]
async fn python_deltalake_reads_all_three_tables() {
    let lake = TestLake::new();
    lake.ingest(&[
        event("a", "pay:order:done", 1_700_000_000, r#","amount":1.5"#),
        event("a", "pay:order:done", 1_700_000_100, ""),
        event("b", "we/ird=type é:x", 1_700_000_000, ""),
        "bad line".to_string(),
    ])
    .await;
    lake.compact().await;

    let output = python(SCRIPT, &[lake.path()]);
    let tables: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    for (name, rows) in [("raw", 3), ("staging", 2), ("quarantine", 1)] {
        let t = &tables[name];
        assert_eq!(t["rows"], rows, "{name}: {t}");
        assert_eq!(
            (t["reader"].as_i64(), t["writer"].as_i64()),
            (Some(1), Some(2)),
            "{name}: {t}"
        );
        assert_eq!(t["features"], serde_json::json!([]), "{name}");
    }
    assert_eq!(
        tables["raw"]["types"]["created_datetime"],
        "timestamp[us, tz=UTC]"
    );
    assert_eq!(tables["raw"]["types"]["event_date"], "date32[day]");
    assert_eq!(tables["quarantine"]["types"]["raw"], "binary");
    assert_eq!(
        tables["staging"]["partitions"],
        serde_json::json!(["event_date", "event_type"])
    );
}
