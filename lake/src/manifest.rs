//! Grouped commits: writers hand over *manifests* — the files of one batch and the
//! progress they stand for — and one committer per table lands many of them in a single
//! Delta commit, carrying every writer's `txn`. This is that commit: which manifests are
//! new, which are already in the table, and which must wait for an earlier one. Where the
//! manifests come from is [`crate::manifest_log`]; the committer's loop is
//! `lakehouse_ingest::committer`.
//!
//! Per writer (app id), versions run 1, 2, 3, …: a manifest commits only when every lower
//! version of its writer is in the table, so a late or reordered manifest waits rather than
//! being skipped later as "already covered". Duplicates (a channel's redelivery, a committer
//! restarted before its acknowledgement) are recognised by version and commit nothing.

use std::collections::{BTreeMap, HashMap};

use crate::commit::{BatchLineage, Commit, CommitMetadata, Committed};
use deltalake::DeltaTable;
use deltalake::kernel::{Add, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One stored manifest's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestKey {
    pub app_id: String,
    pub version: i64,
}

/// One writer's batch for one table: its files, not yet committed, and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The writer's Delta `txn` app id (e.g. `lakehouse-ingest:<stream>/<shard>`).
    pub app_id: String,
    /// The writer's batch number: its `txn` version once committed.
    pub version: i64,
    pub adds: Vec<Add>,
    pub records: u64,
    /// The source range the batch covers (Kinesis sequence numbers), for lineage.
    pub first_sequence_number: Option<String>,
    pub last_sequence_number: Option<String>,
    /// Quarantined rows by reason kind (empty for raw); absent in older manifests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, u64>,
}

impl Manifest {
    pub fn key(&self) -> ManifestKey {
        ManifestKey {
            app_id: self.app_id.clone(),
            version: self.version,
        }
    }

    fn lineage(&self) -> BatchLineage {
        BatchLineage {
            source: self.app_id.clone(),
            version: self.version,
            records: self.records,
            first_sequence_number: self.first_sequence_number.clone(),
            last_sequence_number: self.last_sequence_number.clone(),
        }
    }
}

/// What the committer made of a set of manifests.
#[derive(Debug, Default)]
pub struct Grouped {
    /// The commit, when anything was new.
    pub committed: Option<Committed>,
    /// Manifests that went into it.
    pub landed: Vec<ManifestKey>,
    /// Their rows.
    pub records: u64,
    /// Manifests the table already held (or copies of one that just landed).
    pub already: usize,
    /// Manifests behind a missing earlier version of their writer: hand them over again.
    pub waiting: Vec<Manifest>,
}

/// Commits every manifest that is next in line for its writer, in one commit carrying each
/// writer's highest landed version as its `txn`. `committed` holds each writer's `txn`
/// version in `table`'s snapshot (a writer missing from it has none). A concurrent commit
/// of the same writers fails it (the lake's commit rules), having committed nothing.
pub async fn commit_manifests(
    table: &DeltaTable,
    committed: &HashMap<String, i64>,
    manifests: Vec<Manifest>,
) -> Result<Grouped> {
    let mut by_writer: BTreeMap<String, BTreeMap<i64, Manifest>> = BTreeMap::new();
    let mut grouped = Grouped::default();
    for manifest in manifests {
        let versions = by_writer.entry(manifest.app_id.clone()).or_default();
        match versions.entry(manifest.version) {
            // A redelivered copy: the first one stands.
            std::collections::btree_map::Entry::Occupied(_) => grouped.already += 1,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(manifest);
            }
        }
    }
    let mut landed: Vec<Manifest> = Vec::new();
    let mut transactions = Vec::new();
    for (app_id, versions) in by_writer {
        let before = landed.len();
        let mut next = committed.get(&app_id).copied().unwrap_or(0) + 1;
        for (version, manifest) in versions {
            if version < next {
                grouped.already += 1;
            } else if version == next {
                landed.push(manifest);
                next += 1;
            } else {
                grouped.waiting.push(manifest);
            }
        }
        if landed.len() > before {
            transactions.push(Transaction::new(&app_id, next - 1));
        }
    }
    if landed.is_empty() {
        return Ok(grouped);
    }
    grouped.records = landed.iter().map(|m| m.records).sum();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (kind, n) in landed.iter().flat_map(|m| &m.reasons) {
        *reasons.entry(kind.clone()).or_default() += n;
    }
    let metadata = CommitMetadata {
        records: Some(grouped.records),
        reasons: (!reasons.is_empty()).then_some(reasons),
        batches: Some(landed.iter().map(Manifest::lineage).collect()),
        ..CommitMetadata::default()
    };
    let adds: Vec<Add> = landed.iter().flat_map(|m| m.adds.iter().cloned()).collect();
    // The files are the writers': a manifest that does not land here stays in its log.
    let mut commit = Commit::append(table, adds)?
        .with_metadata(metadata)
        .keeping_files();
    for txn in transactions {
        commit = commit.with_transaction(txn);
    }
    grouped.committed = Some(commit.execute(table).await?);
    grouped.landed = landed.iter().map(Manifest::key).collect();
    Ok(grouped)
}
