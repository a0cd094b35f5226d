//! Raw's layouts. Partitioned by `event_date` only (`RawLayout::Date`, for volume): one
//! file per batch and day; compaction, queries and the CLI give the same answers as with
//! the default layout. In every layout a file's rows are in key-bucket order (then by
//! type), so a key range of compaction reads its share of each file.

use std::sync::Arc;

use deltalake::ObjectStore;
use deltalake::arrow::array::{Array, StringArray};
use deltalake::logstore::object_store::local::LocalFileSystem;
use lakehouse_compact::CompactOptions;
use lakehouse_lake::clustered::read_buckets;
use lakehouse_lake::files::{live_files, read_file};
use lakehouse_lake::keys::{KEY_BUCKETS, Key};
use lakehouse_lake::{Lake, RawLayout, RunRange, Table};
use url::Url;

use crate::helpers::{TestLake, event, lakehouse_ok};
use crate::latency::{LatencyModel, LatencyStore};

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

/// Reads raw file `add`, asserting its rows are in key-bucket order, then by type, and
/// that its footer says where each bucket starts; returns the rows.
async fn assert_in_table_order(
    raw: &deltalake::DeltaTable,
    add: &deltalake::kernel::Add,
) -> Vec<deltalake::arrow::array::RecordBatch> {
    let rows = read_file(raw.object_store(), Table::Raw, add, None)
        .await
        .expect("read");
    let mut order = Vec::new();
    for batch in &rows {
        let text = |name| {
            let column = batch.column_by_name(name).expect(name);
            let column = column.as_any().downcast_ref::<StringArray>();
            column.expect("strings").clone()
        };
        let (types, uuids) = (text("event_type"), text("event_uuid"));
        order.extend((0..types.len()).map(|i| {
            let bucket = Key::of(uuids.value(i)).bucket();
            (bucket, types.value(i).to_string())
        }));
    }
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "{}: {order:?}",
        add.path
    );
    let read = read_buckets(raw.object_store(), Table::Raw, add, 0..1)
        .await
        .expect("read a bucket");
    assert!(
        read.clustered,
        "{}: no bucket starts in its footer",
        add.path
    );
    rows
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
        let rows = assert_in_table_order(&raw, add).await;
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
        lake: Lake::parse(by_date.path()).expect("lake"),
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

/// Bin-packing raw writes through the lake's writer: a day's files become one file in
/// the table's order with its bucket footer, not the inputs' sorted runs end to end.
#[tokio::test]
async fn bin_packed_raw_files_keep_the_tables_order_and_footer() {
    let lake = date_layout_lake();
    for batch in batches() {
        lake.ingest(&batch).await;
    }
    let report = lake.compact().await;
    let raw = lake.lake.open(Table::Raw).await.expect("raw");
    let files = live_files(&raw).expect("files");
    // Two files per day, packed into one per day.
    assert_eq!(files.len(), 3, "{report:?}");
    for add in &files {
        assert_in_table_order(&raw, add).await;
    }
    assert_eq!(lake.count("raw").await, 120);
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

/// Raw's rows are in key-bucket order, each file's footer naming where each bucket starts
/// (`lakehouse_lake::clustered`): a key range of compaction decodes its buckets' rows
/// (and one either side) of every raw file, and on an object store fetches about its
/// share of the bytes, while staging comes out exactly as one run makes it.
#[tokio::test(flavor = "multi_thread")]
async fn key_ranges_read_only_their_buckets_of_raw_and_stage_what_one_run_stages() {
    const EVENTS: usize = 24_000;
    const RANGES: u32 = 16;
    // ~150 bytes of payload that compresses poorly, as real payloads do.
    let pad =
        |i: usize| format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).repeat(9);
    let lines: Vec<String> = (0..EVENTS)
        .map(|i| {
            event(
                &format!("k{i}"),
                "pay:x",
                T0 + i as i64,
                &format!(r#","pad":"{}""#, pad(i)),
            )
        })
        .collect();
    let (fanned, whole) = (TestLake::new(), TestLake::new());
    fanned.ingest(&lines).await;
    whole.ingest(&lines).await;
    let raw = fanned.lake.open(Table::Raw).await.expect("raw");
    let files = live_files(&raw).expect("files");
    assert_eq!(files.len(), 1, "one partition, one file");
    let file = &files[0];

    let mut scanned = 0;
    for index in 0..RANGES {
        let range = RunRange::keys(index, RANGES).expect("range");
        let report = fanned
            .compact_with(CompactOptions {
                range: Some(range),
                skip_maintenance: true,
                ..CompactOptions::default()
            })
            .await;
        let total = report.total();
        let mine = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| range.holds_uuid(&format!("k{i}")))
            .count() as u64;
        assert_eq!(total.source_rows, mine, "{range:?}");
        assert!(total.raw_rows_scanned <= mine + 2, "{range:?}: {total:?}");
        scanned += total.raw_rows_scanned;
    }
    // Unclustered, each range would decode all 24,000 rows: 384,000 in all.
    assert!(
        scanned <= EVENTS as u64 + 2 * u64::from(RANGES),
        "{scanned}"
    );
    whole.compact().await;
    assert_eq!(fanned.staging_state().await, whole.staging_state().await);

    // Bytes and GETs, counted as S3 serves them: each range fetches the file's footer
    // (one GET) and the row groups its rows are in (one GET), about 1/8 of the file, where
    // reading it whole in every range fetches it 16 times.
    let store = Arc::new(LatencyStore::new(
        LocalFileSystem::new(),
        LatencyModel::default(),
        1,
    ));
    let root = Url::from_directory_path(fanned.dir.path()).expect("root url");
    let counted = Lake::in_store(root, store.clone() as Arc<dyn ObjectStore>);
    let raw = counted.open(Table::Raw).await.expect("raw");
    assert!(file.size > 1 << 20, "a file read in parts: {}", file.size);
    let (gets_before, bytes_before) = store.gets();
    for index in 0..RANGES {
        let width = KEY_BUCKETS / RANGES;
        let buckets = index * width..(index + 1) * width;
        let read = read_buckets(raw.object_store(), Table::Raw, file, buckets)
            .await
            .expect("read");
        assert!(read.clustered);
    }
    let (gets, bytes) = store.gets();
    let (gets, bytes) = (gets - gets_before, bytes - bytes_before);
    println!(
        "{RANGES} key ranges fetched {bytes} bytes of a {} byte raw file in {gets} GETs",
        file.size
    );
    assert!(gets <= 2 * u64::from(RANGES), "{gets} GETs");
    assert!(
        bytes < 5 * file.size as u64 / 2,
        "{bytes} bytes of {} in {gets} GETs",
        file.size
    );
}
