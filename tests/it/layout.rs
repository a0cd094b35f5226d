//! raw partitioned by `event_date` only (`RawLayout::Date`, for volume): one file per batch
//! and day with rows sorted by `event_type`; compaction, queries and the CLI give the same
//! answers as with the default layout.

use deltalake::arrow::array::{Array, StringArray};
use lakehouse_lake::files::{live_files, read_file};
use lakehouse_lake::{RawLayout, Table};

use crate::helpers::{TestLake, event, lakehouse_ok};

const DAY: i64 = 86_400;
const T0: i64 = 1_764_000_000;

/// Two batches over 3 days and 5 types, with later copies and invalid records.
fn batches() -> Vec<Vec<String>> {
    let types = ["pay:x", "user:y", "cart:z", "search:q", "zeta:last"];
    (0..2)
        .map(|b| {
            let mut lines: Vec<String> = (0..60)
                .map(|i| {
                    let n = b * 60 + i;
                    let uuid = format!("u{}", n % 80); // copies across the batches
                    event(
                        &uuid,
                        types[n % 5],
                        T0 + (n as i64 % 3) * DAY + n as i64,
                        "",
                    )
                })
                .collect();
            lines.push("not json".into());
            lines
        })
        .collect()
}

fn date_layout_lake() -> TestLake {
    let mut lake = TestLake::new();
    lake.lake = lake.lake.clone().with_raw_layout(RawLayout::Date);
    lake
}

#[tokio::test]
async fn raw_by_date_writes_a_file_per_day_sorted_by_type_and_compacts_the_same() {
    let by_date = date_layout_lake();
    let by_type = TestLake::new();
    for batch in batches() {
        by_date.ingest(&batch).await;
        by_type.ingest(&batch).await;
    }
    let raw = by_date.lake.open(Table::Raw).await.expect("raw");
    let snapshot = raw.snapshot().expect("snapshot");
    assert_eq!(
        snapshot.metadata().partition_columns(),
        &["event_date".to_string()]
    );
    let files = live_files(&raw).expect("files");
    // Two batches, three days each: one file per batch and day (the default layout writes
    // one per day and type).
    assert_eq!(files.len(), 6);
    let by_type_files = live_files(&by_type.lake.open(Table::Raw).await.expect("raw"))
        .expect("files")
        .len();
    assert_eq!(by_type_files, 30);
    for add in &files {
        let rows = read_file(raw.object_store(), Table::Raw, add, None)
            .await
            .expect("read");
        let mut types = Vec::new();
        for batch in &rows {
            let column = batch.column_by_name("event_type").expect("event_type");
            let column = column
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings");
            types.extend((0..column.len()).map(|i| column.value(i).to_string()));
        }
        assert!(
            types.windows(2).all(|w| w[0] <= w[1]),
            "{}: {types:?}",
            add.path
        );
        let dates: std::collections::BTreeSet<_> = rows
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name("event_date").expect("event_date");
                (0..c.len())
                    .map(|i| format!("{:?}", c.slice(i, 1)))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(dates.len(), 1, "one day per file");
    }

    // The same rows, the same staging, the same answers.
    for lake in [&by_date, &by_type] {
        assert_eq!(lake.count("raw").await, 120);
        assert_eq!(lake.count("quarantine").await, 2);
    }
    let per_type =
        "SELECT event_type, count(*) AS n FROM raw GROUP BY event_type ORDER BY event_type";
    assert_eq!(by_date.query(per_type).await, by_type.query(per_type).await);
    by_date.compact().await;
    by_type.compact().await;
    assert_eq!(by_date.staging_state().await, by_type.staging_state().await);
    let staging = by_date.lake.open(Table::Staging).await.expect("staging");
    let partitions = staging
        .snapshot()
        .expect("snapshot")
        .metadata()
        .partition_columns()
        .to_vec();
    assert_eq!(
        partitions,
        ["event_date", "event_type"],
        "staging keeps date and type"
    );

    // A lake opened with the default layout keeps writing raw by date: the table decides.
    let again = TestLake {
        lake: lakehouse_lake::Lake::parse(by_date.path()).expect("lake"),
        dir: tempfile::tempdir().expect("unused"),
    };
    again.ingest(&batches()[0]).await;
    let raw = again.lake.open(Table::Raw).await.expect("raw");
    assert_eq!(
        raw.snapshot()
            .expect("snapshot")
            .metadata()
            .partition_columns()
            .len(),
        1
    );
    assert_eq!(again.count("raw").await, 180);
    again.compact().await;
    assert_eq!(again.staging_state().await, by_type.staging_state().await);
}

#[test]
fn the_cli_creates_raw_by_date_when_asked() {
    let lake = TestLake::new();
    let input = batches().concat().join("\n");
    lakehouse_ok(
        &["ingest", "--lake", lake.path(), "--raw-layout", "date"],
        input.as_bytes(),
    );
    lakehouse_ok(&["compact", "--lake", lake.path()], b"");
    // Folders: raw/event_date=…/<files>, no event_type= level; staging keeps both.
    let days: Vec<_> = std::fs::read_dir(format!("{}/raw", lake.path()))
        .expect("raw folder")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("event_date="))
        .collect();
    assert_eq!(days.len(), 3);
    for day in &days {
        for entry in std::fs::read_dir(day.path()).expect("day folder").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(name.ends_with(".parquet"), "{name} under {:?}", day.path());
        }
    }
    let staging_day = std::fs::read_dir(format!("{}/staging", lake.path()))
        .expect("staging folder")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("event_date="))
        .expect("a staging day");
    let inside = std::fs::read_dir(staging_day.path())
        .expect("day")
        .flatten()
        .next();
    let inside = inside
        .expect("a type folder")
        .file_name()
        .to_string_lossy()
        .into_owned();
    assert!(inside.starts_with("event_type="), "{inside}");
    let out = lakehouse_ok(
        &[
            "query",
            "--lake",
            lake.path(),
            "--format",
            "json",
            "SELECT count(*) AS n FROM staging",
        ],
        b"",
    );
    assert!(out.contains("\"n\":80"), "{out}");
}
