//! The index's entries: read from staging's files, written as the index's files (one per
//! bucket per flush), and read back from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use deltalake::kernel::Add;
use deltalake::{DeltaTable, ObjectStore};
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::files::read_file_on_task;
use lakehouse_lake::keys::{
    Key, KeyEntry, bucket_name, keys_batch, tag_entries_per_date, tag_indexed_at,
};
use lakehouse_lake::schema::{CREATED_DATETIME, EVENT_TYPE, EVENT_UUID, KEY_HI};
use lakehouse_lake::write::{FileWriter, PartitionKey};
use lakehouse_lake::{LakeError, Table};

use crate::error::Result;

/// Entries held before they are written out as one file per bucket: bounds memory
/// (~40 bytes an entry) on a rebuild or a long lag.
const ENTRIES_PER_FLUSH: usize = 2_000_000;

/// Staging files read at once.
pub(super) const READS_AT_ONCE: usize = 8;

/// Writes the entries of the rows of staging's `files` as index files, one per bucket per
/// flush; returns their adds.
pub(crate) async fn index_files(
    staging: &DeltaTable,
    keys: &DeltaTable,
    files: &[Add],
    entries_added: &mut u64,
) -> Result<Vec<Add>> {
    let writer = FileWriter::for_table(Table::Keys, keys)?;
    let store = staging.object_store();
    let mut reads = futures::stream::iter(files.iter().cloned())
        .map(|add| read_entries(store.clone(), add))
        .buffer_unordered(READS_AT_ONCE);
    let mut buckets: BTreeMap<u32, Vec<KeyEntry>> = BTreeMap::new();
    let mut held = 0;
    let mut adds = Vec::new();
    while let Some(entries) = reads.try_next().await? {
        held += entries.len();
        *entries_added += entries.len() as u64;
        for entry in entries {
            buckets.entry(entry.key.bucket()).or_default().push(entry);
        }
        if held >= ENTRIES_PER_FLUSH {
            adds.extend(flush(&writer, std::mem::take(&mut buckets)).await?);
            held = 0;
        }
    }
    adds.extend(flush(&writer, buckets).await?);
    Ok(adds)
}

async fn flush(writer: &FileWriter, buckets: BTreeMap<u32, Vec<KeyEntry>>) -> Result<Vec<Add>> {
    let mut adds = Vec::new();
    for (bucket, entries) in buckets {
        let key = PartitionKey {
            date: 0,
            name: bucket_name(bucket).into(),
        };
        adds.extend(writer.write(&key, keys_batch(bucket, &entries)?).await?);
    }
    // After the staging commit that added these rows, so a run is hot at least as long
    // after its rows were staged as the window.
    let now = chrono::Utc::now().timestamp();
    adds.iter_mut().for_each(|add| {
        tag_indexed_at(add, now);
        tag_entries_per_date(add);
    });
    Ok(adds)
}

/// The index entries of one staging file's rows.
pub(crate) async fn read_entries(store: Arc<dyn ObjectStore>, add: Add) -> Result<Vec<KeyEntry>> {
    const COLUMNS: &[&str] = &[EVENT_UUID, CREATED_DATETIME];
    let event_type: Arc<str> = add
        .partition_values
        .get(EVENT_TYPE)
        .cloned()
        .flatten()
        .map(Arc::from)
        .ok_or_else(|| LakeError::PartitionValue {
            column: EVENT_TYPE.to_string(),
            value: String::new(),
            path: add.path.clone(),
        })?;
    let batches = read_file_on_task(store, Table::Staging, add, Some(COLUMNS)).await?;
    let mut entries = Vec::new();
    for batch in &batches {
        let uuids = batch.column(0).as_string::<i32>();
        let created = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        for row in 0..batch.num_rows() {
            entries.push(KeyEntry {
                key: Key::of(uuids.value(row)),
                created_micros: created.is_valid(row).then(|| created.value(row)),
                event_type: event_type.clone(),
            });
        }
    }
    Ok(entries)
}

/// The index's columns a scan reads, in table order.
pub(crate) const SCAN_COLUMNS: &[&str] = &[
    KEY_HI,
    lakehouse_lake::schema::KEY_LO,
    CREATED_DATETIME,
    EVENT_TYPE,
];

/// The rows of `batch` (the index's [`SCAN_COLUMNS`]): key, instant and type.
pub(crate) fn index_rows(
    batch: &RecordBatch,
) -> impl Iterator<Item = (Key, Option<i64>, &str)> + '_ {
    let (hi, lo) = (
        batch.column(0).as_primitive::<Int64Type>(),
        batch.column(1).as_primitive::<Int64Type>(),
    );
    let created = batch.column(2).as_primitive::<TimestampMicrosecondType>();
    let event_types = batch.column(3).as_string::<i32>();
    (0..batch.num_rows()).map(move |row| {
        let key = Key {
            hi: hi.value(row),
            lo: lo.value(row),
        };
        let at = created.is_valid(row).then(|| created.value(row));
        (key, at, event_types.value(row))
    })
}
