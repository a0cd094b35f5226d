//! Each table's files, last commit and how far back time travel reaches.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::Path;
use deltalake::kernel::Action;
use futures::TryStreamExt;
use lakehouse_lake::app_ids::VACUUMED_BEFORE_APP_ID;
use lakehouse_lake::files::{live_files, rows_of};
use lakehouse_lake::log::{commit_actions, txn_version};
use lakehouse_lake::{CommitMetadata, LakeError, Table};

use lakehouse_lake::lake::deleted_file_retention;

use crate::error::Result;

use super::types::{StatusOptions, TableStatus};

pub(super) async fn table_status(
    table: Table,
    delta: Option<&DeltaTable>,
    options: &StatusOptions,
) -> Result<TableStatus> {
    let mut status = TableStatus {
        table: table.name(),
        version: None,
        last_commit_at: None,
        last_operation: None,
        files: 0,
        bytes: 0,
        small_files: 0,
        partitions: 0,
        oldest_version: None,
        oldest_version_at: None,
        retention_hours: None,
        time_travel_from: None,
    };
    let Some(delta) = delta else {
        return Ok(status);
    };
    let version = delta.version();
    status.version = version;
    if let Some(version) = version
        && let Some(actions) = commit_actions(delta.log_store().as_ref(), version).await?
    {
        status.last_commit_at = committed_at(&actions);
        status.last_operation = commit_info(&actions).and_then(|i| i.operation.clone());
    }
    let files = live_files(delta)?;
    let mut partitions = HashSet::new();
    for add in &files {
        let size = u64::try_from(add.size).unwrap_or(0);
        status.files += 1;
        status.bytes += size;
        status.small_files += u64::from(size < options.small_file_bytes);
        let mut key: Vec<(&String, &Option<String>)> = add.partition_values.iter().collect();
        key.sort();
        partitions.insert(format!("{key:?}"));
    }
    status.partitions = partitions.len() as u64;

    let retention = deleted_file_retention(delta)?;
    status.retention_hours = Some(retention.num_hours());
    // A vacuum that ran with a shorter retention recorded from when versions are whole.
    let vacuumed_before = txn_version(delta, VACUUMED_BEFORE_APP_ID)
        .await?
        .and_then(DateTime::from_timestamp_millis);
    if let Some((oldest, at)) = oldest_version(delta).await? {
        status.oldest_version = Some(oldest);
        status.oldest_version_at = at;
        let kept_from = (options.now - retention).max(vacuumed_before.unwrap_or_default());
        status.time_travel_from = Some(at.map_or(kept_from, |at| at.max(kept_from)));
    }
    Ok(status)
}

/// The oldest version the log can be read at, and when it was made: version 0 while its
/// commit is there, else the oldest checkpoint. Log files list in version order, so this
/// reads the first page of the listing only.
async fn oldest_version(delta: &DeltaTable) -> Result<Option<(u64, Option<DateTime<Utc>>)>> {
    let store = delta.log_store().object_store(None);
    let mut listing = store.list(Some(&Path::from("_delta_log")));
    let unreadable = |e: deltalake::ObjectStoreError| LakeError::ReadFile {
        path: format!("{}_delta_log/", delta.table_url()),
        error: e.to_string(),
    };
    while let Some(meta) = listing.try_next().await.map_err(unreadable)? {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        let Some((digits, rest)) = name.split_once('.') else {
            continue;
        };
        let Ok(version) = digits.parse::<u64>() else {
            continue;
        };
        let readable_from = (version == 0 && rest == "json") || rest.starts_with("checkpoint.");
        if readable_from {
            let at = match commit_actions(delta.log_store().as_ref(), version).await? {
                Some(actions) => committed_at(&actions),
                None => Some(meta.last_modified),
            };
            return Ok(Some((version, at)));
        }
    }
    Ok(None)
}

pub(super) fn commit_info(actions: &[Action]) -> Option<&deltalake::kernel::CommitInfo> {
    actions.iter().find_map(|a| match a {
        Action::CommitInfo(info) => Some(info),
        _ => None,
    })
}

/// When a commit was made, by its `commitInfo`.
pub(super) fn committed_at(actions: &[Action]) -> Option<DateTime<Utc>> {
    commit_info(actions)
        .and_then(|i| i.timestamp)
        .and_then(DateTime::from_timestamp_millis)
}

/// Rows a commit added as new data: what it recorded, else its files' statistics. An
/// optimize's rewrites (`dataChange: false`) add none.
pub(super) fn rows_added(actions: &[Action]) -> u64 {
    let adds_data = actions
        .iter()
        .any(|a| matches!(a, Action::Add(add) if add.data_change));
    if !adds_data {
        return 0;
    }
    if let Some(records) = CommitMetadata::from_actions(actions).and_then(|m| m.records) {
        return records;
    }
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Add(add) => rows_of(add),
            _ => None,
        })
        .sum()
}
