//! The key index's progress, as its `txn`s record it (`compact/src/keys/` writes them;
//! `docs/dedup.md`): the staging version the index holds every key of, and a build under
//! way with the chunks of it done. Read by compaction and by `status` alike.

use std::ops::Range;

use deltalake::DeltaTable;
use deltalake::kernel::Action;
use futures::TryStreamExt;
use serde::Serialize;

use crate::app_ids::{build_app_id, build_progress_app_id, build_rows_app_id, keys_app_id};
use crate::error::{LakeError, Result};
use crate::log::{commits_in, txn_u64};
use crate::schema::Table;

/// The staging version `keys` holds every key of, for the staging table `staging_id`;
/// none while a rebuild is under way (it removed what the index held).
pub async fn indexed_version(keys: &DeltaTable, staging_id: &str) -> Result<Option<u64>> {
    let version = txn_u64(keys, &keys_app_id(staging_id)).await?;
    match build_version(keys, staging_id, version).await? {
        Some(_) => Ok(None),
        None => Ok(version),
    }
}

/// The staging version a build under way builds: `None` when none is, or the last one
/// finished (`indexed`, the index's record, reached it).
pub async fn build_version(
    keys: &DeltaTable,
    staging_id: &str,
    indexed: Option<u64>,
) -> Result<Option<u64>> {
    let version = txn_u64(keys, &build_app_id(staging_id)).await?;
    Ok(version.filter(|&v| indexed.is_none_or(|i| i < v)))
}

/// What of a build is done: the staging version it builds and the chunks of files indexed
/// (sorted, disjoint, adjacent ones joined).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildProgress {
    pub version: u64,
    pub done: Vec<Range<u64>>,
    /// The rows a chunk holds, as the build's first commit recorded them (builds before
    /// chunks ran at once recorded none).
    pub rows_per_chunk: Option<u64>,
}

impl BuildProgress {
    pub fn files_done(&self) -> u64 {
        self.done.iter().map(|r| r.end - r.start).sum()
    }

    pub fn add(&mut self, files: Range<u64>) {
        if files.is_empty() {
            return;
        }
        self.done.push(files);
        self.done.sort_unstable_by_key(|r| r.start);
        let mut joined: Vec<Range<u64>> = Vec::with_capacity(self.done.len());
        for r in self.done.drain(..) {
            match joined.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => joined.push(r),
            }
        }
        self.done = joined;
    }

    pub fn covers(&self, files: &Range<u64>) -> bool {
        self.done
            .iter()
            .any(|r| r.start <= files.start && files.end <= r.end)
    }

    /// The files of `0..total` not done, as ranges.
    pub fn pending(&self, total: u64) -> Vec<Range<u64>> {
        let mut pending = Vec::new();
        let mut at = 0;
        for r in &self.done {
            if r.start > at {
                pending.push(at..r.start.min(total));
            }
            at = at.max(r.end);
        }
        if at < total {
            pending.push(at..total);
        }
        pending.retain(|r| !r.is_empty());
        pending
    }
}

/// The progress of the build under way, read from the index's log back to the build's
/// first commit; `None` when no build is under way.
pub async fn build_progress(
    keys: &DeltaTable,
    staging_id: &str,
    indexed: Option<u64>,
) -> Result<Option<BuildProgress>> {
    let Some(version) = build_version(keys, staging_id, indexed).await? else {
        return Ok(None);
    };
    let build = build_app_id(staging_id);
    let legacy = build_progress_app_id(staging_id, version);
    let chunk_prefix = format!("{legacy}:f");
    let rows = build_rows_app_id(staging_id, version);
    let head = keys.version().unwrap_or(0);
    let mut progress = BuildProgress {
        version,
        ..BuildProgress::default()
    };
    let mut commits = std::pin::pin!(commits_in(keys.log_store(), (0..=head).rev(), 16));
    while let Some((at, actions)) = commits.try_next().await? {
        let Some(actions) = actions else {
            return Err(LakeError::NoSuchVersion {
                table: Table::Keys.name(),
                what: format!("version {at}, a commit of the build of staging v{version}"),
            });
        };
        let mut began = false;
        for action in actions {
            let Action::Txn(txn) = action else { continue };
            let to = u64::try_from(txn.version).unwrap_or(0);
            if txn.app_id == build {
                began = true;
            } else if txn.app_id == legacy {
                progress.add(0..to);
            } else if txn.app_id == rows {
                progress.rows_per_chunk = Some(to);
            } else if let Some(Ok(from)) = txn
                .app_id
                .strip_prefix(&chunk_prefix)
                .map(str::parse::<u64>)
            {
                progress.add(from..to);
            }
        }
        if began {
            return Ok(Some(progress));
        }
    }
    Err(LakeError::NoSuchVersion {
        table: Table::Keys.name(),
        what: format!("the first commit of the build of staging v{version}"),
    })
}

/// Staging commits read at most to count the index's lag; past it each counts.
const LAG_COMMITS_READ: u64 = 1_000;

/// The index's lag behind `staging`: its commits after `indexed` (the version the index
/// holds) that changed data (optimize's do not: the index need not follow them); every
/// commit when `indexed` is `None`. From the log only.
pub async fn lag_versions(staging: &DeltaTable, indexed: Option<u64>) -> Result<u64> {
    let head = staging.version().unwrap_or(0);
    let Some(from) = indexed.map(|v| v + 1) else {
        return Ok(head + 1);
    };
    let read_to = head.min(from.saturating_add(LAG_COMMITS_READ - 1));
    let mut lag = head.saturating_sub(read_to);
    let mut commits = std::pin::pin!(commits_in(staging.log_store(), from..=read_to, 16));
    while let Some((_, actions)) = commits.try_next().await? {
        let changes_data = actions.is_none_or(|actions| {
            actions
                .iter()
                .any(|a| matches!(a, Action::Add(add) if add.data_change))
        });
        lag += u64::from(changes_data);
    }
    Ok(lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn progress_joins_chunks_and_says_what_is_pending() {
        let mut p = BuildProgress::default();
        assert_eq!(p.pending(10), [0..10]);
        p.add(4..6);
        p.add(0..2);
        p.add(6..8);
        assert_eq!(p.done, vec![0..2, 4..8]);
        assert_eq!(p.pending(10), vec![2..4, 8..10]);
        assert!(p.covers(&(5..8)) && !p.covers(&(1..3)));
        // Overlaps (two builders chunking differently) count once.
        p.add(1..5);
        assert_eq!((p.done.as_slice(), p.files_done()), (&[0..8][..], 8));
        p.add(8..10);
        assert!(p.pending(10).is_empty());
        p.add(3..3);
        assert_eq!(p.done, [0..10]);
    }
}
