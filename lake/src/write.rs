//! How a table's data files are written, by every stage: a partition's rows as one file,
//! in the order the table wants them ([`Table::clustered_by_key`],
//! [`Table::sort_columns`]), with its writer
//! properties and the statistics its configuration asks for, by delta-rs's partition
//! writer (so paths, escaping and statistics are Delta's own). Writing partitions on tasks
//! of their own is what spreads encoding over the cores.

use std::num::NonZeroU64;
use std::sync::Arc;

use delta_kernel::expressions::Scalar;
use delta_kernel::table_properties::DataSkippingNumIndexedCols;
use deltalake::DeltaTable;
use deltalake::arrow::array::{RecordBatch, UInt32Array};
use deltalake::arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::datafile::writer::{PartitionWriter, PartitionWriterConfig};
use deltalake::kernel::Add;
use deltalake::logstore::ObjectStoreRef;
use deltalake::parquet::file::properties::WriterProperties;
use indexmap::IndexMap;

use crate::clustered::{cluster_order, row_group_rows};
use crate::error::{LakeError, Result};
use crate::files::parse_partition_date;
use crate::schema::Table;

/// A partition of a table: its date and, when the table is also partitioned by a string
/// column (`event_type`), that value; otherwise the name is empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub date: i32,
    pub name: Box<str>,
}

/// Writes one table's files; cheap to share between tasks.
pub struct FileWriter {
    store: ObjectStoreRef,
    /// The partition columns in order, each with whether it is a date (else a string).
    partitions: Vec<(String, bool)>,
    sort: &'static [&'static str],
    /// Rows in key-bucket order first (see [`Table::clustered_by_key`]).
    clustered: bool,
    /// The table's columns a file holds (all but the partition columns), and their schema.
    file_columns: Vec<usize>,
    file_schema: SchemaRef,
    properties: WriterProperties,
    indexed_columns: DataSkippingNumIndexedCols,
    stats_columns: Option<Vec<String>>,
    /// A partition's rows roll into a new file past about this size (`None`: one file
    /// however big).
    file_size: Option<NonZeroU64>,
}

impl FileWriter {
    /// The writer of `table` (of kind `kind`), as its metadata says: its own partitioning
    /// (raw's layout is chosen at creation) and statistics configuration.
    pub fn for_table(kind: Table, table: &DeltaTable) -> Result<FileWriter> {
        Self::with_properties(kind, table, kind.writer_properties())
    }

    /// The same with other Parquet properties.
    pub fn with_properties(
        kind: Table,
        table: &DeltaTable,
        properties: WriterProperties,
    ) -> Result<FileWriter> {
        let names = table.snapshot()?.metadata().partition_columns().to_vec();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let sort = kind.sort_columns(&name_refs);
        let mut writer = Self::for_schema(kind.name(), table, kind.arrow_schema(), properties)?;
        writer.sort = sort;
        writer.clustered = kind.clustered_by_key();
        Ok(writer)
    }

    /// The writer of a table whose rows have `schema` (partition columns included), such
    /// as a typed table's: unsorted, unclustered.
    pub fn for_schema(
        table_name: &'static str,
        table: &DeltaTable,
        schema: SchemaRef,
        properties: WriterProperties,
    ) -> Result<FileWriter> {
        let snapshot = table.snapshot()?;
        let names: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        let partitions = names
            .iter()
            .map(
                |name| match schema.field_with_name(name).map(|f| f.data_type()) {
                    Ok(DataType::Date32) => Ok((name.clone(), true)),
                    Ok(DataType::Utf8) => Ok((name.clone(), false)),
                    _ => Err(LakeError::ContractMismatch {
                        table: table_name,
                        location: table.table_url().to_string(),
                        reason: format!("partitioned by {name}, neither a date nor a string"),
                    }),
                },
            )
            .collect::<Result<Vec<_>>>()?;
        let file_columns: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| !names.contains(schema.field(i).name()))
            .collect();
        let file_schema = Arc::new(schema.project(&file_columns)?);
        let config = snapshot.table_config();
        Ok(FileWriter {
            store: table.object_store(),
            sort: &[],
            clustered: false,
            partitions,
            file_columns,
            file_schema,
            properties,
            indexed_columns: config
                .data_skipping_num_indexed_cols
                .unwrap_or(DataSkippingNumIndexedCols::NumColumns(32)),
            stats_columns: config
                .data_skipping_stats_columns
                .as_ref()
                .map(|columns| columns.iter().map(ToString::to_string).collect()),
            file_size: None,
        })
    }

    /// The same, rolling a partition's rows into files of about `size` bytes.
    pub fn with_file_size(mut self, size: NonZeroU64) -> FileWriter {
        self.file_size = Some(size);
        self
    }

    /// The partition of one of the table's files, from its `add`.
    pub fn key_of(&self, add: &Add) -> Result<PartitionKey> {
        let missing = |column: &str| LakeError::PartitionValue {
            column: column.to_string(),
            value: String::new(),
            path: add.path.clone(),
        };
        let mut key = PartitionKey {
            date: 0,
            name: "".into(),
        };
        for (column, is_date) in &self.partitions {
            if *is_date {
                key.date = parse_partition_date(add, column)?.ok_or_else(|| missing(column))?;
            } else {
                let value = add.partition_values.get(column).cloned().flatten();
                key.name = value.ok_or_else(|| missing(column))?.into();
            }
        }
        Ok(key)
    }

    /// Whether partitions differ by a string value as well as by date.
    pub fn keyed_by_name(&self) -> bool {
        self.partitions.iter().any(|(_, is_date)| !is_date)
    }

    /// Writes `batch` (rows of the table's schema, all of partition `key`) as one file, or
    /// several past the file size; returns their `add`s.
    pub async fn write(&self, key: &PartitionKey, batch: RecordBatch) -> Result<Vec<Add>> {
        // A clustered file's footer names row numbers, so it must be the one file the
        // rows become: clustering is left out where the writer rolls files by size.
        // The rows are written in order a row group at a time, never copied whole: a
        // bin-packed file's rows are a whole file's worth.
        let (order, chunk, properties) = if self.clustered && self.file_size.is_none() {
            let (order, starts) = cluster_order(&batch, self.sort)?;
            let rows_per_group = row_group_rows(&batch);
            let mut metadata = self
                .properties
                .key_value_metadata()
                .cloned()
                .unwrap_or_default();
            metadata.push(starts);
            let properties = self
                .properties
                .clone()
                .into_builder()
                .set_max_row_group_row_count(Some(rows_per_group))
                .set_key_value_metadata(Some(metadata));
            (Some(order), rows_per_group, properties.build())
        } else {
            let order = sort_order(&batch, self.sort)?;
            (order, WRITE_CHUNK_ROWS, self.properties.clone())
        };
        let values: IndexMap<String, Scalar> = self
            .partitions
            .iter()
            .map(|(name, is_date)| {
                let value = if *is_date {
                    Scalar::Date(key.date)
                } else {
                    Scalar::String(key.name.to_string())
                };
                (name.clone(), value)
            })
            .collect();
        let config = PartitionWriterConfig::try_new(
            self.file_schema.clone(),
            values,
            Some(properties),
            self.file_size,
            None,
            None,
            None,
        )?;
        let mut writer = PartitionWriter::try_with_config(
            self.store.clone(),
            config,
            self.indexed_columns,
            self.stats_columns.clone(),
        )?;
        let Some(order) = order else {
            writer.write(&batch.project(&self.file_columns)?).await?;
            return Ok(writer.close().await?);
        };
        let chunk = chunk.max(1);
        for start in (0..order.len()).step_by(chunk) {
            let rows = order.slice(start, chunk.min(order.len() - start));
            let rows = take_record_batch(&batch, &rows)?.project(&self.file_columns)?;
            writer.write(&rows).await?;
        }
        Ok(writer.close().await?)
    }
}

/// Rows taken into order and handed to the Parquet writer at once, where row groups do
/// not set it.
const WRITE_CHUNK_ROWS: usize = 64 * 1024;

/// The order of `batch`'s rows by `columns`; `None` when they need no ordering.
fn sort_order(batch: &RecordBatch, columns: &[&str]) -> Result<Option<UInt32Array>> {
    if columns.is_empty() || batch.num_rows() < 2 {
        return Ok(None);
    }
    let keys = columns
        .iter()
        .map(|c| {
            let values = batch
                .column_by_name(c)
                .cloned()
                .ok_or_else(|| LakeError::BadRows(format!("no sort column {c}")))?;
            Ok(SortColumn {
                values,
                options: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(lexsort_to_indices(&keys, None)?))
}
