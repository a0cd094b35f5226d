//! Files clustered by key (raw's): rows sorted by their event's key bucket (see
//! [`crate::keys`]), in up to 32 row groups, with the row where each bucket starts in the
//! file's footer, so a compaction range of keys decodes, and on S3 fetches, only the row
//! groups its buckets are in: the footer and one span, two GETs.
//!
//! The footer value is a hint the reader checks, never trusts alone: it reads one row
//! either side of its buckets, and rows in bucket order ending outside them on both sides
//! prove that no row of its buckets lies elsewhere. A file whose rows say otherwise is
//! read whole. Readers other than ours ignore the value (Parquet key-value metadata).

use std::ops::Range;
use std::sync::Arc;

use deltalake::ObjectStore;
use deltalake::arrow::array::{Array, RecordBatch, StringArray, UInt32Array};
use deltalake::arrow::compute::{SortColumn, lexsort_to_indices};
use deltalake::kernel::Add;
use deltalake::parquet::file::metadata::{KeyValue, ParquetMetaData};

use crate::error::{LakeError, Result};
use crate::files::read_selected;
use crate::keys::{KEY_BUCKETS, Key};
use crate::schema::{EVENT_UUID, Table};

/// The footer key under which a clustered file lists where each bucket's rows start:
/// `KEY_BUCKETS + 1` row numbers, comma-separated, the last being the file's rows.
pub const BUCKET_STARTS: &str = "lakehouse.keyBucketStarts";

/// The order of `batch`'s rows in bucket order (then by `then_by`, in that order), and
/// the footer entry that says where each bucket starts.
pub(crate) fn cluster_order(
    batch: &RecordBatch,
    then_by: &[&str],
) -> Result<(UInt32Array, KeyValue)> {
    let buckets = Arc::new(buckets_of(batch)?);
    let mut keys = vec![SortColumn {
        values: buckets.clone(),
        options: None,
    }];
    for name in then_by {
        let values = batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| LakeError::BadRows(format!("no sort column {name}")))?;
        keys.push(SortColumn {
            values,
            options: None,
        });
    }
    let order = lexsort_to_indices(&keys, None)?;
    let mut counts = vec![0usize; KEY_BUCKETS as usize];
    for bucket in buckets.values() {
        counts[*bucket as usize] += 1;
    }
    let mut starts = Vec::with_capacity(counts.len() + 1);
    let mut at = 0;
    starts.push(at);
    for count in counts {
        at += count;
        starts.push(at);
    }
    let value = starts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    Ok((order, KeyValue::new(BUCKET_STARTS.to_string(), value)))
}

/// Row groups of a clustered file hold about this much of its Arrow memory (~50 KB of
/// Parquet). A range reads the row groups its rows are in, in one GET: smaller groups
/// mean less read beside its rows, and a larger footer (~1 KB a group), which every
/// range reads too.
const ROW_GROUP_MEMORY: usize = 128 << 10;

/// Row groups per clustered file at most: one range of 16 reads 2 or 3 of them, about
/// 1/8 of the file with its footer (measured in
/// `layout::key_ranges_read_only_their_buckets_of_raw_and_stage_what_one_run_stages`).
const ROW_GROUPS: usize = 32;

/// Rows per row group of a clustered file of `batch`'s rows.
pub(crate) fn row_group_rows(batch: &RecordBatch) -> usize {
    let groups = (batch.get_array_memory_size() / ROW_GROUP_MEMORY).clamp(1, ROW_GROUPS);
    batch.num_rows().div_ceil(groups).max(1)
}

/// Each row's key bucket, from its `event_uuid` (non-null in every clustered table).
fn buckets_of(batch: &RecordBatch) -> Result<UInt32Array> {
    let uuids = batch
        .column_by_name(EVENT_UUID)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| LakeError::BadRows(format!("no string column {EVENT_UUID}")))?;
    if uuids.null_count() > 0 {
        return Err(LakeError::BadRows(format!("a null {EVENT_UUID}")));
    }
    Ok(uuids
        .iter()
        .map(|u| u.map(|u| Key::of(u).bucket()))
        .collect())
}

/// Where each bucket starts in a clustered file, from its footer; `None` for a file
/// written before clustering, or whose entry does not describe its rows.
pub fn bucket_starts(metadata: &ParquetMetaData) -> Option<Vec<usize>> {
    let file = metadata.file_metadata();
    let value = file
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == BUCKET_STARTS)?
        .value
        .as_deref()?;
    parse_starts(value, usize::try_from(file.num_rows()).ok()?)
}

/// The bucket starts a footer value names, if they describe a file of `rows` rows: one
/// more than there are buckets, from 0 to `rows`, never decreasing.
fn parse_starts(value: &str, rows: usize) -> Option<Vec<usize>> {
    let starts = value
        .split(',')
        .map(|n| n.parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    let well_formed = starts.len() == KEY_BUCKETS as usize + 1
        && starts.first() == Some(&0)
        && starts.last() == Some(&rows)
        && starts.windows(2).all(|w| w[0] <= w[1]);
    well_formed.then_some(starts)
}

/// The rows a read of `buckets` takes from a clustered file: those of the buckets and one
/// row either side, where there is one, to check the footer by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    rows: Range<usize>,
    before: bool,
    after: bool,
}

impl Window {
    fn of(starts: &[usize], buckets: &Range<u32>) -> Window {
        let total = starts[starts.len() - 1];
        let (start, end) = (starts[buckets.start as usize], starts[buckets.end as usize]);
        let before = start > 0;
        let after = end < total;
        Window {
            rows: start - usize::from(before)..end + usize::from(after),
            before,
            after,
        }
    }

    /// Whether `rows`, read through this window, are in bucket order and leave the
    /// window's buckets on both sides: then no row of them lies outside it.
    fn holds(&self, rows: &[RecordBatch], buckets: &Range<u32>) -> Result<bool> {
        let mut seen = Vec::with_capacity(self.rows.len());
        for batch in rows {
            seen.extend(buckets_of(batch)?.values().iter().copied());
        }
        Ok(seen.len() == self.rows.len()
            && seen.windows(2).all(|w| w[0] <= w[1])
            && (!self.before || seen.first().is_some_and(|b| *b < buckets.start))
            && (!self.after || seen.last().is_some_and(|b| *b >= buckets.end)))
    }
}

/// What [`read_buckets`] read.
#[derive(Debug)]
pub struct BucketRead {
    /// Every row of the file in `buckets`, and maybe others: the caller filters.
    pub rows: Vec<RecordBatch>,
    /// Rows decoded.
    pub scanned: u64,
    /// Whether the footer's starts were used (else the file was read whole).
    pub clustered: bool,
}

/// The rows of one data file of `table` whose `event_uuid`s fall in key `buckets` (a
/// superset: a file written before clustering, or whose rows belie its footer, is read
/// whole).
pub async fn read_buckets(
    store: Arc<dyn ObjectStore>,
    table: Table,
    add: &Add,
    buckets: Range<u32>,
) -> Result<BucketRead> {
    let buckets = buckets.start.min(buckets.end).min(KEY_BUCKETS)..buckets.end.min(KEY_BUCKETS);
    let wanted = buckets.clone();
    let select = move |metadata: &ParquetMetaData| {
        let starts = bucket_starts(metadata)?;
        Some(Window::of(&starts, &wanted).rows)
    };
    let (rows, metadata) = read_selected(store.clone(), table, add, None, Some(&select)).await?;
    let scanned = |rows: &[RecordBatch]| rows.iter().map(|b| b.num_rows() as u64).sum();
    let Some(starts) = bucket_starts(&metadata) else {
        return Ok(BucketRead {
            scanned: scanned(&rows),
            rows,
            clustered: false,
        });
    };
    if Window::of(&starts, &buckets).holds(&rows, &buckets)? {
        return Ok(BucketRead {
            scanned: scanned(&rows),
            rows,
            clustered: true,
        });
    }
    tracing::warn!(path = %add.path, "rows not clustered as the footer says: read whole");
    let (rows, _) = read_selected(store, table, add, None, None).await?;
    Ok(BucketRead {
        scanned: scanned(&rows),
        rows,
        clustered: false,
    })
}

#[cfg(test)]
mod tests;
