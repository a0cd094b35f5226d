//! Time travel over Delta history: by version, by instant, and the history listing.

use lakehouse_lake::Table;
use lakehouse_query::{TableSelection, open_session, run_query, table_history};

use crate::helpers::{TestLake, event, lakehouse};

const T0: i64 = 1_700_000_000;

#[tokio::test]
async fn queries_read_a_table_at_a_version_or_an_instant() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, "")]).await; // raw v1
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    lake.ingest(&[event("b", "x:1", T0, ""), event("c", "x:1", T0, "")])
        .await; // raw v2

    let mut at_v1 = TableSelection::default();
    at_v1.versions.insert(Table::Raw, 1);
    assert_eq!(
        lake.query_at("SELECT count(*) AS n FROM raw", &at_v1).await[0]["n"],
        1
    );
    assert_eq!(lake.count("raw").await, 3);

    let as_of = TableSelection {
        as_of: Some(between),
        ..Default::default()
    };
    assert_eq!(
        lake.query_at("SELECT count(*) AS n FROM raw", &as_of).await[0]["n"],
        1
    );
}

#[tokio::test]
async fn history_lists_each_version_with_rows_and_files() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, ""), event("b", "y:1", T0, "")])
        .await;
    lake.ingest(&[event("a", "x:1", T0 + 1, "")]).await;
    lake.compact().await;
    let raw = lake.lake.open(Table::Raw).await.unwrap();
    let history = table_history(&raw, 100).await.unwrap();
    let ops: Vec<(u64, &str, u64)> = history
        .iter()
        .map(|e| (e.version, e.operation.as_str(), e.rows_added))
        .collect();
    // Newest first: bin-packing of x (2 files → 1), two appends, the create.
    assert_eq!(
        ops,
        [
            (3, "OPTIMIZE", 2),
            (2, "WRITE", 1),
            (1, "WRITE", 2),
            (0, "CREATE TABLE", 0)
        ]
    );
    assert_eq!(
        (
            history[0].files_added,
            history[0].files_removed,
            history[0].rows_removed
        ),
        (1, 2, Some(2))
    );
    assert!(
        history
            .iter()
            .all(|e| e.timestamp.as_deref().is_some_and(|t| t.ends_with('Z')))
    );

    let staging = lake.lake.open(Table::Staging).await.unwrap();
    let history = table_history(&staging, 100).await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.operation == "MERGE" && e.rows_added == 2),
        "{history:?}"
    );
}

/// Reads never write (issue 22 §2): SQL that would change a table, make a file or change the
/// session is refused wherever user SQL runs, and the tables are as they were. Tables are
/// registered read-only too, so even SQL planned without the options cannot write.
#[tokio::test]
async fn sql_that_writes_is_refused_and_the_tables_stay_as_they_were() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, ""), "not json".to_string()])
        .await;
    lake.compact().await;
    let out = lake.dir.path().join("copied");
    let writes = [
        "INSERT INTO raw SELECT * FROM raw".to_string(),
        "INSERT OVERWRITE staging SELECT * FROM staging WHERE false".to_string(),
        format!(
            "COPY (SELECT * FROM raw) TO '{}' STORED AS PARQUET",
            out.display()
        ),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT * FROM raw".to_string(),
        format!(
            "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{}'",
            out.display()
        ),
        "DROP TABLE raw".to_string(),
        "DELETE FROM raw".to_string(),
        "UPDATE staging SET payload = ''".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "EXPLAIN ANALYZE INSERT INTO raw SELECT * FROM raw".to_string(),
    ];
    let (ctx, _) = open_session(&lake.lake, &TableSelection::default())
        .await
        .unwrap();
    for sql in &writes {
        let error = run_query(&ctx, sql).await.err();
        assert!(error.is_some(), "{sql}: was not refused");
        // The CLI, from the command line and from a file, says why in one line.
        let cli = lakehouse(&["query", "--lake", lake.path(), sql], b"");
        let stderr = String::from_utf8_lossy(&cli.stderr);
        assert!(!cli.status.success(), "{sql}");
        assert!(stderr.starts_with("error: "), "{sql}: {stderr}");
        let file = lake.dir.path().join("write.sql");
        std::fs::write(&file, sql).unwrap();
        let cli = lakehouse(
            &[
                "query",
                "--lake",
                lake.path(),
                "--file",
                file.to_str().unwrap(),
            ],
            b"",
        );
        assert!(!cli.status.success(), "--file {sql}");
    }
    let error = lakehouse(&["query", "--lake", lake.path(), &writes[0]], b"");
    let stderr = String::from_utf8_lossy(&error.stderr);
    assert!(stderr.contains("queries only read the lake"), "{stderr}");
    // Planned without the read-only options, an insert still finds no way to write.
    let direct = ctx.sql("INSERT INTO raw SELECT * FROM raw").await;
    let refused = match direct {
        Err(_) => true,
        Ok(frame) => frame.collect().await.is_err(),
    };
    assert!(refused, "the table provider took an insert");
    assert!(!out.exists(), "COPY wrote {}", out.display());
    assert_eq!(
        (lake.count("raw").await, lake.count("staging").await),
        (1, 1)
    );
    // Reads still read.
    assert_eq!(
        lake.query("SELECT count(*) AS n FROM quarantine").await[0]["n"],
        1
    );
}
