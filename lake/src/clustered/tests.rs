use std::collections::BTreeSet;
use std::num::NonZeroU64;

use deltalake::DeltaTable;
use deltalake::arrow::array::{ArrayRef, new_null_array};
use deltalake::logstore::object_store::memory::InMemory;
use url::Url;

use super::*;
use crate::lake::Lake;
use crate::schema::{EVENT_NAME, EVENT_TYPE, PAYLOAD};
use crate::write::{FileWriter, PartitionKey};

/// `batch` in bucket order, and the footer entry saying where each bucket starts.
fn cluster(batch: &RecordBatch, then_by: &[&str]) -> Result<(RecordBatch, KeyValue)> {
    let (order, starts) = cluster_order(batch, then_by)?;
    Ok((
        deltalake::arrow::compute::take_record_batch(batch, &order)?,
        starts,
    ))
}

/// Raw rows of one partition with these uuids, ~150 bytes of payload each.
fn raw_rows(uuids: &[String]) -> RecordBatch {
    let schema = Table::Raw.arrow_schema();
    let text = |f: &dyn Fn(&String) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(uuids.iter().map(f)))
    };
    let columns = schema
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            EVENT_UUID => text(&|u| u.clone()),
            EVENT_NAME => text(&|_| "t:x".to_string()),
            EVENT_TYPE => text(&|_| "t".to_string()),
            PAYLOAD => text(&|u| format!(r#"{{"u":{u:?},"pad":"{}"}}"#, "x".repeat(120))),
            _ => new_null_array(field.data_type(), uuids.len()),
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("raw rows")
}

async fn raw_table() -> DeltaTable {
    let root = Url::parse("memory:///lake/").expect("url");
    let lake = Lake::in_store(root, Arc::new(InMemory::new()));
    lake.open(Table::Raw).await.expect("raw")
}

fn partition() -> PartitionKey {
    PartitionKey {
        date: 20_000,
        name: "t".into(),
    }
}

/// Writes `rows` as one raw file: clustered by the table's writer, or as given (in
/// their order, with `footer` as the footer's entry) by a writer that rolls files.
async fn write(raw: &DeltaTable, rows: RecordBatch, footer: Option<KeyValue>) -> Add {
    let writer = match footer {
        None => FileWriter::for_table(Table::Raw, raw).expect("writer"),
        Some(entry) => {
            let properties = Table::Raw
                .writer_properties()
                .into_builder()
                .set_key_value_metadata(Some(vec![entry]))
                .build();
            FileWriter::with_properties(Table::Raw, raw, properties)
                .expect("writer")
                .with_file_size(NonZeroU64::new(1 << 30).expect("size"))
        }
    };
    let mut adds = writer.write(&partition(), rows).await.expect("write");
    assert_eq!(adds.len(), 1);
    adds.remove(0)
}

fn uuids_of(rows: &[RecordBatch]) -> Vec<String> {
    rows.iter()
        .flat_map(|b| {
            let column = b.column_by_name(EVENT_UUID).expect("uuids");
            let uuids = column
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings");
            uuids
                .iter()
                .flatten()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The uuids of `all` whose keys fall in `buckets`.
fn in_buckets(all: &[String], buckets: &Range<u32>) -> BTreeSet<String> {
    all.iter()
        .filter(|u| buckets.contains(&Key::of(u).bucket()))
        .cloned()
        .collect()
}

fn ranges() -> impl Iterator<Item = Range<u32>> {
    [1u32, 2, 4, 16, 64].into_iter().flat_map(|n| {
        let width = KEY_BUCKETS / n;
        (0..n).map(move |i| i * width..(i + 1) * width)
    })
}

#[tokio::test]
async fn a_range_reads_every_row_of_its_buckets_and_one_row_either_side() {
    let raw = raw_table().await;
    let uuids: Vec<String> = (0..20_000).map(|i| format!("u{i}")).collect();
    let add = write(&raw, raw_rows(&uuids), None).await;
    for buckets in ranges() {
        let read = read_buckets(raw.object_store(), Table::Raw, &add, buckets.clone())
            .await
            .expect("read");
        let want = in_buckets(&uuids, &buckets);
        let got: BTreeSet<String> = uuids_of(&read.rows)
            .into_iter()
            .filter(|u| buckets.contains(&Key::of(u).bucket()))
            .collect();
        assert!(read.clustered, "{buckets:?}");
        assert_eq!(got, want, "{buckets:?}");
        assert!(read.scanned <= want.len() as u64 + 2, "{buckets:?}");
    }
}

#[tokio::test]
async fn a_file_written_before_clustering_is_read_whole() {
    let raw = raw_table().await;
    let uuids: Vec<String> = (0..3_000).map(|i| format!("old{i}")).collect();
    let properties = Table::Raw.writer_properties();
    let writer = FileWriter::with_properties(Table::Raw, &raw, properties)
        .expect("writer")
        .with_file_size(NonZeroU64::new(1 << 30).expect("size"));
    let add = writer
        .write(&partition(), raw_rows(&uuids))
        .await
        .expect("write")
        .remove(0);
    let read = read_buckets(raw.object_store(), Table::Raw, &add, 0..4)
        .await
        .expect("read");
    assert!(!read.clustered);
    assert_eq!(read.scanned, 3_000);
}

/// A footer that names rows other than the file's bucket starts, by a row either way or
/// over rows in no order, is found out by the rows either side, and the file read whole:
/// never a row of the range left out.
#[tokio::test]
async fn a_footer_the_rows_belie_is_read_whole() {
    let raw = raw_table().await;
    let uuids: Vec<String> = (0..3_000).map(|i| format!("lie{i}")).collect();
    let (sorted, footer) = cluster(&raw_rows(&uuids), &[]).expect("cluster");
    let starts: Vec<usize> = footer
        .value
        .as_deref()
        .expect("value")
        .split(',')
        .map(|n| n.parse().expect("number"))
        .collect();
    let b = (1..KEY_BUCKETS as usize - 1)
        .find(|&b| starts[b - 1] < starts[b] && starts[b] < starts[b + 1])
        .expect("a bucket between two others");
    let lie = |starts: Vec<usize>| {
        let value = starts.iter().map(ToString::to_string).collect::<Vec<_>>();
        KeyValue::new(BUCKET_STARTS.to_string(), value.join(","))
    };
    let mut early = starts.clone();
    early[b] -= 1;
    let mut late = starts.clone();
    late[b] += 1;
    let cases = [
        (sorted.clone(), lie(early), b as u32 - 1..b as u32),
        (sorted, lie(late), b as u32..b as u32 + 1),
        (raw_rows(&uuids), footer, 0..16),
    ];
    for (rows, footer, buckets) in cases {
        let add = write(&raw, rows, Some(footer)).await;
        let read = read_buckets(raw.object_store(), Table::Raw, &add, buckets.clone())
            .await
            .expect("read");
        assert!(!read.clustered, "{buckets:?}");
        let got: BTreeSet<String> = uuids_of(&read.rows).into_iter().collect();
        assert_eq!(got.len(), uuids.len());
    }
}

proptest::proptest! {
    /// Any footer text: bucket starts that describe the file, or none; and a window over
    /// them, for any range, lies within the file.
    #[test]
    fn any_footer_value_gives_starts_that_fit_the_file_or_none(
        value in "[0-9,]{0,300}|\\PC{0,40}",
        rows in 0usize..5_000,
        steps in proptest::collection::vec(0usize..100, 64),
        start in 0u32..=64,
        width in 0u32..=64,
    ) {
        let buckets = start..(start + width).min(KEY_BUCKETS);
        for (text, rows) in [(value, rows), (plausible(&steps), steps.iter().sum())] {
            if let Some(starts) = parse_starts(&text, rows) {
                proptest::prop_assert_eq!(starts.len(), KEY_BUCKETS as usize + 1);
                let window = Window::of(&starts, &buckets);
                proptest::prop_assert!(window.rows.start <= window.rows.end);
                proptest::prop_assert!(window.rows.end <= rows);
            }
        }
    }
}

/// Well-formed starts whose buckets hold `steps` rows each.
fn plausible(steps: &[usize]) -> String {
    let mut at = 0;
    let mut starts = vec!["0".to_string()];
    for step in steps {
        at += step;
        starts.push(at.to_string());
    }
    starts.join(",")
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Any uuids (odd Unicode, repeats, none at all) and any range: the rows read hold
    /// every row of the range's buckets, against a plain filter of all rows.
    #[test]
    fn any_file_and_range_reads_what_a_filter_of_all_rows_keeps(
        uuids in proptest::collection::vec("\\PC{0,40}", 1..600),
        n_log in 0u32..7,
        index in 0u32..64,
    ) {
        let n = 1 << n_log;
        let width = KEY_BUCKETS / n;
        let buckets = (index % n) * width..(index % n + 1) * width;
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (got, scanned) = runtime.block_on(async {
            let raw = raw_table().await;
            let add = write(&raw, raw_rows(&uuids), None).await;
            let read = read_buckets(raw.object_store(), Table::Raw, &add, buckets.clone())
                .await
                .expect("read");
            assert!(read.clustered);
            (uuids_of(&read.rows), read.scanned)
        });
        let want: Vec<&String> = uuids.iter().filter(|u| buckets.contains(&Key::of(u).bucket())).collect();
        let mut got: Vec<&String> = got.iter().filter(|u| buckets.contains(&Key::of(u).bucket())).collect();
        let mut want = want;
        got.sort();
        want.sort();
        proptest::prop_assert_eq!(&got, &want);
        proptest::prop_assert!(scanned <= want.len() as u64 + 2);
    }
}
