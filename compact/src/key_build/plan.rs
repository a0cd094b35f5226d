//! A build's steps for running its chunks at once, anywhere: [`plan_build`] starts a build
//! and lists its pending chunks; [`index_build_chunk`] indexes one, exactly once. The
//! keys-build state machine (`terraform/keys_build.tf`) and `lakehouse keys build` run them.

use lakehouse_lake::app_ids::keys_app_id;
use lakehouse_lake::files::live_files_by_path;
use lakehouse_lake::log::commit_actions;
use lakehouse_lake::{Lake, Table};
use serde::Serialize;

use lakehouse_lake::index_progress::{BuildProgress, build_version};
use lakehouse_lake::log::txn_u64;

use super::{Build, Chunk, begin, index_chunk, under_way};
use crate::error::{CompactError, Result};
use crate::keys::report::KeysUpdate;

/// What planning a build answers: the version being built and the chunks still to index,
/// or that the index needs no build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    /// The staging version being built; `None` when the index is trusted (`keys update`
    /// brings it up to staging).
    pub as_of: Option<u64>,
    /// This plan's first commit started the build (removing what the index held).
    pub begun: bool,
    /// The build's files (staging's live files at `as_of`) and how many are indexed.
    pub files: u64,
    pub files_done: u64,
    /// Chunks of pending files, at most the number asked for.
    pub chunks: Vec<Chunk>,
    /// More chunks are pending than listed: plan again once these are done.
    pub more: bool,
}

/// Plans the build of the index: starts one when the index is not trusted (no record for
/// this staging, or one the log no longer holds the way on from) and none is under way,
/// and lists up to `max_chunks` pending chunks of about `rows_per_chunk` rows each. Each
/// chunk is then [`index_build_chunk`]'s to index, anywhere and at once; `keys update`
/// (or a compaction) records the finished build and indexes what staging added since.
pub async fn plan_build(lake: &Lake, rows_per_chunk: u64, max_chunks: u64) -> Result<BuildPlan> {
    let mut tries = 0;
    loop {
        match plan_once(lake, rows_per_chunk, max_chunks).await {
            Err(e) if tries + 1 < crate::error::MAX_TRIES && crate::error::lost_race(&e) => {
                tries += 1;
                tracing::info!(error = %e, tries, "planning the build lost a race; again");
            }
            done => return done,
        }
    }
}

async fn plan_once(lake: &Lake, rows_per_chunk: u64, max_chunks: u64) -> Result<BuildPlan> {
    let (staging, mut keys) = tokio::try_join!(lake.open(Table::Staging), lake.open(Table::Keys))?;
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let indexed = txn_u64(&keys, &keys_app_id(&staging_id)).await?;
    let building = build_version(&keys, &staging_id, indexed).await?;
    if building.is_none()
        && let Some(indexed) = indexed
    {
        // An update follows staging's log from the record on: it must still hold the
        // commit after it (logs expire from the oldest).
        let log = staging.log_store();
        let followable = Some(indexed) >= staging.version()
            || commit_actions(log.as_ref(), indexed + 1).await?.is_some();
        if followable {
            return Ok(BuildPlan {
                as_of: None,
                ..BuildPlan::default()
            });
        }
    }
    let (build, begun) = match under_way(lake, &staging, &keys, indexed).await? {
        Some(build) => (build, false),
        None => {
            let mut update = KeysUpdate::default();
            (
                begin(&staging, &mut keys, indexed, rows_per_chunk, &mut update).await?,
                true,
            )
        }
    };
    let mut chunks = build.chunks(rows_per_chunk);
    let max_chunks = usize::try_from(max_chunks).unwrap_or(usize::MAX);
    let more = chunks.len() > max_chunks;
    chunks.truncate(max_chunks);
    Ok(BuildPlan {
        as_of: Some(build.progress.version),
        begun,
        files: build.total(),
        files_done: build.progress.files_done(),
        chunks,
        more,
    })
}

/// What indexing one chunk of a build did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ChunkOutcome {
    /// Committed: `entries` from `files` staging files; `completed`: it recorded the
    /// build (it was the whole of it).
    Indexed {
        files: u64,
        entries: u64,
        completed: bool,
    },
    /// A commit already holds these files (a retry after a lost response, or a sibling).
    AlreadyDone,
    /// Another commit landed first with this chunk or the build's last one: nothing of
    /// this run's was committed, and nothing is left to do.
    Lost,
    /// No build of this version is under way: it finished, or a build of another version
    /// replaced it (`building`). Nothing was committed.
    NotUnderWay { building: Option<u64> },
}

/// Indexes files `chunk` of the build of staging `as_of` in one commit, exactly once
/// (its `txn`): a chunk run twice, at once or after a lost response, commits once. It
/// reads two `txn`s of the index and staging's files at `as_of`, never the build's log:
/// a chunk costs the same however many ran before it. The build's record is left to the
/// finish (`keys update`), unless this chunk is the whole build.
pub async fn index_build_chunk(lake: &Lake, as_of: u64, chunk: Chunk) -> Result<ChunkOutcome> {
    let (at, mut keys) = tokio::try_join!(
        lake.open_version(Table::Staging, as_of),
        lake.open(Table::Keys)
    )?;
    let staging_id = at.snapshot()?.metadata().id().to_string();
    let indexed = txn_u64(&keys, &keys_app_id(&staging_id)).await?;
    let building = build_version(&keys, &staging_id, indexed).await?;
    if building != Some(as_of) {
        return Ok(ChunkOutcome::NotUnderWay { building });
    }
    let files = live_files_by_path(&at)?;
    if chunk.from >= chunk.to || chunk.to > files.len() as u64 {
        return Err(CompactError::BuildChunk(format!(
            "files {}..{} of a build of {} files (staging v{as_of})",
            chunk.from,
            chunk.to,
            files.len()
        )));
    }
    let mut build = Build {
        staging_id,
        at,
        files,
        progress: BuildProgress {
            version: as_of,
            ..BuildProgress::default()
        },
    };
    let mut update = KeysUpdate::default();
    match index_chunk(&mut build, &mut keys, Some(chunk), &mut update).await {
        Ok(false) => Ok(ChunkOutcome::AlreadyDone),
        Ok(true) => Ok(ChunkOutcome::Indexed {
            files: update.staging_files_read,
            entries: update.entries_added,
            completed: build.progress.pending(build.total()).is_empty(),
        }),
        Err(CompactError::Lake(e)) if e.committed_nothing() => {
            tracing::info!(error = %e, "another commit indexed this chunk first");
            Ok(ChunkOutcome::Lost)
        }
        Err(e) => Err(e),
    }
}
