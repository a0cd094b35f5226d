//! Reads one data file of a table back as rows of the table's Arrow schema. Delta keeps
//! partition values in the log, not in the file, so they are added back from the `add`.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use chrono::NaiveDate;
use deltalake::arrow::array::{
    Array, ArrayRef, Date32Array, RecordBatch, RecordBatchOptions, StringArray, new_null_array,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::kernel::{Add, Remove};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::{
    ArrowReaderBuilder, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use deltalake::parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::{DeltaTable, ObjectStore, Path};
use futures::TryStreamExt;

use crate::error::{LakeError, Result};
use crate::object_reader::ObjectReader;
use crate::schema::Table;

/// The object store path of a file named by an `Add`. delta-rs already undid the log's
/// URL encoding; what is left (Hive escapes such as `%2F`) is part of the object name.
pub fn object_path(add_path: &str) -> Path {
    Path::parse(add_path).unwrap_or_else(|_| Path::from(add_path))
}

/// The live data files of `table` at the version it holds, as the `Add` actions that reading
/// (`read_file`) and removing (`remove_of`) take.
pub fn live_files(table: &DeltaTable) -> Result<Vec<Add>> {
    Ok(table
        .snapshot()?
        .log_data()
        .iter()
        // delta-rs marks this conversion deprecated in favour of Arrow arrays, which would
        // only add code for the callers.
        .map(|view| {
            #[allow(deprecated)]
            view.add_action()
        })
        .collect())
}

/// [`live_files`] in path order: an order every reader of one version agrees on (a build's
/// chunks and a sweep's passes are numbered by it).
pub fn live_files_by_path(table: &DeltaTable) -> Result<Vec<Add>> {
    let mut files = live_files(table)?;
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// A file's row count, from the statistics its `add` carries (`None` without them).
pub fn rows_of(add: &Add) -> Option<u64> {
    let stats = add.get_stats().ok()??;
    u64::try_from(stats.num_records).ok()
}

/// The `remove` of a live file: a rewrite that keeps its rows says `data_change: false`,
/// one that drops rows says `true`.
pub fn remove_of(add: &Add, data_change: bool) -> Remove {
    Remove {
        path: add.path.clone(),
        data_change,
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        extended_file_metadata: Some(true),
        partition_values: Some(add.partition_values.clone()),
        size: Some(add.size),
        tags: add.tags.clone(),
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
    }
}

/// The schema of `table` restricted to `columns` (all when `None`), in table order.
pub fn projected_schema(table: Table, columns: Option<&[&str]>) -> SchemaRef {
    let full = table.arrow_schema();
    match columns {
        None => full,
        Some(cols) => Arc::new(Schema::new(
            full.fields()
                .iter()
                .filter(|f| cols.contains(&f.name().as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        )),
    }
}

/// Reads `columns` (all when `None`) of one data file of `table`. A file that is no longer
/// there is [`LakeError::Vanished`]: the snapshot it was planned from is stale.
pub async fn read_file(
    store: Arc<dyn ObjectStore>,
    table: Table,
    add: &Add,
    columns: Option<&[&str]>,
) -> Result<Vec<RecordBatch>> {
    match read_present(store.clone(), table, add, columns).await {
        Err(error) => match store.head(&object_path(&add.path)).await {
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Err(LakeError::Vanished {
                path: add.path.clone(),
            }),
            _ => Err(error),
        },
        read => read,
    }
}

async fn read_present(
    store: Arc<dyn ObjectStore>,
    table: Table,
    add: &Add,
    columns: Option<&[&str]>,
) -> Result<Vec<RecordBatch>> {
    Ok(read_selected(store, table, add, columns, None).await?.0)
}

/// Picks the rows of a file to read, one run of them, from its metadata (`None`: every row).
pub(crate) type Selector = dyn Fn(&ParquetMetaData) -> Option<Range<usize>> + Send + Sync;

/// Reads `columns` (all when `None`) of the rows `select` picks of one data file, and the
/// file's metadata. Only the row groups holding those rows are decoded and, from an object
/// store, fetched: in one GET after the footer's.
pub(crate) async fn read_selected(
    store: Arc<dyn ObjectStore>,
    table: Table,
    add: &Add,
    columns: Option<&[&str]>,
    select: Option<&Selector>,
) -> Result<(Vec<RecordBatch>, Arc<ParquetMetaData>)> {
    let schema = projected_schema(table, columns);
    let path = object_path(&add.path);
    let read_err = |e: &dyn std::fmt::Display| LakeError::ReadFile {
        path: add.path.clone(),
        error: e.to_string(),
    };
    let pick = |metadata: &ParquetMetaData| select.and_then(|s| s(metadata));
    let (file_batches, metadata) = if whole_object(add.size, columns.is_some() || select.is_some())
    {
        // One request instead of footer, metadata and column chunks: on S3 each is a
        // GET, locally each is a trip to the blocking pool.
        let bytes = store
            .get(&path)
            .await
            .map_err(|e| read_err(&e))?
            .bytes()
            .await
            .map_err(|e| read_err(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| read_err(&e))?;
        let metadata = builder.metadata().clone();
        let builder = match pick(&metadata) {
            Some(rows) => builder.with_row_selection(selection(&rows, &metadata)),
            None => builder,
        };
        let batches = projected(builder, &schema, add)
            .build()
            .map_err(|e| read_err(&e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| read_err(&e))?;
        (batches, metadata)
    } else {
        let mut reader = ObjectReader::new(store.clone(), path.clone(), add.size as u64);
        if select.is_some() {
            reader = reader.with_footer_size_hint(FOOTER_HINT);
        }
        let prefetched = reader.prefetched();
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|e| read_err(&e))?;
        let metadata = builder.metadata().clone();
        let builder = match pick(&metadata) {
            Some(rows) => {
                // The reader fetches row group by row group: their span in one GET.
                if let Some(span) = byte_span(&metadata, &rows) {
                    let bytes = store
                        .get_range(&path, span.clone())
                        .await
                        .map_err(|e| read_err(&e))?;
                    prefetched.hold(span, bytes);
                }
                builder.with_row_selection(selection(&rows, &metadata))
            }
            None => builder,
        };
        let stream = projected(builder, &schema, add)
            .build()
            .map_err(|e| read_err(&e))?;
        (
            stream.try_collect().await.map_err(|e| read_err(&e))?,
            metadata,
        )
    };
    let partitions = PartitionValues::parse(table, add)?;
    let rows = file_batches
        .iter()
        .map(|b| to_table_rows(b, &schema, &partitions))
        .collect::<Result<Vec<_>>>()?;
    Ok((rows, metadata))
}

const BATCH_ROWS: usize = 64 * 1024;

/// `rows` of a file, as a selection of all of its rows.
fn selection(rows: &Range<usize>, metadata: &ParquetMetaData) -> RowSelection {
    let total = usize::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
    let end = rows.end.min(total);
    let start = rows.start.min(end);
    RowSelection::from(vec![
        RowSelector::skip(start),
        RowSelector::select(end - start),
        RowSelector::skip(total - end),
    ])
}

/// The bytes of the row groups holding `rows`, first to last (they lie in file order).
fn byte_span(metadata: &ParquetMetaData, rows: &Range<usize>) -> Option<Range<u64>> {
    let mut first_row = 0;
    let mut span: Option<Range<u64>> = None;
    for group in metadata.row_groups() {
        let group_rows = usize::try_from(group.num_rows()).unwrap_or(0);
        let holds = first_row < rows.end && rows.start < first_row + group_rows;
        first_row += group_rows;
        if !holds {
            continue;
        }
        for column in group.columns() {
            let (start, length) = column.byte_range();
            let at = span.get_or_insert(start..start + length);
            at.start = at.start.min(start);
            at.end = at.end.max(start + length);
        }
    }
    span
}

/// Bytes fetched from a file's end when its rows are selected, in one GET: a clustered raw
/// file's footer (34 KB measured at 32 row groups). Without a hint the footer costs two
/// GETs (its length, then itself).
const FOOTER_HINT: usize = 48 << 10;

/// Whether a file is fetched in one request: small ones always, larger ones when all of
/// it is wanted anyway (every column and row), up to a size that memory bears.
fn whole_object(size: i64, part: bool) -> bool {
    const SMALL: i64 = 1 << 20;
    const WHOLE_WANTED: i64 = 64 << 20;
    size <= SMALL || (!part && size <= WHOLE_WANTED)
}

/// A file reader reading the columns of `schema` the file holds: a partition column's
/// values are in the log, not the file (raw's layout decides which columns those are;
/// every add names them all).
pub(crate) fn projected<T>(
    builder: ArrowReaderBuilder<T>,
    schema: &SchemaRef,
    add: &Add,
) -> ArrowReaderBuilder<T> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| !add.partition_values.contains_key(*name));
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns);
    builder.with_projection(mask).with_batch_size(BATCH_ROWS)
}

/// [`read_file`] on a task of its own. A stream of plain read futures decodes every file on
/// the one task polling it; spawned, files decode on every core.
pub async fn read_file_on_task(
    store: Arc<dyn ObjectStore>,
    table: Table,
    add: Add,
    columns: Option<&'static [&'static str]>,
) -> Result<Vec<RecordBatch>> {
    let path = add.path.clone();
    tokio::spawn(async move { read_file(store, table, &add, columns).await })
        .await
        .map_err(|e| LakeError::ReadFile {
            path,
            error: e.to_string(),
        })?
}

/// Partition values of one file, typed.
pub(crate) struct PartitionValues {
    values: HashMap<String, ScalarValue>,
}

enum ScalarValue {
    Utf8(Option<String>),
    Date(Option<i32>),
}

impl PartitionValues {
    pub(crate) fn parse(table: Table, add: &Add) -> Result<PartitionValues> {
        let schema = table.arrow_schema();
        let mut values = HashMap::new();
        for column in add.partition_values.keys().map(String::as_str) {
            let raw = add.partition_values.get(column).cloned().flatten();
            let value = match schema.field_with_name(column)?.data_type() {
                DataType::Date32 => ScalarValue::Date(parse_partition_date(add, column)?),
                _ => ScalarValue::Utf8(raw),
            };
            values.insert(column.to_string(), value);
        }
        Ok(PartitionValues { values })
    }

    fn column(&self, name: &str, rows: usize) -> Option<ArrayRef> {
        Some(match self.values.get(name)? {
            ScalarValue::Utf8(v) => Arc::new(StringArray::from(vec![v.as_deref(); rows])),
            ScalarValue::Date(v) => Arc::new(Date32Array::from(vec![*v; rows])),
        })
    }
}

/// A date partition value of a file, as days since the Unix epoch.
pub fn parse_partition_date(add: &Add, column: &str) -> Result<Option<i32>> {
    let Some(value) = add.partition_values.get(column).cloned().flatten() else {
        return Ok(None);
    };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    NaiveDate::parse_from_str(&value, "%Y-%m-%d")
        .map(|d| Some((d - epoch).num_days() as i32))
        .map_err(|_| LakeError::PartitionValue {
            column: column.to_string(),
            value,
            path: add.path.clone(),
        })
}

/// Lays a file's columns out in `schema` order, with partition columns from the log and
/// nulls for columns the file predates. Files written by other writers (delta-rs's own
/// optimize stores `Utf8View`, other engines `+00:00` time zones) are cast to the table's
/// types.
pub(crate) fn to_table_rows(
    file_batch: &RecordBatch,
    schema: &SchemaRef,
    partitions: &PartitionValues,
) -> Result<RecordBatch> {
    let rows = file_batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|field: &Arc<Field>| {
            let column = partitions
                .column(field.name(), rows)
                .or_else(|| file_batch.column_by_name(field.name()).cloned())
                .unwrap_or_else(|| new_null_array(field.data_type(), rows));
            if column.data_type() == field.data_type() {
                Ok(column)
            } else {
                cast(&column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}
