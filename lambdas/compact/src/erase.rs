//! The erasure requests on AWS: the compaction Lambda's `{"erase": {}}` event, sent hourly
//! by the rule `erasure` (Terraform `erasure_schedule`). It processes every request
//! waiting under `<lake>/_lakehouse/erasure-requests/` ([`lakehouse_erase::requests`]).
//! No lease: an erasure and a compaction that race for the same files are ordered by the
//! commit rules, and the loser plans again.

use anyhow::Result;
use lakehouse_erase::requests::{Queue, process, waiting};
use lakehouse_lake::Lake;
use serde_json::{Value, json};

/// What a run found waiting, before it processed them: the metrics `ErasuresPending` and
/// `ErasureOldestPendingSeconds` (a request that keeps failing keeps aging).
pub struct Waiting {
    pub pending: u64,
    pub oldest_age_seconds: u64,
}

/// Reads the queue, hands its figures to `report`, then erases every request waiting.
pub async fn handle_erase(lake: &Lake, report: impl FnOnce(&Waiting)) -> Result<Value> {
    let requests = waiting(lake).await?;
    let queue = Queue::of(&requests);
    report(&Waiting {
        pending: queue.pending.len() as u64,
        oldest_age_seconds: queue.oldest_age_seconds.unwrap_or(0).max(0) as u64,
    });
    let receipts = process(lake, requests).await?;
    let done: Vec<Value> = receipts
        .iter()
        .map(|r| {
            json!({
                "request_id": r.request_id,
                "rows_removed": r.rows_removed,
                "files_purged": r.files_purged,
                "residue_rows": r.residue_rows,
                "requested_at": r.requested_at,
                "completed_at": r.completed_at,
            })
        })
        .collect();
    Ok(json!({ "status": "erased", "requests": done }))
}
