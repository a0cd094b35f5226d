//! A table's committer in grouped mode: reads manifests from the table's
//! [`ManifestLog`], lands every one the table lacks in one commit
//! ([`commit_manifests`]), then forgets the committed ones but each writer's latest.
//!
//! Run exactly one per table (the committer Lambda, reserved concurrency 1). A
//! second one is safe, not useful: two commits advancing one writer's `txn` conflict in the
//! lake's commit rules, and the loser commits nothing and tries again next round.
//!
//! A committer kept warm knows each writer's committed `txn` version without asking
//! Delta: it looks a writer up once (a log replay) and then follows the log, reading each
//! new commit once. A crash loses only that cache.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::kernel::Action;
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::Committed;
use lakehouse_lake::log::{commit_actions, txn_version};

use crate::error::Result;
use crate::manifest::{Manifest, commit_manifests};
use crate::manifest_log::{ManifestKey, ManifestLog};

/// Versions missing before a writer's notified ones that a round reads from the log.
const MAX_GAP: i64 = 1_000;

/// Concurrent reads of manifests and of writers' `txn` versions.
const READ_CONCURRENCY: usize = 32;

pub struct Committer {
    table: DeltaTable,
    log: Arc<dyn ManifestLog>,
    /// Writers' `txn` versions at the table version `table` holds.
    committed: HashMap<String, i64>,
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Round {
    /// The commit, when anything was new.
    pub committed: Option<Committed>,
    /// Manifests landed, their rows, and the writers they came from.
    pub landed: Vec<ManifestKey>,
    pub records: u64,
    pub writers: usize,
    /// Manifests found already in the table (e.g. a round that crashed after committing).
    pub already: usize,
    /// Manifests behind a missing earlier version of their writer.
    pub waiting: usize,
}

impl Committer {
    pub fn new(table: DeltaTable, log: Arc<dyn ManifestLog>) -> Committer {
        Committer {
            table,
            log,
            committed: HashMap::new(),
        }
    }

    /// Commits every manifest in the log that the table lacks.
    pub async fn commit_pending(&mut self) -> Result<Round> {
        let keys = self.log.keys().await?;
        self.commit_keys(keys).await
    }

    /// Commits the manifests `keys` name that the table lacks (a channel's notification),
    /// then forgets those it holds but each writer's latest.
    pub async fn commit_keys(&mut self, keys: Vec<ManifestKey>) -> Result<Round> {
        self.follow_log().await?;
        let writers: HashSet<String> = keys.iter().map(|k| k.app_id.clone()).collect();
        self.look_up(writers).await?;
        // Owned items and moved handles throughout: the futures stay `Send` for any caller.
        let mut new: Vec<ManifestKey> = keys
            .iter()
            .filter(|k| k.version > self.version_of(&k.app_id))
            .cloned()
            .collect();
        let already = keys.len() - new.len();
        // A notification that skips versions (one lost, or filtered out upstream) must not
        // strand the later ones: the versions in between are read from the log too.
        let mut lowest: HashMap<String, i64> = HashMap::new();
        for key in &new {
            let v = lowest.entry(key.app_id.clone()).or_insert(key.version);
            *v = (*v).min(key.version);
        }
        for (app_id, lowest) in lowest {
            let missing = self.version_of(&app_id) + 1..lowest;
            if missing.end - missing.start > MAX_GAP {
                continue; // not a lost notification: leave them waiting, reported
            }
            new.extend(missing.map(|version| ManifestKey {
                app_id: app_id.clone(),
                version,
            }));
        }
        let manifests: Vec<Manifest> = futures::stream::iter(new)
            .map(|key| {
                let log = self.log.clone();
                async move { log.get(&key).await }
            })
            .buffered(READ_CONCURRENCY)
            .try_filter_map(|m| async move { Ok(m) })
            .try_collect()
            .await?;
        let grouped = commit_manifests(&self.table, &self.committed, manifests).await?;
        let mut round = Round {
            committed: grouped.committed,
            already: already + grouped.already,
            waiting: grouped.waiting.len(),
            ..Round::default()
        };
        let mut landed_writers = HashSet::new();
        for key in &grouped.landed {
            let version = self.committed.entry(key.app_id.clone()).or_insert(0);
            *version = (*version).max(key.version);
            landed_writers.insert(key.app_id.as_str());
        }
        round.writers = landed_writers.len();
        round.records = grouped.records;
        round.landed = grouped.landed;
        self.forget_committed(&keys).await?;
        Ok(round)
    }

    fn version_of(&self, app_id: &str) -> i64 {
        self.committed.get(app_id).copied().unwrap_or(0)
    }

    /// Brings the table up to date and applies the `txn`s of every commit since.
    async fn follow_log(&mut self) -> Result<()> {
        let before = self.table.version();
        self.table.update_incremental(None).await?;
        let (Some(before), Some(now)) = (before, self.table.version()) else {
            self.committed.clear();
            return Ok(());
        };
        for version in before + 1..=now {
            let Some(actions) = commit_actions(self.table.log_store().as_ref(), version).await?
            else {
                // The log no longer holds it: look every writer up again.
                self.committed.clear();
                return Ok(());
            };
            for action in actions {
                if let Action::Txn(txn) = action
                    && let Some(known) = self.committed.get_mut(&txn.app_id)
                {
                    *known = (*known).max(txn.version);
                }
            }
        }
        Ok(())
    }

    /// Looks up the `txn` version of writers not followed yet.
    async fn look_up(&mut self, writers: HashSet<String>) -> Result<()> {
        let unknown: Vec<String> = writers
            .into_iter()
            .filter(|w| !self.committed.contains_key(w))
            .collect();
        let table = &self.table;
        let found: Vec<(String, i64)> = futures::stream::iter(unknown)
            .map(|app_id| async move {
                let version = txn_version(table, &app_id).await?.unwrap_or(0);
                Ok::<_, crate::IngestError>((app_id, version))
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        self.committed.extend(found);
        Ok(())
    }

    /// Deletes manifests the table holds, keeping each writer's latest: its checkpoint.
    /// Every writer the round saw is swept below its committed version, so what a crashed
    /// round left behind goes the next time the writer hands something over.
    async fn forget_committed(&self, keys: &[ManifestKey]) -> Result<()> {
        let writers: HashSet<&str> = keys.iter().map(|k| k.app_id.as_str()).collect();
        let stale: Vec<(String, i64)> = writers
            .into_iter()
            .map(|app_id| (app_id.to_string(), self.version_of(app_id)))
            .filter(|(_, committed)| *committed > 1)
            .collect();
        futures::stream::iter(stale)
            .map(|(app_id, below)| {
                let log = self.log.clone();
                async move { log.forget(&app_id, below).await }
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}
