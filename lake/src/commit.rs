//! The one commit path. Every writer of the lake commits through [`Commit`]: a commit's
//! data actions, its application transactions (the `txn` actions that record exactly-once
//! progress) and its metadata (`commitInfo.lakehouse`) land in one Delta commit, together
//! or not at all.
//!
//! A commit that finds the table moved on since the version it was planned on checks each
//! commit that landed meanwhile against the lake's conflict rules ([`crate::conflict`]):
//! it lands on top of them when nothing it depends on changed, and fails with
//! [`LakeError::Conflict`] (having written nothing to the log) when something did.
//!
//! A commit that certainly did not land deletes the data files it adds: they were written
//! for it and nothing will reference them. Only a commit of files another process may yet
//! commit (a grouped commit of handed-over manifests) keeps them ([`Commit::keeping_files`]).

use std::collections::{BTreeMap, HashMap};
use std::pin::pin;

use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::protocol::{DeltaOperation, SaveMode};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::conflict::{Claims, Reads};
use crate::error::{LakeError, Result};
use crate::files::object_path;
use crate::keys::is_carried;
use crate::log::{commits_in, discard_files};
use crate::ranges::{KEY_RANGE_TAG, RunRange, SplitBy};

/// The key of our metadata in a commit's `commitInfo`.
pub const METADATA_KEY: &str = "lakehouse";

/// Blind appends never conflict logically, so a lost race only costs a re-read of the log:
/// allow many, so dozens of concurrent shard writers don't fail each other.
const APPEND_RETRIES: usize = 100;
/// Other commits (merges, rewrites) are few, but each reads the commits it lost to before
/// trying again, a wider window than an append's: against many appending writers it can
/// lose many times in a row (one run lost 16 to 8 shards on moto). Losing this many means
/// something keeps rewriting the table. (Waiting between tries was measured and made it
/// worse: more appends land meanwhile, and each must be read.)
const DEFAULT_RETRIES: usize = 40;
/// Commits read at once when checking what landed since a lost race: the retry window is
/// as short as reading them allows.
const CONCURRENT_LOG_READS: usize = 16;

/// How old a file no commit references must be before `compact --vacuum-full` deletes it,
/// whatever the tombstone retention (`--retention-hours` may be 0): a writer may still
/// commit a file it wrote, so only files no live writer holds may go. Lambda writers commit
/// within 15 minutes; a grouped writer's manifest waits for its committer.
pub const UNREFERENCED_FILE_FLOOR_HOURS: i64 = 168;
/// Files a commit adds that were written longer ago than this are checked to still exist
/// before it lands (a HEAD each): a commit never references a file that is gone.
const CHECK_FILES_OLDER_THAN_MS: i64 = 3_600_000;

/// What a commit says about itself in `commitInfo.lakehouse`, for `history` and operators.
/// Every field is optional: each writer fills what applies to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitMetadata {
    /// Rows the commit appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// The application id of the writer (e.g. `lakehouse-ingest:<stream>/<shard>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sequence_number: Option<String>,
    /// The last `raw` version a staging merge consumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_version: Option<u64>,
    /// Set when the merge consumed only part of raw version `raw_version` (one commit too
    /// big for one merge): the first this-many of its files in path order, counting earlier
    /// merges of the same version. Versions before it are consumed whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_files_consumed: Option<u64>,
    /// The Delta table id of the `raw` that version belongs to: a `raw` recreated under
    /// `staging` has another id, and its version numbers mean nothing to `staging`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_table_id: Option<String>,
    /// Rows in the files the commit removed (a merge's rewritten files): the log's
    /// `remove` actions carry no row counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_removed: Option<u64>,
    /// Quarantined rows by reason (`Rejection::kind` of the ingest), so that `status` counts
    /// them from the log without reading a data file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<BTreeMap<String, u64>>,
    /// A staging merge's metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge: Option<serde_json::Value>,
    /// The keys ([`crate::keys::Key`], `[hi, lo]`) of the events an erasure removed from
    /// staging: the key index drops their entries next, and a rerun reads them here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_keys: Option<Vec<[i64; 2]>>,
    /// A grouped commit's writers' batches (one committer landing many writers' files):
    /// what each `txn` in the commit stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<Vec<BatchLineage>>,
    /// A typed table's mirror of staging: what it converted and rescued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typed: Option<TypedCommit>,
    /// A random id the commit path gives each commit: a try whose response was lost (the
    /// store's retry of the conditional write then finds the version taken) knows its own
    /// commit among the winners by it, and has landed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<String>,
}

/// One writer's batch in a grouped commit: its `txn` and the source range it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchLineage {
    /// The writer's app id, as in its `txn`.
    pub source: String,
    /// Its `txn` version.
    pub version: i64,
    pub records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sequence_number: Option<String>,
}

/// What a commit to a typed table did ([`crate::typed`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypedCommit {
    /// The staging version the table mirrors from this commit on.
    pub staging_version: u64,
    /// Rows in the files added.
    pub rows: u64,
    pub files_added: u64,
    pub files_removed: u64,
    /// Values that did not fit their column in the rows added, per payload field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rescued: BTreeMap<String, u64>,
    /// Columns the commit added, as `column type` (`amount double`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_added: Vec<String>,
}

impl CommitMetadata {
    /// Metadata of a commit that appended `records` rows.
    pub fn records(records: u64) -> CommitMetadata {
        CommitMetadata {
            records: Some(records),
            ..CommitMetadata::default()
        }
    }

    /// What a commit recorded, from its `commitInfo` fields; `None` when another writer
    /// made it (or it is unreadable).
    pub fn from_commit_info(info: &HashMap<String, serde_json::Value>) -> Option<CommitMetadata> {
        serde_json::from_value(info.get(METADATA_KEY)?.clone()).ok()
    }

    /// What a commit, given as its actions, recorded in its `commitInfo`.
    pub fn from_actions(actions: &[Action]) -> Option<CommitMetadata> {
        actions.iter().find_map(|action| match action {
            Action::CommitInfo(info) => CommitMetadata::from_commit_info(&info.info),
            _ => None,
        })
    }
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Committed {
    pub version: u64,
    /// Attempts lost to concurrent writers before this one won.
    pub retries: u64,
}

/// One commit being assembled.
#[derive(Debug)]
pub struct Commit {
    operation: DeltaOperation,
    actions: Vec<Action>,
    transactions: Vec<Transaction>,
    metadata: CommitMetadata,
    max_retries: usize,
    cleanup_expired_logs: Option<bool>,
    reads: Reads,
    /// Delete the files it adds when it certainly did not land.
    discard_on_loss: bool,
}

impl Commit {
    /// A commit of `actions` as `operation`.
    pub fn new(operation: DeltaOperation, actions: Vec<Action>) -> Commit {
        Commit {
            operation,
            actions,
            transactions: Vec::new(),
            metadata: CommitMetadata::default(),
            max_retries: DEFAULT_RETRIES,
            cleanup_expired_logs: None,
            reads: Reads::Nothing,
            discard_on_loss: true,
        }
    }

    /// A blind append of `adds` to `table`.
    pub fn append(table: &DeltaTable, adds: Vec<Add>) -> Result<Commit> {
        let partition_by = table.snapshot()?.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(partition_by),
            predicate: None,
        };
        let mut commit = Commit::new(operation, adds.into_iter().map(Action::Add).collect());
        commit.max_retries = APPEND_RETRIES;
        // Expired-log cleanup lists the whole `_delta_log` on every commit; appends are the
        // frequent commits, so they leave it to compaction's optimize and vacuum.
        commit.cleanup_expired_logs = Some(false);
        Ok(commit)
    }

    /// Records `txn` in the same commit: the data and the progress land together.
    pub fn with_transaction(mut self, txn: Transaction) -> Commit {
        self.transactions.push(txn);
        self
    }

    pub fn with_metadata(mut self, metadata: CommitMetadata) -> Commit {
        self.metadata = metadata;
        self
    }

    /// The commit was planned on the table's rows (a merge): a concurrent commit that
    /// changed data fails it, where a blind append or a rewrite would land on top.
    pub fn reading_table(mut self) -> Commit {
        self.reads = Reads::Table;
        self
    }

    /// The commit was planned on one range of the events only (a fanned-out merge):
    /// concurrent data changes outside it let it land. A key range's new files and its
    /// removes are tagged with it here, so that its siblings let this commit land too (and
    /// read only their own files): the tag is the commit's own doing, not a convention its
    /// callers keep. Carried files (rows staged before) keep the tag of the file they came
    /// from, if any: they may hold any range's events.
    pub fn reading_range(mut self, range: RunRange) -> Commit {
        self.reads = Reads::Range(range);
        if range.by() == SplitBy::Keys {
            let tag = (KEY_RANGE_TAG.to_string(), Some(range.name()));
            for action in &mut self.actions {
                let tags = match action {
                    Action::Add(a) if !is_carried(a) => &mut a.tags,
                    Action::Remove(r) => &mut r.tags,
                    _ => continue,
                };
                tags.get_or_insert_with(Default::default)
                    .insert(tag.0.clone(), tag.1.clone());
            }
        }
        self
    }

    /// The files the commit adds are not this process's alone (files handed over in
    /// manifests, which stay in their log for a later commit): they stay when it does not
    /// land.
    pub fn keeping_files(mut self) -> Commit {
        self.discard_on_loss = false;
        self
    }

    /// True when there is nothing to commit: no action and no transaction.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.transactions.is_empty()
    }

    /// Commits against the snapshot `table` holds: every commit that landed since is
    /// checked against what this one depends on (see the module docs). When it certainly
    /// did not land ([`LakeError::committed_nothing`]), the files it adds are deleted
    /// (unless [`Commit::keeping_files`]); any other failure may have landed, and they stay.
    pub async fn execute(mut self, table: &DeltaTable) -> Result<Committed> {
        self.metadata.commit_id = Some(uuid::Uuid::new_v4().to_string());
        let result = self.land(table).await;
        if let Err(e) = &result
            && e.committed_nothing()
            && self.discard_on_loss
        {
            // Owned, so no borrow of the actions is held across the deletes' awaits.
            let adds: Vec<Add> = self
                .actions
                .into_iter()
                .filter_map(|a| match a {
                    Action::Add(add) => Some(add),
                    _ => None,
                })
                .collect();
            discard_files(table, &adds).await;
        }
        result
    }

    async fn land(&self, table: &DeltaTable) -> Result<Committed> {
        check_old_files_exist(table, &self.actions).await?;
        let metadata = serde_json::to_value(&self.metadata)
            .map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
        let claims = Claims::new(&self.actions, &self.transactions, self.reads);
        // delta-rs may only try the version after its snapshot (0 retries): we check the
        // commits in between ourselves, then try again on top of them.
        let properties = CommitProperties::default()
            .with_metadata([(METADATA_KEY.to_string(), metadata)])
            .with_application_transactions(self.transactions.clone())
            .with_cleanup_expired_logs(self.cleanup_expired_logs)
            .with_max_retries(0);
        let mut base = table.clone();
        let mut retries = 0;
        loop {
            let attempt = CommitBuilder::from(properties.clone())
                .with_actions(self.actions.clone())
                .build(
                    Some(base.snapshot()?),
                    base.log_store(),
                    self.operation.clone(),
                )
                .await;
            match attempt {
                Ok(committed) => {
                    return Ok(Committed {
                        version: committed.version(),
                        retries,
                    });
                }
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(e.into()),
            }
            // What landed since: our own try among it (its response was lost, and the
            // store's retry found the version taken) has landed; a winner this commit
            // conflicts with fails it. Read even after the last try, so that a commit that
            // landed is never reported as one that did not (whose files would be deleted).
            let checked = base.version().unwrap_or(0);
            base.update_incremental(None).await?;
            let landed = checked + 1..=base.version().unwrap_or(0);
            let mut winners = pin!(commits_in(base.log_store(), landed, CONCURRENT_LOG_READS));
            while let Some((version, winner)) = winners.try_next().await? {
                let winner = winner.unwrap_or_default();
                if CommitMetadata::from_actions(&winner).is_some_and(|m| {
                    m.commit_id.is_some() && m.commit_id == self.metadata.commit_id
                }) {
                    return Ok(Committed { version, retries });
                }
                if let Some(reason) = claims.conflict_with(&winner) {
                    return Err(LakeError::Conflict { version, reason });
                }
            }
            if retries >= self.max_retries as u64 {
                return Err(LakeError::Contended {
                    attempts: retries + 1,
                });
            }
            retries += 1;
        }
    }
}

/// Fails, before anything is committed, when a file the commit adds was written over an
/// hour ago and no longer exists (a `--vacuum-full` with a floor shorter than
/// [`UNREFERENCED_FILE_FLOOR_HOURS`] run by another tool, a hand-deleted file).
async fn check_old_files_exist(table: &DeltaTable, actions: &[Action]) -> Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    // Owned, so the checks hold no borrow across their awaits (commits run on any thread).
    let old: Vec<(String, i64)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Add(add) if now - add.modification_time > CHECK_FILES_OLDER_THAN_MS => {
                Some((add.path.clone(), add.modification_time))
            }
            _ => None,
        })
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let store = table.object_store();
    let mut heads = futures::stream::iter(old)
        .map(|(path, written)| {
            let store = store.clone();
            async move {
                let found = store.head(&object_path(&path)).await;
                (path, written, found)
            }
        })
        .buffer_unordered(CONCURRENT_LOG_READS);
    while let Some((path, written, found)) = heads.next().await {
        match found {
            Ok(_) => {}
            Err(deltalake::ObjectStoreError::NotFound { .. }) => {
                return Err(LakeError::FileGone {
                    path,
                    hours: (now - written) / 3_600_000,
                });
            }
            Err(e) => {
                return Err(LakeError::ReadFile {
                    path,
                    error: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// delta-rs with 0 retries reports a newer table version, or a version taken between its
/// look and its write, as having run out of attempts.
fn lost_race(error: &deltalake::DeltaTableError) -> bool {
    matches!(
        error,
        deltalake::DeltaTableError::Transaction {
            source: TransactionError::MaxCommitAttempts(_)
        } | deltalake::DeltaTableError::VersionAlreadyExists(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_commit_info_and_omits_what_is_unset() {
        let metadata = CommitMetadata {
            raw_version: Some(7),
            rows_removed: Some(12),
            ..CommitMetadata::default()
        };
        let value = serde_json::to_value(&metadata).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"rawVersion": 7, "rowsRemoved": 12})
        );
        let info = HashMap::from([(METADATA_KEY.to_string(), value)]);
        assert_eq!(CommitMetadata::from_commit_info(&info), Some(metadata));
        assert_eq!(CommitMetadata::from_commit_info(&HashMap::new()), None);
    }
}
