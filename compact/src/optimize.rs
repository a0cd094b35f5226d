//! Bin-packing: rewrites each partition's small files into fewer, larger ones. The rewrite
//! carries `dataChange=false` (incremental readers, compaction's own included, skip it) and
//! commits through the lake's commit path, whose conflict rules make two overlapping runs
//! unable to both rewrite one file: the later commit fails, deletes the files it wrote and
//! yields, since the other run has already done the work.

use std::collections::{BTreeMap, HashSet};

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use lakehouse_lake::files::{live_files, read_file, remove_of};
use lakehouse_lake::log::discard_files;
use lakehouse_lake::{Commit, LakeError, Table};
use serde::Serialize;

use crate::error::{CompactError, Result};
use crate::maintain::RawGuard;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OptimizeMetrics {
    pub files_removed: u64,
    pub files_added: u64,
    /// A concurrent run rewrote or removed some of the planned files first; this run
    /// committed nothing.
    pub yielded: bool,
}

/// Bin-packs `table` (the lake's table `which`): in each partition, files smaller than
/// `target_size` are grouped into bins of at most `target_size` and each bin of two or
/// more files becomes one file. Files `guard` protects are left as they are, and its record
/// goes into the commit that removes the others.
pub async fn optimize(
    table: &DeltaTable,
    which: Table,
    target_size: u64,
    writer_properties: &WriterProperties,
    guard: &RawGuard,
) -> Result<OptimizeMetrics> {
    let bins = plan(table, target_size, &guard.protected)?;
    if bins.is_empty() {
        return Ok(OptimizeMetrics::default());
    }
    let store = table.object_store();
    let mut actions = Vec::new();
    let mut added = Vec::new();
    let written = async {
        for bin in &bins {
            // One bin at a time, flushed as one file: memory holds one output file.
            let mut writer = RecordBatchWriter::for_table(table)?
                .with_writer_properties(writer_properties.clone());
            for add in bin {
                for batch in read_file(store.clone(), which, add, None).await? {
                    writer.write(batch).await?;
                }
                actions.push(Action::Remove(remove_of(add, false)));
            }
            added.extend(writer.flush().await?.into_iter().map(|mut add| {
                add.data_change = false;
                add
            }));
        }
        Ok::<_, CompactError>(())
    }
    .await;
    if let Err(e) = written {
        discard_files(table, &added).await;
        return Err(e);
    }
    let metrics = OptimizeMetrics {
        files_removed: actions.len() as u64,
        files_added: added.len() as u64,
        yielded: false,
    };
    actions.extend(added.iter().cloned().map(Action::Add));
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: i64::try_from(target_size).unwrap_or(i64::MAX),
    };
    let mut commit = Commit::new(operation, actions);
    if let Some(record) = &guard.record {
        commit = commit.with_transaction(record.clone());
    }
    match commit.execute(table).await {
        Ok(_) => Ok(metrics),
        Err(e) => {
            if e.committed_nothing() {
                discard_files(table, &added).await;
            }
            match e {
                LakeError::Conflict { version, reason } => {
                    tracing::info!(version, reason, "optimize yielded to a concurrent commit");
                    Ok(OptimizeMetrics {
                        yielded: true,
                        ..OptimizeMetrics::default()
                    })
                }
                other => Err(other.into()),
            }
        }
    }
}

/// Bins of two or more small files, partition by partition, in a deterministic order.
fn plan(
    table: &DeltaTable,
    target_size: u64,
    protected: &HashSet<String>,
) -> Result<Vec<Vec<Add>>> {
    let mut partitions: BTreeMap<Vec<(String, Option<String>)>, Vec<Add>> = BTreeMap::new();
    for add in live_files(table)? {
        if add.size.max(0) as u64 >= target_size || protected.contains(&add.path) {
            continue;
        }
        let mut key: Vec<_> = add.partition_values.clone().into_iter().collect();
        key.sort();
        partitions.entry(key).or_default().push(add);
    }
    let mut bins = Vec::new();
    for mut files in partitions.into_values() {
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
