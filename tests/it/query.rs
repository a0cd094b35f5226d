//! Time travel over Delta history: by version, by instant, and the history listing.

use lakehouse_lake::Table;
use lakehouse_query::{TableSelection, table_history};

use crate::helpers::{TestLake, event};

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
