//! One table's side of an ingest: batches are encoded to Parquet on a task of their own,
//! so encoding runs beside parsing; the files are committed together at the end.

use std::collections::{HashMap, HashSet};

use deltalake::DeltaTable;
use deltalake::arrow::array::{RecordBatch, UInt32Array};
use deltalake::arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use deltalake::arrow::row::{OwnedRow, RowConverter, SortField};
use deltalake::kernel::{Add, Transaction};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use lakehouse_lake::log::txn_version;
use lakehouse_lake::{Commit, CommitMetadata, Committed, Table};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{IngestError, Result};
use crate::writer::IngestOptions;

pub(crate) struct Sink {
    table: DeltaTable,
    batches: Option<mpsc::Sender<RecordBatch>>,
    encoder: Option<JoinHandle<Result<Vec<Add>>>>,
}

impl Sink {
    /// Starts the encoder. Open files are finalized every `flush_rows` rows or
    /// `flush_bytes` bytes of Arrow data, and before a partition beyond
    /// `max_open_partitions` would open its file: memory follows those limits, not the
    /// input. Each flush writes at most one file per partition.
    pub(crate) fn start(kind: Table, table: DeltaTable, options: &IngestOptions) -> Result<Sink> {
        let (flush_rows, flush_bytes) = (options.flush_rows, options.flush_bytes);
        let max_open = options.max_open_partitions.max(1);
        // The table's own partitioning (raw's layout is chosen at creation), and the order
        // rows take inside a file under it.
        let partitions: Vec<String> = table.snapshot()?.metadata().partition_columns().to_vec();
        let names: Vec<&str> = partitions.iter().map(String::as_str).collect();
        let sort = kind.sort_columns(&names);
        let mut writer =
            RecordBatchWriter::for_table(&table)?.with_writer_properties(kind.writer_properties());
        // Two batches in flight: enough to keep both sides busy, little memory.
        let (batches, mut incoming) = mpsc::channel::<RecordBatch>(2);
        let encoder = tokio::spawn(async move {
            let mut adds = Vec::new();
            let (mut rows, mut bytes) = (0, 0);
            let mut open: HashSet<OwnedRow> = HashSet::new();
            let partitions: Vec<&str> = partitions.iter().map(String::as_str).collect();
            while let Some(batch) = incoming.recv().await {
                let batch = sorted(batch, sort)?;
                for (partition, part) in by_partition(&batch, &partitions)? {
                    if !open.contains(&partition) && open.len() >= max_open {
                        adds.extend(writer.flush().await?);
                        (rows, bytes) = (0, 0);
                        open.clear();
                    }
                    open.insert(partition);
                    rows += part.num_rows();
                    bytes += part.get_array_memory_size();
                    writer.write(part).await?;
                }
                if rows >= flush_rows || bytes >= flush_bytes {
                    adds.extend(writer.flush().await?);
                    (rows, bytes) = (0, 0);
                    open.clear();
                }
            }
            adds.extend(writer.flush().await?);
            Ok(adds)
        });
        Ok(Sink {
            table,
            batches: Some(batches),
            encoder: Some(encoder),
        })
    }

    pub(crate) async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let sent = match &self.batches {
            Some(batches) => batches.send(batch).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The encoder stopped early: its error is the one to report.
        match self.finish().await {
            Err(e) => Err(e),
            Ok(_) => Err(IngestError::Encoder("stopped unexpectedly".into())),
        }
    }

    /// The version under which the table recorded the load `app_id`, if it did.
    pub(crate) async fn loaded_version(&self, app_id: &str) -> Result<Option<i64>> {
        Ok(txn_version(&self.table, app_id).await?)
    }

    /// Waits for the encoder to finalize every file; returns them, uncommitted.
    pub(crate) async fn prepare(mut self, rows: u64) -> Result<PreparedAppend> {
        let adds = self.finish().await?;
        Ok(PreparedAppend {
            table: self.table.clone(),
            adds,
            rows,
        })
    }

    async fn finish(&mut self) -> Result<Vec<Add>> {
        drop(self.batches.take());
        match self.encoder.take() {
            Some(encoder) => encoder
                .await
                .map_err(|e| IngestError::Encoder(e.to_string()))?,
            None => Err(IngestError::Encoder("already finished".into())),
        }
    }
}

/// `batch` with its rows ordered by `columns`.
fn sorted(batch: RecordBatch, columns: &[&str]) -> Result<RecordBatch> {
    if columns.is_empty() || batch.num_rows() < 2 {
        return Ok(batch);
    }
    let keys = columns
        .iter()
        .map(|c| {
            let values = batch.column_by_name(c).cloned().ok_or_else(|| {
                IngestError::Encoder(format!("a batch lacks its sort column {c}"))
            })?;
            Ok(SortColumn {
                values,
                options: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let order = lexsort_to_indices(&keys, None)?;
    Ok(take_record_batch(&batch, &order)?)
}

/// `batch` split by the values of `columns`, each part with its partition's key, in order
/// of first appearance.
fn by_partition(batch: &RecordBatch, columns: &[&str]) -> Result<Vec<(OwnedRow, RecordBatch)>> {
    let arrays = columns
        .iter()
        .map(|c| batch.column_by_name(c).cloned())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| IngestError::Encoder("a batch lacks its partition columns".into()))?;
    let converter = RowConverter::new(
        arrays
            .iter()
            .map(|a| SortField::new(a.data_type().clone()))
            .collect(),
    )?;
    let keys = converter.convert_columns(&arrays)?;
    let mut parts: Vec<(OwnedRow, Vec<u32>)> = Vec::new();
    let mut index: HashMap<OwnedRow, usize> = HashMap::new();
    for (row, key) in keys.iter().enumerate() {
        let at = *index.entry(key.owned()).or_insert_with(|| {
            parts.push((key.owned(), Vec::new()));
            parts.len() - 1
        });
        parts[at].1.push(row as u32);
    }
    if parts.len() == 1 {
        return Ok(parts
            .into_iter()
            .map(|(key, _)| (key, batch.clone()))
            .collect());
    }
    parts
        .into_iter()
        .map(|(key, rows)| Ok((key, take_record_batch(batch, &UInt32Array::from(rows))?)))
        .collect()
}

/// One table's finished files, not yet visible: commit them, or drop them to abandon.
pub struct PreparedAppend {
    table: DeltaTable,
    adds: Vec<Add>,
    rows: u64,
}

impl PreparedAppend {
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The finished files, for a committer elsewhere (see [`crate::manifest`]).
    pub fn adds(&self) -> &[Add] {
        &self.adds
    }

    pub fn files(&self) -> usize {
        self.adds.len()
    }

    /// Commits the files as a blind append, with `transactions` (in the same commit, so
    /// they land or fail together), and `metadata` in `commitInfo.lakehouse`. No file and
    /// no transaction: no commit.
    pub async fn commit(
        &self,
        transactions: &[Transaction],
        metadata: CommitMetadata,
    ) -> Result<Option<Committed>> {
        let mut commit = Commit::append(&self.table, self.adds.clone())?.with_metadata(metadata);
        for txn in transactions {
            commit = commit.with_transaction(txn.clone());
        }
        if commit.is_empty() {
            return Ok(None);
        }
        Ok(Some(commit.execute(&self.table).await?))
    }
}

impl Drop for Sink {
    /// An ingest dropped before its commit writes no more files.
    fn drop(&mut self) {
        if let Some(encoder) = &self.encoder {
            encoder.abort();
        }
    }
}
