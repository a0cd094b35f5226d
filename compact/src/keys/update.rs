//! Bringing the index up to staging: the files staging added since the index's version,
//! or a build from all of staging ([`crate::key_build`]) when that cannot be told.

use std::collections::{HashMap, HashSet};

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use futures::TryStreamExt;
use lakehouse_lake::app_ids::keys_app_id;
use lakehouse_lake::files::live_files;
use lakehouse_lake::keys::is_carried;
use lakehouse_lake::log::commits_in;
use lakehouse_lake::schema::KEY_BUCKET;
use lakehouse_lake::{Commit, CommitMetadata, Lake, Table};

use crate::error::{MAX_TRIES, Result, lost_race};

use super::entries::index_files;
use super::report::KeysUpdate;
use crate::key_build;
use lakehouse_lake::index_progress::indexed_version;

/// Brings the index up to staging's latest version; a rebuild commits about
/// `rows_per_commit` staging rows' entries at a time ([`crate::key_build`]). Concurrent
/// updates are safe: the loser of the race to record a version reads the tables again and
/// finds less (or nothing) to do.
pub async fn update_keys(lake: &Lake, rows_per_commit: u64) -> Result<KeysUpdate> {
    let mut tries = 0;
    loop {
        let (staging, keys) = tokio::try_join!(lake.open(Table::Staging), lake.open(Table::Keys))?;
        match update_to(lake, &staging, &keys, rows_per_commit).await {
            Err(e) if tries + 1 < MAX_TRIES && lost_race(&e) => {
                tries += 1;
                tracing::info!(error = %e, tries, "key index update lost a race; again");
            }
            done => return done,
        }
    }
}

/// Whether the index holds every key of some version of `staging` (it may lag, which an
/// update completes); false while it is missing, being built, or built for another
/// staging. Reads the index's `txn`s only.
pub async fn index_trusted(lake: &Lake, staging: &DeltaTable) -> Result<bool> {
    let Some(keys) = lake.open_existing(Table::Keys).await? else {
        return Ok(false);
    };
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    Ok(indexed_version(&keys, &staging_id).await?.is_some())
}

async fn update_to(
    lake: &Lake,
    staging: &DeltaTable,
    keys: &DeltaTable,
    rows_per_commit: u64,
) -> Result<KeysUpdate> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let head = staging.version().unwrap_or(0);
    let before = indexed_version(keys, &staging_id).await?;
    let mut update = KeysUpdate {
        indexed_before: before,
        indexed: before.unwrap_or(head),
        ..KeysUpdate::default()
    };
    let mut from = before;
    let mut keys = keys.clone();
    loop {
        if from.is_some_and(|v| v >= head) {
            return Ok(update);
        }
        let live = live_files(staging)?;
        let added = match from {
            Some(v) => added_since(staging, v + 1..=head, &live).await?,
            None => None,
        };
        let Some(files) = added else {
            if update.rebuilt {
                // Built at an older version whose later commits the log no longer holds:
                // the next update builds anew at the head.
                return Ok(update);
            }
            update.rebuilt = true;
            update.indexed =
                key_build::build(lake, staging, &keys, rows_per_commit, &mut update).await?;
            from = Some(update.indexed);
            keys.update_incremental(None).await?;
            continue;
        };
        append(staging, &keys, &files, &staging_id, head, &mut update).await?;
        update.indexed = head;
        return Ok(update);
    }
}

/// Indexes `files` (what staging added since the index's version) in one commit that
/// records `head`.
async fn append(
    staging: &DeltaTable,
    keys: &DeltaTable,
    files: &[Add],
    staging_id: &str,
    head: u64,
    update: &mut KeysUpdate,
) -> Result<()> {
    update.staging_files_read += files.len() as u64;
    let mut entries = 0;
    let adds = index_files(staging, keys, files, &mut entries).await?;
    update.entries_added += entries;
    update.files_added += adds.len() as u64;
    let actions = adds.iter().cloned().map(Action::Add).collect();
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(vec![KEY_BUCKET.to_string()]),
        predicate: None,
    };
    let metadata = CommitMetadata {
        source: Some(keys_app_id(staging_id)),
        records: Some(entries),
        ..CommitMetadata::default()
    };
    let commit = Commit::new(operation, actions)
        .with_transaction(Transaction::new(keys_app_id(staging_id), head as i64))
        .with_metadata(metadata);
    commit.execute(keys).await?;
    Ok(())
}

/// The files added to staging in `versions` that are still live; `None` when the log no
/// longer holds one of those commits (then only a rebuild is exact).
pub(crate) async fn added_since(
    staging: &DeltaTable,
    versions: std::ops::RangeInclusive<u64>,
    live: &[Add],
) -> Result<Option<Vec<Add>>> {
    let live: HashMap<&str, &Add> = live.iter().map(|a| (a.path.as_str(), a)).collect();
    // Every file added in `versions`, live or not: a rewrite of one of them may hold keys
    // the index lacks.
    let mut added = HashSet::new();
    let mut files = Vec::new();
    let mut commits = std::pin::pin!(commits_in(staging.log_store(), versions, 16));
    while let Some((_, actions)) = commits.try_next().await? {
        let Some(actions) = actions else {
            return Ok(None);
        };
        // Files of carried rows (a merge's rewrites, optimize's bin-packs) add no key when
        // what they rewrote was indexed already: skipping them keeps rewrites from
        // repeating entries. A rewrite of a file added since the index's version may hold
        // keys the index lacks: then every file of the commit is indexed.
        let rewrites_indexed = actions.iter().all(|a| match a {
            Action::Remove(remove) => !added.contains(remove.path.as_str()),
            _ => true,
        });
        for action in actions {
            let Action::Add(add) = action else { continue };
            let skip = rewrites_indexed && is_carried(&add);
            if !skip && let Some(live) = live.get(add.path.as_str()) {
                files.push((*live).clone());
            }
            added.insert(add.path);
        }
    }
    Ok(Some(files))
}
