//! Point reads of a file sorted by a long key column with a bloom filter and a page index
//! (the key index's files): only the pages that may hold one of the keys sought are read.
//! Most keys sought are absent, and the bloom filter settles those without reading a key.

use std::sync::Arc;

use deltalake::ObjectStore;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::Add;
use deltalake::parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection, RowSelector};
use deltalake::parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use deltalake::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use deltalake::parquet::file::page_index::column_index::ColumnIndexMetaData;
use deltalake::parquet::file::statistics::Statistics;
use futures::TryStreamExt;

use crate::error::{LakeError, Result};
use crate::files::{PartitionValues, object_path, projected, projected_schema, to_table_rows};
use crate::object_reader::ObjectReader;
use crate::schema::Table;

/// What a point read skipped and read, for the caller's measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PointReadStats {
    pub row_groups: u64,
    /// Row groups whose statistics and bloom filter left a key sought.
    pub row_groups_read: u64,
    /// Pages of the key column in all row groups, and those read.
    pub pages: u64,
    pub pages_read: u64,
}

/// Rows of `columns` of one file of `table` whose long `column` may equal one of `keys`
/// (sorted, distinct): a superset, the caller compares. Row groups whose statistics or
/// bloom filter rule every key out are skipped, and in the others the pages whose min/max
/// hold none (a file without a page index is read whole per row group).
pub async fn read_keyed(
    store: Arc<dyn ObjectStore>,
    table: Table,
    add: &Add,
    columns: &[&str],
    column: &str,
    keys: &[i64],
) -> Result<(Vec<RecordBatch>, PointReadStats)> {
    let mut stats = PointReadStats::default();
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let (mut builder, metadata, col) = open_footer(store, add, options, column).await?;
    let Some(col) = col else {
        return Err(read_err(add, &format!("no column {column}")));
    };
    let mut row_groups = Vec::new();
    let mut selectors = Vec::new();
    for rg in 0..metadata.num_row_groups() {
        stats.row_groups += 1;
        stats.pages += metadata
            .offset_index()
            .and_then(|o| o.get(rg))
            .and_then(|o| o.get(col))
            .map_or(1, |o| o.page_locations().len() as u64);
        let (low, high) = match metadata.row_group(rg).column(col).statistics() {
            Some(Statistics::Int64(s)) => (s.min_opt().copied(), s.max_opt().copied()),
            _ => (None, None),
        };
        let in_range = within(keys, low.unwrap_or(i64::MIN), high.unwrap_or(i64::MAX));
        if in_range.is_empty() {
            continue;
        }
        let bloom = builder
            .get_row_group_column_bloom_filter(rg, col)
            .await
            .map_err(|e| read_err(add, &e))?;
        let maybe: Vec<i64> = in_range
            .iter()
            .copied()
            .filter(|k| bloom.as_ref().is_none_or(|b| b.check(k)))
            .collect();
        if maybe.is_empty() {
            continue;
        }
        stats.row_groups_read += 1;
        row_groups.push(rg);
        select_pages(&metadata, rg, col, &maybe, &mut selectors, &mut stats);
    }
    if row_groups.is_empty() {
        return Ok((Vec::new(), stats));
    }
    let schema = projected_schema(table, Some(columns));
    let builder = builder
        .with_row_groups(row_groups)
        .with_row_selection(RowSelection::from(selectors));
    let stream = projected(builder, &schema, add)
        .build()
        .map_err(|e| read_err(add, &e))?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| read_err(add, &e))?;
    let partitions = PartitionValues::parse(table, add)?;
    let rows = batches
        .iter()
        .map(|b| to_table_rows(b, &schema, &partitions))
        .collect::<Result<Vec<_>>>()?;
    Ok((rows, stats))
}

/// What a file's footer and bloom filters say of a string column and values sought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtered {
    /// The file has no such column (written before the table had it): only its rows can tell.
    NoColumn,
    /// Some row group holds nulls in it, or does not say (no statistics): rows whose value
    /// was never set, which only their other columns can tell.
    Nulls,
    /// Every row group's filter rules every value out.
    Absent,
    /// Some row group may hold one.
    Maybe,
}

/// Whether one file of the lake may hold one of `values` in its string `column`, from its
/// footer and the bloom filters of that column alone (a few KB per row group), and the
/// bytes of those filters. A row group without a filter may hold anything; one with nulls
/// (or without statistics to say it has none) makes the file [`Filtered::Nulls`].
pub async fn may_hold_strings(
    store: Arc<dyn ObjectStore>,
    add: &Add,
    column: &str,
    values: &[&str],
) -> Result<(Filtered, u64)> {
    let options = ArrowReaderOptions::new();
    let (mut builder, metadata, col) = open_footer(store, add, options, column).await?;
    let Some(col) = col else {
        return Ok((Filtered::NoColumn, 0));
    };
    let mut filter_bytes = 0;
    let mut maybe = false;
    for rg in 0..metadata.num_row_groups() {
        let chunk = metadata.row_group(rg).column(col);
        let nulls = chunk.statistics().and_then(|s| s.null_count_opt());
        if nulls != Some(0) {
            return Ok((Filtered::Nulls, filter_bytes));
        }
        if maybe {
            continue;
        }
        filter_bytes += chunk.bloom_filter_length().unwrap_or(0).max(0) as u64;
        let bloom = builder
            .get_row_group_column_bloom_filter(rg, col)
            .await
            .map_err(|e| read_err(add, &e))?;
        maybe = bloom.is_none_or(|b| values.iter().any(|v| b.check(v)));
    }
    let found = if maybe {
        Filtered::Maybe
    } else {
        Filtered::Absent
    };
    Ok((found, filter_bytes))
}

type Builder = ParquetRecordBatchStreamBuilder<ObjectReader>;

/// A reader of one file with its footer read, and the position of `column` among the
/// file's columns (`None`: the file has no such column).
async fn open_footer(
    store: Arc<dyn ObjectStore>,
    add: &Add,
    options: ArrowReaderOptions,
    column: &str,
) -> Result<(Builder, Arc<ParquetMetaData>, Option<usize>)> {
    let reader = ObjectReader::new(store, object_path(&add.path), add.size as u64);
    let builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options)
        .await
        .map_err(|e| read_err(add, &e))?;
    let metadata = builder.metadata().clone();
    let col = metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == column);
    Ok((builder, metadata, col))
}

fn read_err(add: &Add, e: &dyn std::fmt::Display) -> LakeError {
    LakeError::ReadFile {
        path: add.path.clone(),
        error: e.to_string(),
    }
}

/// The keys within `[low, high]`.
fn within(keys: &[i64], low: i64, high: i64) -> &[i64] {
    let start = keys.partition_point(|&k| k < low);
    let end = keys.partition_point(|&k| k <= high);
    &keys[start..end.max(start)]
}

/// Appends the selection of row group `rg`: the pages of `col` whose min/max hold one of
/// `keys`, every row when the file has no page index for it.
fn select_pages(
    metadata: &ParquetMetaData,
    rg: usize,
    col: usize,
    keys: &[i64],
    selectors: &mut Vec<RowSelector>,
    stats: &mut PointReadStats,
) {
    let rows = metadata.row_group(rg).num_rows() as usize;
    let locations = metadata
        .offset_index()
        .and_then(|o| o.get(rg))
        .and_then(|o| o.get(col))
        .map(|o| o.page_locations());
    let bounds = metadata
        .column_index()
        .and_then(|c| c.get(rg))
        .and_then(|c| c.get(col));
    let (Some(locations), Some(ColumnIndexMetaData::INT64(bounds))) = (locations, bounds) else {
        stats.pages_read += locations.map_or(1, |l| l.len() as u64);
        selectors.push(RowSelector::select(rows));
        return;
    };
    for (page, location) in locations.iter().enumerate() {
        let first = location.first_row_index as usize;
        let next = locations
            .get(page + 1)
            .map_or(rows, |l| l.first_row_index as usize);
        let low = bounds.min_value(page).copied().unwrap_or(i64::MIN);
        let high = bounds.max_value(page).copied().unwrap_or(i64::MAX);
        if within(keys, low, high).is_empty() {
            selectors.push(RowSelector::skip(next - first));
        } else {
            stats.pages_read += 1;
            selectors.push(RowSelector::select(next - first));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_takes_the_keys_of_a_closed_range() {
        let keys = [1, 3, 5, 7];
        assert_eq!(within(&keys, 3, 5), &[3, 5]);
        assert_eq!(within(&keys, 8, 9), &[] as &[i64]);
        assert_eq!(within(&keys, i64::MIN, i64::MAX), &keys);
        assert_eq!(within(&keys, 5, 4), &[] as &[i64]);
    }
}
