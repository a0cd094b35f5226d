//! Bin-packing: rewrites each partition's small files into fewer, larger ones (a key
//! range's files apart from the others, so that ranges keep to their own files), through
//! the lake's writer, so the new file is in the table's order (raw's by key bucket, with
//! its footer). A bin's rows are held while its file is written: with the default 128 MB
//! target, ~940 MB at peak for raw (`docs/benchmarks.md`). The rewrite
//! carries `dataChange=false` (incremental readers, compaction's own included, skip it) and
//! commits through the lake's commit path, whose conflict rules make two overlapping runs
//! unable to both rewrite one file: the later commit fails, deletes the files it wrote and
//! yields, since the other run has already done the work.

use std::collections::{BTreeMap, HashSet};

use deltalake::DeltaTable;
use deltalake::arrow::compute::concat_batches;
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::DeltaOperation;
use lakehouse_lake::files::{live_files, parse_partition_date, read_file, remove_of};
use lakehouse_lake::log::discard_files;
use lakehouse_lake::ranges::{file_key_range, tag_file_key_range};
use lakehouse_lake::schema::EVENT_DATE;
use lakehouse_lake::write::FileWriter;
use lakehouse_lake::{Commit, KEY_RANGE_TAG, LakeError, Table};
use serde::Serialize;

use crate::error::{CompactError, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OptimizeMetrics {
    pub files_removed: u64,
    pub files_added: u64,
    /// A concurrent run rewrote or removed some of the planned files first; this run
    /// committed nothing.
    pub yielded: bool,
}

/// What bin-packing must leave alone, and what its commit records: raw's files compaction
/// may still read, and how far every kind of run has consumed raw (see
/// [`lakehouse_lake::progress`]). Nothing for the other tables.
#[derive(Debug, Clone, Default)]
pub struct RawGuard {
    pub protected: HashSet<String>,
    pub record: Option<Transaction>,
}

/// Smaller files for partitions where late copies land: a copy that replaces a row
/// rewrites the file holding it, so the file's size is what replacing one row costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentFiles {
    /// The first recent `event_date`, in days since the epoch: it and every later date.
    pub since: i32,
    pub file_size: u64,
}

/// Bin-packs `table` (the lake's table `which`): in each partition, files smaller than
/// `target_size` (`recent`'s size in recent partitions) are grouped into bins of at most
/// that size and each bin of two or more files becomes one file. Files `guard` protects
/// are left as they are, and its record goes into the commit that removes the others.
pub async fn optimize(
    table: &DeltaTable,
    which: Table,
    target_size: u64,
    recent: Option<RecentFiles>,
    writer_properties: &WriterProperties,
    guard: &RawGuard,
) -> Result<OptimizeMetrics> {
    let target_of = |add: &Add| -> Result<u64> {
        let date = match recent {
            Some(_) => parse_partition_date(add, EVENT_DATE)?,
            None => None,
        };
        Ok(match (recent, date) {
            (Some(recent), Some(date)) if date >= recent.since => recent.file_size,
            _ => target_size,
        })
    };
    let bins = plan(table, target_of, &guard.protected)?;
    if bins.is_empty() {
        return Ok(OptimizeMetrics::default());
    }
    let store = table.object_store();
    // The lake's writer, as every other writer of the table: a bin's rows come out in the
    // table's order (raw's clustered by key bucket, with its footer), not as sorted runs.
    let writer = FileWriter::with_properties(which, table, writer_properties.clone())?;
    let schema = which.arrow_schema();
    let mut actions = Vec::new();
    let mut added = Vec::new();
    let written = async {
        for bin in &bins {
            // One bin at a time: memory holds one output file's rows.
            let mut rows = Vec::new();
            for add in bin {
                rows.extend(read_file(store.clone(), which, add, None).await?);
                actions.push(Action::Remove(remove_of(add, false)));
            }
            let Some(first) = bin.first() else { continue };
            let packed = concat_batches(&schema, &rows)?;
            // The parts are copied into one batch: not held while it is written.
            drop(rows);
            let range = file_key_range(first).map(String::from);
            let files = writer.write(&writer.key_of(first)?, packed).await?;
            added.extend(files.into_iter().map(|mut add| {
                add.data_change = false;
                if let Some(range) = &range {
                    tag_file_key_range(&mut add, range);
                }
                add
            }));
        }
        Ok::<_, CompactError>(())
    }
    .await;
    if let Err(e) = written {
        return abandon_rewrite(table, &added, e).await;
    }
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: i64::try_from(target_size).unwrap_or(i64::MAX),
    };
    commit_rewrite(table, operation, actions, added, guard.record.clone()).await
}

/// Gives up a rewrite that failed before its commit, deleting the files it wrote. A file it
/// was reading that is gone was rewritten and vacuumed by a concurrent maintainer (a short
/// retention): that is yielding to it, not failing.
pub(crate) async fn abandon_rewrite(
    table: &DeltaTable,
    added: &[Add],
    error: CompactError,
) -> Result<OptimizeMetrics> {
    discard_files(table, added).await;
    match error {
        CompactError::Lake(LakeError::Vanished { path }) => {
            tracing::info!(
                path,
                "rewrite yielded: a file it read was rewritten and vacuumed"
            );
            Ok(yielded())
        }
        other => Err(other),
    }
}

fn yielded() -> OptimizeMetrics {
    OptimizeMetrics {
        yielded: true,
        ..OptimizeMetrics::default()
    }
}

/// Commits a rewrite that changes no data: `actions` remove what `added` replaces, with
/// `record` when given. Losing to a concurrent commit that removed one of the same files is
/// yielding, not failing: the files written are deleted and the metrics say so.
pub(crate) async fn commit_rewrite(
    table: &DeltaTable,
    operation: DeltaOperation,
    mut actions: Vec<Action>,
    added: Vec<Add>,
    record: Option<Transaction>,
) -> Result<OptimizeMetrics> {
    let metrics = OptimizeMetrics {
        files_removed: actions.len() as u64,
        files_added: added.len() as u64,
        yielded: false,
    };
    actions.extend(added.iter().cloned().map(Action::Add));
    let mut commit = Commit::new(operation, actions);
    if let Some(record) = record {
        commit = commit.with_transaction(record);
    }
    match commit.execute(table).await {
        Ok(_) => Ok(metrics),
        Err(e) => match e {
            LakeError::Conflict { version, reason } => {
                tracing::info!(version, reason, "rewrite yielded to a concurrent commit");
                Ok(yielded())
            }
            other => Err(other.into()),
        },
    }
}

/// Bins of two or more small files, partition by partition (each with its target size),
/// in a deterministic order.
fn plan(
    table: &DeltaTable,
    target_of: impl Fn(&Add) -> Result<u64>,
    protected: &HashSet<String>,
) -> Result<Vec<Vec<Add>>> {
    type Partition = Vec<(String, Option<String>)>;
    let mut partitions: BTreeMap<Partition, (u64, Vec<Add>)> = BTreeMap::new();
    for add in live_files(table)? {
        let target_size = target_of(&add)?;
        if add.size.max(0) as u64 >= target_size || protected.contains(&add.path) {
            continue;
        }
        let mut key: Vec<_> = add.partition_values.clone().into_iter().collect();
        key.sort();
        // A key range's files are packed only with its own: packed with another range's
        // rows, a late copy of either range's would make both rewrite one file (and one
        // of them plan again).
        key.push((
            KEY_RANGE_TAG.to_string(),
            file_key_range(&add).map(String::from),
        ));
        let partition = partitions.entry(key).or_insert((target_size, Vec::new()));
        partition.1.push(add);
    }
    let mut bins = Vec::new();
    for (target_size, mut files) in partitions.into_values() {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut bin: Vec<Add> = Vec::new();
        let mut bin_size = 0u64;
        for add in files {
            let size = add.size.max(0) as u64;
            if !bin.is_empty() && bin_size + size > target_size {
                bins.push(std::mem::take(&mut bin));
                bin_size = 0;
            }
            bin_size += size;
            bin.push(add);
        }
        bins.push(bin);
    }
    bins.retain(|bin| bin.len() > 1);
    Ok(bins)
}
