//! Building the key index from all of staging, resumably: a build indexes staging's live
//! files at one version, a chunk of files per commit, so a crash or a timeout (a Lambda's
//! 15 minutes) loses one chunk, and the next update goes on from the last chunk that
//! landed instead of starting over (issue 23).
//!
//! Its progress is the index's own, in `txn`s the commit path checks like any other:
//! - `lakehouse-keys-build:<staging id>` = the staging version being built, recorded by the
//!   first chunk, whose commit also removes every file the index held;
//! - `lakehouse-keys-build:<staging id>:v<version>` = how many of that version's live
//!   files, in path order, are indexed;
//! - the last chunk records the index's version (`lakehouse-keys:staging:<staging id>`).
//!
//! Until then the index is not trusted ([`crate::keys::indexed_version`] says none): a
//! build in progress is a version being built later than the one the index holds. Two
//! builders at once race on the chunk's record; the loser deletes what it wrote and reads
//! the progress again. A build whose version's files are gone (vacuumed with a short
//! retention, or the version past the log's retention) starts over at staging's head.

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use lakehouse_lake::files::{live_files, remove_of, rows_of};
use lakehouse_lake::log::{discard_files, txn_version};
use lakehouse_lake::schema::KEY_BUCKET;
use lakehouse_lake::{Commit, CommitMetadata, Lake, LakeError, Table};

use crate::error::{CompactError, Result};
use crate::keys::{KeysUpdate, index_files, keys_app_id};

/// The prefix of a build's `txn` app ids; the staging table's id follows.
pub const KEYS_BUILD_PREFIX: &str = "lakehouse-keys-build:";

fn build_app_id(staging_id: &str) -> String {
    format!("{KEYS_BUILD_PREFIX}{staging_id}")
}

fn progress_app_id(staging_id: &str, version: u64) -> String {
    format!("{KEYS_BUILD_PREFIX}{staging_id}:v{version}")
}

/// A build under way: the staging version being built and how many of its files are
/// indexed. `None` when none is, or the last one finished.
pub async fn build_in_progress(
    keys: &DeltaTable,
    staging_id: &str,
    indexed: Option<u64>,
) -> Result<Option<(u64, u64)>> {
    let Some(version) = txn_u64(keys, &build_app_id(staging_id)).await? else {
        return Ok(None);
    };
    if indexed.is_some_and(|v| v >= version) {
        return Ok(None);
    }
    let done = txn_u64(keys, &progress_app_id(staging_id, version)).await?;
    Ok(Some((version, done.unwrap_or(0))))
}

async fn txn_u64(table: &DeltaTable, app_id: &str) -> Result<Option<u64>> {
    Ok(txn_version(table, app_id)
        .await?
        .and_then(|v| u64::try_from(v).ok()))
}

/// Builds the index of `staging` (opened at its head) from scratch, or goes on with the
/// build under way, committing about `rows_per_commit` rows' entries at a time. Returns
/// the staging version the index then holds every key of.
pub(crate) async fn build(
    lake: &Lake,
    staging: &DeltaTable,
    keys: &DeltaTable,
    rows_per_commit: u64,
    update: &mut KeysUpdate,
) -> Result<u64> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let head = staging.version().unwrap_or(0);
    let indexed = txn_u64(keys, &keys_app_id(&staging_id)).await?;
    let mut keys = keys.clone();
    if let Some((version, done)) = build_in_progress(&keys, &staging_id, indexed).await? {
        let resumed = async {
            let at = if version == head {
                staging.clone()
            } else {
                lake.open_version(Table::Staging, version).await?
            };
            update.build_resumed_after = Some(done);
            build_from(&at, &mut keys, (done, indexed), rows_per_commit, update).await
        };
        match resumed.await {
            Err(e) if version < head && gone(&e) => {
                tracing::warn!(version, error = %e, "the build's version is gone; building anew");
                update.build_resumed_after = None;
            }
            done => return done.map(|()| version),
        }
    }
    build_from(staging, &mut keys, (0, indexed), rows_per_commit, update).await?;
    Ok(head)
}

/// Whether `error` says a version's files or log entries are no longer there.
fn gone(error: &CompactError) -> bool {
    matches!(
        error,
        CompactError::Lake(LakeError::Vanished { .. } | LakeError::NoSuchVersion { .. })
    )
}

/// Indexes `at`'s live files from the `done`-th on (in path order), a chunk per commit.
/// `indexed` is the version the index's record says (not trusted while a build is under
/// way): the first chunk records it again, so that it conflicts with an update planned on
/// the old index, which would otherwise append to the new one and record it complete.
async fn build_from(
    at: &DeltaTable,
    keys: &mut DeltaTable,
    (mut done, indexed): (u64, Option<u64>),
    rows_per_commit: u64,
    update: &mut KeysUpdate,
) -> Result<()> {
    let staging_id = at.snapshot()?.metadata().id().to_string();
    let version = at.version().unwrap_or(0);
    let mut files = live_files(at)?;
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let total = files.len() as u64;
    update.build_files = total;
    loop {
        let start = usize::try_from(done).unwrap_or(usize::MAX).min(files.len());
        let chunk = chunk_of(&files[start..], rows_per_commit);
        let first = done == 0;
        done += chunk.len() as u64;
        let mut actions = Vec::new();
        if first {
            // The build starts from nothing: whatever the index held goes.
            actions.extend(
                live_files(keys)?
                    .iter()
                    .map(|add| Action::Remove(remove_of(add, true))),
            );
            update.files_removed += actions.len() as u64;
        }
        let mut entries = 0;
        let adds = index_files(at, keys, chunk, &mut entries).await?;
        actions.extend(adds.iter().cloned().map(Action::Add));
        let mut commit = Commit::new(chunk_operation(first), actions)
            .with_transaction(Transaction::new(
                progress_app_id(&staging_id, version),
                done as i64,
            ))
            .with_metadata(CommitMetadata {
                source: Some(build_app_id(&staging_id)),
                records: Some(entries),
                ..CommitMetadata::default()
            });
        if first {
            commit = commit
                .with_transaction(Transaction::new(build_app_id(&staging_id), version as i64));
        }
        let record = match (done >= total, first) {
            (true, _) => Some(version),
            (false, true) => indexed,
            (false, false) => None,
        };
        if let Some(record) = record {
            commit =
                commit.with_transaction(Transaction::new(keys_app_id(&staging_id), record as i64));
        }
        if let Err(e) = commit.execute(keys).await {
            if e.committed_nothing() {
                discard_files(keys, &adds).await;
            }
            return Err(e.into());
        }
        keys.update_incremental(None).await?;
        update.staging_files_read += chunk.len() as u64;
        update.entries_added += entries;
        update.files_added += adds.len() as u64;
        update.build_commits += 1;
        if done >= total {
            return Ok(());
        }
    }
}

/// The files from the start of `files` holding about `rows` rows: at least one.
fn chunk_of(files: &[Add], rows: u64) -> &[Add] {
    let mut held = 0;
    let end = files
        .iter()
        .position(|add| {
            held += rows_of(add).unwrap_or(1);
            held >= rows
        })
        .map_or(files.len(), |i| i + 1);
    &files[..end]
}

fn chunk_operation(first: bool) -> DeltaOperation {
    DeltaOperation::Write {
        mode: if first {
            SaveMode::Overwrite
        } else {
            SaveMode::Append
        },
        partition_by: Some(vec![KEY_BUCKET.to_string()]),
        predicate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rows: i64) -> Add {
        Add {
            stats: Some(format!(r#"{{"numRecords":{rows}}}"#)),
            ..Add::default()
        }
    }

    #[test]
    fn a_chunk_holds_about_the_rows_asked_and_at_least_one_file() {
        let files: Vec<Add> = [3, 4, 5, 10, 1].into_iter().map(file).collect();
        assert_eq!(chunk_of(&files, 7).len(), 2);
        assert_eq!(chunk_of(&files, 8).len(), 3);
        assert_eq!(chunk_of(&files, 1).len(), 1);
        assert_eq!(chunk_of(&files[3..], 1_000).len(), 2);
        assert!(chunk_of(&[], 5).is_empty());
    }
}
