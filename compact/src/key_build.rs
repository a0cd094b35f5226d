//! Building the key index from all of staging, resumably and in parallel (issue 23): a
//! build indexes staging's live files at one version (in path order) a chunk of files per
//! commit, so a crash or a timeout (a Lambda's 15 minutes) loses one chunk, and chunks may
//! run at once: on AWS a Step Functions map fans them out over Lambdas
//! (`terraform/keys_build.tf`); locally `keys update` runs them one after another.
//!
//! Its progress is the index's own, in `txn`s the commit path checks like any other:
//! - `lakehouse-keys-build:<staging id>` = the staging version being built, recorded by the
//!   build's first commit, which also removes every file the index held;
//! - `lakehouse-keys-build:<staging id>:v<version>:f<from>` = `to`: the chunk of files
//!   `from..to` is indexed. One app id per chunk, so chunks commit side by side, and the
//!   same chunk twice at once fails all but one;
//! - the commit that completes the files records the index's version
//!   (`lakehouse-keys:staging:<staging id>`).
//!
//! Which chunks are done is read from the index's log back to the build's first commit
//! (a cost that follows the build's own commits). Until the last one the index is not
//! trusted ([`crate::keys::indexed_version`] says none). A build whose version's files are
//! gone (vacuumed with a short retention, or the version past the log's retention) starts
//! over at staging's head. A chunk of an abandoned build that lands late adds entries the
//! index did not need: extra entries cost a read, never a wrong answer.

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use lakehouse_lake::app_ids::{build_app_id, build_chunk_app_id, build_rows_app_id, keys_app_id};
use lakehouse_lake::files::{live_files, live_files_by_path, remove_of, rows_of};
use lakehouse_lake::index_progress::{BuildProgress, build_progress};
use lakehouse_lake::log::txn_u64;
use lakehouse_lake::schema::KEY_BUCKET;
use lakehouse_lake::{Commit, CommitMetadata, Lake, LakeError, Table};
use serde::{Deserialize, Serialize};

use crate::error::{CompactError, Result};
use crate::keys::entries::index_files;
use crate::keys::report::KeysUpdate;

mod plan;
pub use plan::{BuildPlan, ChunkOutcome, index_build_chunk, plan_build};

/// Staging rows a chunk of a parallel build indexes, by default: ~26 s of one process at
/// the 3.8M rows a second measured here (`docs/benchmarks.md`), well inside a Lambda's 15
/// minutes with S3's reads added; and few enough chunks (each adds one index file per
/// bucket) that a year of 1B events an hour is ~88k of them.
pub const ROWS_PER_CHUNK: u64 = 100_000_000;

/// Chunks one plan lists, by default: a Step Functions state's input stays far below its
/// 256 KB limit.
pub const CHUNKS_PER_PLAN: u64 = 500;

/// A chunk of a build: files `from..to` of the version's live files in path order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub from: u64,
    pub to: u64,
}

/// A build under way, at its version: staging there, its live files in path order, and
/// what of them is indexed.
struct Build {
    staging_id: String,
    at: DeltaTable,
    files: Vec<Add>,
    progress: BuildProgress,
}

impl Build {
    fn total(&self) -> u64 {
        self.files.len() as u64
    }

    /// The chunks not yet indexed. Chunks hold about the rows the build's first commit
    /// recorded (`rows` for a build that recorded none), counted from the first file, so
    /// every builder cuts the same chunks and two that take the same one race on its
    /// `txn` instead of indexing its files twice.
    fn chunks(&self, rows: u64) -> Vec<Chunk> {
        let rows = self.progress.rows_per_chunk.unwrap_or(rows);
        let mut chunks = Vec::new();
        let mut from = 0;
        while from < self.total() {
            let to = from + chunk_of(&self.files[index(from)..], rows).len() as u64;
            let chunk = Chunk { from, to };
            if !self.progress.covers(&(from..to)) {
                chunks.push(chunk);
            }
            from = to;
        }
        chunks
    }
}

fn index(file: u64) -> usize {
    usize::try_from(file).unwrap_or(usize::MAX)
}

/// The build under way, opened at its version; `None` when none is, or when its version's
/// files or its log are gone (then a build starts over at the head).
async fn under_way(
    lake: &Lake,
    staging: &DeltaTable,
    keys: &DeltaTable,
    indexed: Option<u64>,
) -> Result<Option<Build>> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let opened = async {
        let Some(progress) = build_progress(keys, &staging_id, indexed).await? else {
            return Ok(None);
        };
        let at = if Some(progress.version) == staging.version() {
            staging.clone()
        } else {
            lake.open_version(Table::Staging, progress.version).await?
        };
        let files = live_files_by_path(&at)?;
        Ok(Some(Build {
            staging_id: staging_id.clone(),
            at,
            files,
            progress,
        }))
    };
    match opened.await {
        Err(e) if gone(&e) => {
            tracing::warn!(error = %e, "the build's version is gone; building anew");
            Ok(None)
        }
        done => done,
    }
}

/// Whether `error` says a version's files or log entries are no longer there.
pub(crate) fn gone(error: &CompactError) -> bool {
    matches!(error, CompactError::Lake(e) if e.is_gone())
}

/// Starts a build of `staging` at its head: one commit removes whatever the index held and
/// records the version being built. It records `indexed` (the old record) again, so that it
/// conflicts with an update planned on the old index, which would otherwise append to the
/// new one and record it complete.
async fn begin(
    staging: &DeltaTable,
    keys: &mut DeltaTable,
    indexed: Option<u64>,
    rows_per_chunk: u64,
    update: &mut KeysUpdate,
) -> Result<Build> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let version = staging.version().unwrap_or(0);
    let removes: Vec<Action> = live_files(keys)?
        .iter()
        .map(|add| Action::Remove(remove_of(add, true)))
        .collect();
    update.files_removed += removes.len() as u64;
    let mut commit = Commit::new(write_operation(SaveMode::Overwrite), removes)
        .with_transaction(Transaction::new(build_app_id(&staging_id), version as i64))
        .with_transaction(Transaction::new(
            build_rows_app_id(&staging_id, version),
            i64::try_from(rows_per_chunk).unwrap_or(i64::MAX),
        ))
        .with_metadata(CommitMetadata {
            source: Some(build_app_id(&staging_id)),
            records: Some(0),
            ..CommitMetadata::default()
        });
    if let Some(indexed) = indexed {
        commit =
            commit.with_transaction(Transaction::new(keys_app_id(&staging_id), indexed as i64));
    }
    commit.execute(keys).await?;
    keys.update_incremental(None).await?;
    update.build_commits += 1;
    let files = live_files_by_path(staging)?;
    Ok(Build {
        staging_id,
        at: staging.clone(),
        files,
        progress: BuildProgress {
            version,
            done: Vec::new(),
            rows_per_chunk: Some(rows_per_chunk),
        },
    })
}

/// Builds the index of `staging` (opened at its head) from scratch, or goes on with the
/// build under way, one chunk of about `rows_per_commit` rows' entries after another.
/// Returns the staging version the index then holds every key of.
pub(crate) async fn build(
    lake: &Lake,
    staging: &DeltaTable,
    keys: &DeltaTable,
    rows_per_commit: u64,
    update: &mut KeysUpdate,
) -> Result<u64> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let indexed = txn_u64(keys, &keys_app_id(&staging_id)).await?;
    let mut keys = keys.clone();
    if let Some(mut build) = under_way(lake, staging, &keys, indexed).await? {
        update.build_resumed_after = Some(build.progress.files_done());
        match build_all(&mut build, &mut keys, rows_per_commit, update).await {
            Err(e) if gone(&e) && Some(build.progress.version) < staging.version() => {
                tracing::warn!(error = %e, "the build's version is gone; building anew");
                update.build_resumed_after = None;
            }
            done => return done.map(|()| build.progress.version),
        }
    }
    let mut build = begin(staging, &mut keys, indexed, rows_per_commit, update).await?;
    build_all(&mut build, &mut keys, rows_per_commit, update).await?;
    Ok(build.progress.version)
}

/// Indexes every pending chunk of `build`, one after another; the last records the index.
async fn build_all(
    build: &mut Build,
    keys: &mut DeltaTable,
    rows_per_commit: u64,
    update: &mut KeysUpdate,
) -> Result<()> {
    update.build_files = build.total();
    loop {
        let chunks = build.chunks(rows_per_commit);
        let Some(&chunk) = chunks.last() else {
            // Every chunk landed, but not the record (chunks that ran at once each left
            // it to another): record it now.
            return index_chunk(build, keys, None, update).await.map(|_| ());
        };
        // From the last chunk back: a map running the same build takes them from the
        // first, so the two meet once, at the end.
        match index_chunk(build, keys, Some(chunk), update).await {
            Ok(true) if chunks.len() == 1 => return Ok(()),
            Ok(_) => {}
            // Another builder committed this chunk (or the last) first: read what is
            // done again and go on with what is left.
            Err(CompactError::Lake(e)) if e.committed_nothing() => {
                tracing::info!(error = %e, "another builder indexed this chunk first");
                keys.update_incremental(None).await?;
                let staging_id = build.staging_id.clone();
                let indexed = txn_u64(keys, &keys_app_id(&staging_id)).await?;
                match build_progress(keys, &staging_id, indexed).await? {
                    Some(progress) if progress.version == build.progress.version => {
                        build.progress = progress;
                    }
                    // Finished by another builder.
                    None if indexed == Some(build.progress.version) => return Ok(()),
                    // Replaced by a build of another version (this one's was gone): the
                    // caller must start again from the tables, never record this one.
                    _ => {
                        return Err(LakeError::Conflict {
                            version: keys.version().unwrap_or(0),
                            reason: format!(
                                "replaced the key index's build of staging v{}",
                                build.progress.version
                            ),
                        }
                        .into());
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Indexes `chunk` of `build`'s files in one commit (none: records a complete build). The
/// commit that leaves no file pending records the index's version too. False when a commit
/// in `keys`' snapshot holds the chunk already: nothing is done (checked on the snapshot
/// the commit is checked against, so a commit of it landing meanwhile is a conflict).
async fn index_chunk(
    build: &mut Build,
    keys: &mut DeltaTable,
    chunk: Option<Chunk>,
    update: &mut KeysUpdate,
) -> Result<bool> {
    let version = build.progress.version;
    let files = chunk.map_or(0..0, |c| c.from..c.to);
    if let Some(c) = chunk {
        let done = txn_u64(
            keys,
            &build_chunk_app_id(&build.staging_id, version, c.from),
        )
        .await?;
        if done.is_some_and(|to| to >= c.to) {
            build.progress.add(files);
            return Ok(false);
        }
    }
    let staged = &build.files[index(files.start)..index(files.end)];
    let mut entries = 0;
    let adds = index_files(&build.at, keys, staged, &mut entries).await?;
    let mut commit = Commit::new(
        write_operation(SaveMode::Append),
        adds.iter().cloned().map(Action::Add).collect(),
    )
    .with_metadata(CommitMetadata {
        source: Some(build_app_id(&build.staging_id)),
        records: Some(entries),
        ..CommitMetadata::default()
    });
    if let Some(c) = chunk {
        commit = commit.with_transaction(Transaction::new(
            build_chunk_app_id(&build.staging_id, version, c.from),
            c.to as i64,
        ));
    }
    let mut after = build.progress.clone();
    after.add(files.clone());
    if after.pending(build.total()).is_empty() {
        commit = commit.with_transaction(Transaction::new(
            keys_app_id(&build.staging_id),
            version as i64,
        ));
    }
    commit.execute(keys).await?;
    keys.update_incremental(None).await?;
    build.progress = after;
    update.staging_files_read += staged.len() as u64;
    update.entries_added += entries;
    update.files_added += adds.len() as u64;
    update.build_commits += 1;
    Ok(true)
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

fn write_operation(mode: SaveMode) -> DeltaOperation {
    DeltaOperation::Write {
        mode,
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
