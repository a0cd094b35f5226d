//! What quarantine took in the window, by reason, from the counts each ingest commit records.

use std::collections::BTreeMap;
use std::pin::pin;

use deltalake::DeltaTable;
use futures::TryStreamExt;
use lakehouse_lake::CommitMetadata;
use lakehouse_lake::log::commits_in;

use crate::error::Result;

use super::lag::CONCURRENT_READS;
use super::tables::{committed_at, rows_added};
use super::types::{QuarantineWindow, StatusOptions};

/// Quarantine commits read at most, newest first, to count the window's rejections.
const QUARANTINE_COMMITS_READ: u64 = 10_000;

pub(super) async fn quarantine_window(
    quarantine: &DeltaTable,
    options: &StatusOptions,
) -> Result<QuarantineWindow> {
    let since = options.now - options.quarantine_window;
    let mut window = QuarantineWindow {
        hours: options.quarantine_window.num_hours(),
        rows: 0,
        by_reason: BTreeMap::new(),
        unrecorded: 0,
    };
    let head = quarantine.version().unwrap_or(0);
    let oldest = head.saturating_sub(QUARANTINE_COMMITS_READ - 1);
    let mut commits = pin!(commits_in(
        quarantine.log_store(),
        (oldest..=head).rev(),
        CONCURRENT_READS
    ));
    while let Some((_, actions)) = commits.try_next().await? {
        let Some(actions) = actions else { break };
        if committed_at(&actions).is_some_and(|at| at < since) {
            break;
        }
        let rows = rows_added(&actions);
        let metadata = CommitMetadata::from_actions(&actions);
        match metadata.as_ref().and_then(|m| m.reasons.as_ref()) {
            Some(reasons) if rows > 0 => {
                for (kind, n) in reasons {
                    *window.by_reason.entry(kind.clone()).or_default() += n;
                    window.rows += n;
                }
            }
            _ => {
                window.rows += rows;
                window.unrecorded += rows;
            }
        }
    }
    Ok(window)
}
