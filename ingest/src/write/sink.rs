//! One table's side of an ingest. Rows are gathered per partition, each partition in a
//! builder of its own. When the rows held pass three quarters of the memory budget, the
//! largest partitions become files until half is held; a partition also becomes a file at
//! `file_rows` rows. Files are sorted, encoded and uploaded by a few tasks beside parsing,
//! their rows counted against the budget until done; at the end every partition left
//! becomes one, and all are committed together.
//! Memory so follows the budget whatever the input's size or number of partitions: an
//! input of more partitions than the budget holds at once makes more, smaller files, which
//! compaction and `optimize` bin-pack.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::kernel::{Add, Transaction};
use indexmap::{Equivalent, IndexMap};
use lakehouse_lake::write::{FileWriter, PartitionKey};
use lakehouse_lake::{Commit, CommitMetadata, Committed, Table};
use tokio::task::{JoinError, JoinSet};

use crate::error::{IngestError, Result};
use crate::write::batch::Rows;
use crate::write::options::IngestOptions;

/// The most string bytes one file takes from memory: Arrow's 32-bit offsets hold 2 GiB
/// per column, and a partition one record short of this plus one record of the largest
/// size allowed stays under that.
const MAX_FILE_BYTES: usize = 1 << 30;
/// What an open partition costs besides its rows (its map entry and a dozen builders with
/// room for a few rows), counted in the budget so that many tiny partitions cannot exceed
/// it unseen.
const PARTITION_BYTES: usize = 8192;
/// Files encoded and uploaded at once. More wait their turn as rows in a queue (counted
/// against the budget): a Parquet writer and its task cost memory of their own, and an
/// input of 40,000 tiny partitions must not start 40,000 of them at once.
const ENCODERS: usize = 8;
/// Appends between looks for finished files: a look costs about as much as an append.
const COLLECT_EVERY: usize = 256;

/// The same key, borrowed: found in the map without allocating.
#[derive(Hash)]
struct KeyRef<'a> {
    date: i32,
    name: &'a str,
}

impl Equivalent<PartitionKey> for KeyRef<'_> {
    fn equivalent(&self, key: &PartitionKey) -> bool {
        self.date == key.date && self.name == &*key.name
    }
}

pub(crate) struct Sink<R: Rows> {
    table: DeltaTable,
    files: Arc<FileWriter>,
    keyed_by_name: bool,
    /// Looked up once per row: foldhash, seeded per map, is several times cheaper than
    /// SipHash on these short keys.
    open: IndexMap<PartitionKey, R, foldhash::fast::RandomState>,
    /// Bytes the open partitions hold (their rows plus [`PARTITION_BYTES`] each).
    held: usize,
    /// Bytes of the batches being written.
    in_flight: usize,
    budget: usize,
    file_rows: usize,
    encoders: JoinSet<Result<(usize, Vec<Add>)>>,
    /// Partitions' rows waiting for an encoder, with the bytes they count for.
    waiting: VecDeque<(PartitionKey, R, usize)>,
    adds: Vec<Add>,
    appends_since_collect: usize,
}

impl<R: Rows> Sink<R> {
    pub(crate) fn start(kind: Table, table: DeltaTable, options: &IngestOptions) -> Result<Self> {
        let files = FileWriter::for_table(kind, &table)?;
        Ok(Sink {
            keyed_by_name: files.keyed_by_name(),
            files: Arc::new(files),
            table,
            open: IndexMap::default(),
            held: 0,
            in_flight: 0,
            budget: options.buffer_bytes.max(1),
            file_rows: options.file_rows.max(1),
            encoders: JoinSet::new(),
            waiting: VecDeque::new(),
            adds: Vec::new(),
            appends_since_collect: 0,
        })
    }

    /// Adds rows (through `add`) to the partition of `date` and `name` (the name is ignored
    /// where the table is not partitioned by it), then writes out what the limits say.
    pub(crate) async fn append(
        &mut self,
        date: i32,
        name: &str,
        add: impl FnOnce(&mut R),
    ) -> Result<()> {
        let name = if self.keyed_by_name { name } else { "" };
        let index = match self.open.get_index_of(&KeyRef { date, name }) {
            Some(index) => index,
            None => {
                self.held += PARTITION_BYTES;
                let key = PartitionKey {
                    date,
                    name: name.into(),
                };
                self.open.insert_full(key, R::default()).0
            }
        };
        let (_, rows) = self.open.get_index_mut(index).ok_or_else(|| {
            IngestError::Encoder("a partition left the map while being appended to".into())
        })?;
        let before = rows.bytes();
        add(rows);
        let (bytes, len) = (rows.bytes(), rows.len());
        self.held += bytes - before;
        if len >= self.file_rows || bytes >= MAX_FILE_BYTES {
            self.write_out(vec![index])?;
        }
        self.appends_since_collect += 1;
        if self.appends_since_collect >= COLLECT_EVERY && !self.encoders.is_empty() {
            self.appends_since_collect = 0;
            self.collect()?;
        }
        if self.held > self.budget / 4 * 3 || self.held + self.in_flight > self.budget {
            self.relieve().await?;
        }
        Ok(())
    }

    /// Brings the bytes held and in flight back within the budget. Rows held past three
    /// quarters of it: the largest partitions become files until half is held (the
    /// largest first, so files are as large as the budget allows). Then, while rows held
    /// and files in flight together pass the budget, encoders are waited for.
    async fn relieve(&mut self) -> Result<()> {
        if self.held > self.budget / 4 * 3 {
            let mut by_size: Vec<(usize, usize)> = self
                .open
                .values()
                .enumerate()
                .map(|(index, rows)| (rows.bytes() + PARTITION_BYTES, index))
                .collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut held = self.held;
            let mut chosen = Vec::new();
            for (bytes, index) in by_size {
                if held <= self.budget / 2 {
                    break;
                }
                held -= bytes;
                chosen.push(index);
            }
            self.write_out(chosen)?;
        }
        while self.held + self.in_flight > self.budget && !self.encoders.is_empty() {
            // (Waiting rows always have a running encoder ahead of them.)
            self.join_one().await?;
        }
        Ok(())
    }

    /// Turns the partitions at `indexes` into files.
    fn write_out(&mut self, mut indexes: Vec<usize>) -> Result<()> {
        // Highest first: removing one moves the last entry into its place, and every
        // entry after it that was chosen is already gone.
        indexes.sort_unstable_by(|a, b| b.cmp(a));
        for index in indexes {
            let Some((key, rows)) = self.open.swap_remove_index(index) else {
                continue;
            };
            let bytes = rows.bytes();
            self.held -= bytes + PARTITION_BYTES;
            self.spawn(key, rows, bytes);
        }
        Ok(())
    }

    /// Builds, encodes and uploads one file on a task of its own, while rows keep coming;
    /// its bytes count against the budget until it is done.
    fn spawn(&mut self, key: PartitionKey, rows: R, bytes: usize) {
        // Twice the rows: while a file is built, its rows and their Arrow columns are both
        // in memory; and the partition's share, for the builders' spare room.
        let bytes = 2 * bytes + PARTITION_BYTES;
        self.in_flight += bytes;
        self.waiting.push_back((key, rows, bytes));
        self.start_waiting();
    }

    fn start_waiting(&mut self) {
        while self.encoders.len() < ENCODERS {
            let Some((key, rows, bytes)) = self.waiting.pop_front() else {
                break;
            };
            let files = self.files.clone();
            self.encoders.spawn(async move {
                let batch = rows.finish()?;
                Ok((bytes, files.write(&key, batch).await?))
            });
        }
    }

    fn done(
        &mut self,
        done: std::result::Result<Result<(usize, Vec<Add>)>, JoinError>,
    ) -> Result<()> {
        let (bytes, adds) = done.map_err(|e| IngestError::Encoder(e.to_string()))??;
        self.in_flight -= bytes;
        self.adds.extend(adds);
        Ok(())
    }

    /// Takes the files finished so far and starts the waiting ones, without waiting.
    fn collect(&mut self) -> Result<()> {
        while let Some(done) = self.encoders.try_join_next() {
            self.done(done)?;
        }
        self.start_waiting();
        Ok(())
    }

    /// Waits for one file to finish (when any is being written or waits).
    async fn join_one(&mut self) -> Result<()> {
        self.start_waiting();
        if let Some(done) = self.encoders.join_next().await {
            self.done(done)?;
        }
        self.start_waiting();
        Ok(())
    }

    /// The version under which the table recorded the load `app_id`, if it did.
    pub(crate) async fn loaded_version(&self, app_id: &str) -> Result<Option<i64>> {
        Ok(lakehouse_lake::log::txn_version(&self.table, app_id).await?)
    }

    /// Writes every partition left and waits for every file; returns them, uncommitted.
    pub(crate) async fn prepare(mut self, rows: u64) -> Result<PreparedAppend> {
        let all = (0..self.open.len()).collect();
        self.write_out(all)?;
        while !self.encoders.is_empty() || !self.waiting.is_empty() {
            self.join_one().await?;
        }
        Ok(PreparedAppend {
            table: self.table.clone(),
            adds: std::mem::take(&mut self.adds),
            rows,
            reasons: BTreeMap::new(),
        })
    }
}

/// One table's finished files, not yet visible: commit them, or drop them to abandon.
pub struct PreparedAppend {
    table: DeltaTable,
    adds: Vec<Add>,
    rows: u64,
    /// Quarantined rows by reason kind: every commit of them records it.
    reasons: BTreeMap<String, u64>,
}

impl PreparedAppend {
    pub(crate) fn with_reasons(mut self, reasons: BTreeMap<String, u64>) -> Self {
        self.reasons = reasons;
        self
    }

    /// Rows by reason kind, for quarantine (empty for raw).
    pub fn reasons(&self) -> &BTreeMap<String, u64> {
        &self.reasons
    }

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
        mut metadata: CommitMetadata,
    ) -> Result<Option<Committed>> {
        if metadata.reasons.is_none() && !self.reasons.is_empty() {
            metadata.reasons = Some(self.reasons.clone());
        }
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
