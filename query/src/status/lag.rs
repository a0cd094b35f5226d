//! How far staging is behind raw, from raw's log.

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::kernel::Action;
use futures::TryStreamExt;
use lakehouse_lake::log::commits_in;

use lakehouse_lake::progress::{consumed_everywhere, last_merge, ranges_consumed};

use crate::error::Result;

use super::tables::{committed_at, rows_added};
use super::types::{CompactionLag, RangeConsumed};

/// Raw commits read at most to count the rows staging has not taken yet; past it the count
/// is extrapolated from those read.
const LAG_COMMITS_READ: u64 = 1_000;
pub(super) const CONCURRENT_READS: usize = 16;

pub(super) async fn compaction_lag(
    raw: &DeltaTable,
    staging: &DeltaTable,
    now: DateTime<Utc>,
) -> Result<CompactionLag> {
    // What every kind of run has consumed: a range that lags, or a kind given up, shows.
    let consumed = consumed_everywhere(raw, staging, None).await?;
    let mut lag = lag_after(raw, consumed, now).await?;
    lag.ranges = ranges_consumed(staging)
        .await?
        .into_iter()
        .map(|(range, consumed)| RangeConsumed {
            range: range.to_string(),
            consumed,
        })
        .collect();
    let raw_id = raw.snapshot()?.metadata().id().to_string();
    let recorded = last_merge(staging, None)
        .await?
        .and_then(|m| m.raw_table_id);
    if let Some(recorded) = recorded
        && recorded != raw_id
    {
        lag.problem = Some(format!(
            "staging was built from raw table {recorded} but raw is now table {raw_id} \
             (recreated): compaction refuses to run until one of them is rebuilt"
        ));
    }
    Ok(lag)
}

pub(super) async fn lag_after(
    raw: &DeltaTable,
    consumed: Option<u64>,
    now: DateTime<Utc>,
) -> Result<CompactionLag> {
    let head = raw.version().unwrap_or(0);
    let from = consumed.map_or(0, |c| c + 1);
    let mut lag = CompactionLag {
        raw_version: head,
        consumed,
        commits_behind: 0,
        rows_behind: 0,
        rows_behind_exact: true,
        oldest_unconsumed_at: None,
        lag_seconds: 0,
        problem: None,
        ranges: Vec::new(),
    };
    if from > head {
        return Ok(lag);
    }
    let read_to = head.min(from + LAG_COMMITS_READ - 1);
    let commits: Vec<(u64, Option<Vec<Action>>)> =
        commits_in(raw.log_store(), from..=read_to, CONCURRENT_READS)
            .try_collect()
            .await?;
    let (mut rows, mut data_commits) = (0u64, 0u64);
    for (_, actions) in &commits {
        // A commit gone from the log: compaction fails on it (MissingRawCommit) anyway.
        let Some(actions) = actions else { continue };
        let added = rows_added(actions);
        if added == 0 {
            continue;
        }
        rows += added;
        data_commits += 1;
        if lag.oldest_unconsumed_at.is_none() {
            lag.oldest_unconsumed_at = committed_at(actions);
        }
    }
    let (read, total) = (commits.len() as u64, head + 1 - from);
    lag.rows_behind_exact = read == total;
    if lag.rows_behind_exact {
        lag.commits_behind = data_commits;
        lag.rows_behind = rows;
    } else {
        // Unread commits are taken as data commits of the read ones' average size.
        lag.commits_behind = data_commits + (total - read);
        lag.rows_behind = rows + rows / data_commits.max(1) * (total - read);
    }
    lag.lag_seconds = lag
        .oldest_unconsumed_at
        .map_or(0, |at| (now - at).num_seconds().max(0));
    Ok(lag)
}
