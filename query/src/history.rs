//! A table's versions, newest first, from its Delta log: what each commit did.

use deltalake::DeltaTable;
use deltalake::kernel::Action;
use lakehouse_lake::CommitMetadata;
use lakehouse_lake::files::rows_of;
use lakehouse_lake::log::commit_actions;
use serde::Serialize;

use crate::error::Result;
use crate::output::iso_utc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub version: u64,
    /// ISO 8601 UTC commit time.
    pub timestamp: Option<String>,
    pub operation: String,
    pub rows_added: u64,
    /// `None` where the log does not say (a removal by another engine).
    pub rows_removed: Option<u64>,
    pub files_added: u64,
    pub files_removed: u64,
}

/// The newest `limit` versions of `table` still in its log, newest first.
pub async fn table_history(table: &DeltaTable, limit: usize) -> Result<Vec<HistoryEntry>> {
    let log_store = table.log_store();
    let latest = table.version().unwrap_or(0);
    let mut entries = Vec::new();
    for version in (0..=latest).rev().take(limit) {
        // Commits older than the log retention are gone: history ends there.
        let Some(actions) = commit_actions(log_store.as_ref(), version).await? else {
            break;
        };
        entries.push(entry(version, &actions));
    }
    Ok(entries)
}

fn entry(version: u64, actions: &[Action]) -> HistoryEntry {
    let mut e = HistoryEntry {
        version,
        timestamp: None,
        operation: String::new(),
        rows_added: 0,
        rows_removed: Some(0),
        files_added: 0,
        files_removed: 0,
    };
    let mut recorded_removed = None;
    for action in actions {
        match action {
            Action::CommitInfo(info) => {
                e.timestamp = info.timestamp.map(|ms| iso_utc(ms * 1000));
                e.operation = info.operation.clone().unwrap_or_default();
                recorded_removed =
                    CommitMetadata::from_commit_info(&info.info).and_then(|m| m.rows_removed);
            }
            Action::Add(add) => {
                e.files_added += 1;
                e.rows_added += rows_of(add).unwrap_or(0);
            }
            Action::Remove(_) => e.files_removed += 1,
            _ => {}
        }
    }
    if e.files_removed > 0 {
        e.rows_removed = match (recorded_removed, e.operation.as_str()) {
            (Some(n), _) => Some(n),
            // Bin-packing rewrites the same rows into fewer files.
            (None, "OPTIMIZE") => Some(e.rows_added),
            _ => None,
        };
    }
    e
}
