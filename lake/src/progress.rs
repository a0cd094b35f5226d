//! How far compaction has consumed raw, as Delta `txn`s, read by compaction (where a run
//! starts, what maintenance may rewrite) and by `status` (the lag) alike. Each kind of run records what it
//! consumed in staging under its own app id: the whole-table run, or each of N ranges of
//! event types or of keys. Kinds (a split and its N) may take turns (N changes, types give
//! way to keys, ranges give way to one run and back), so no kind's own record is the whole
//! truth; two facts make them safe together:
//!
//! - **A run starts from the most any record says of its events** ([`start`]): its own,
//!   the whole-table run's, the least of the last other kind of ranges that merged, or what
//!   every kind has consumed ([`everywhere_app_id`]). Each is a version up to which its
//!   events are in staging, so a run never re-reads what another kind merged and never
//!   skips anything.
//! - **Raw files are removed only behind what every kind has consumed.** Maintenance
//!   rewrites only raw files of versions at or below [`consumed_everywhere`], and records
//!   that version in raw, in the same commit that removes them. A kind that lagged, or was
//!   given up, starts after it, so no run of any kind needs a file that vacuum may delete.
//!   No kind has to be retired by hand.

use deltalake::DeltaTable;

use crate::app_ids::{
    STAGING_APP_ID, everywhere_app_id, range_of_app_id, staging_app_id, sweep_app_id,
};
use crate::commit::CommitMetadata;
use crate::error::Result;
use crate::log::{commit_actions, txn_u64};
use crate::ranges::RunRange;

/// A raw version consumed, and whose record says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub version: u64,
    pub app_id: String,
    /// The record covers all of the run's types in the next version too, as far as that
    /// app id's last merge says it got into it (a commit too big for one merge): its own,
    /// or the whole-table run's.
    pub partial_applies: bool,
}

/// Where a run over `range` goes on from: the greatest version any record says its types
/// are consumed to; `None` when nothing says anything (a first run).
pub async fn start(
    raw: &DeltaTable,
    staging: &DeltaTable,
    range: Option<RunRange>,
) -> Result<Option<Progress>> {
    let own = staging_app_id(range);
    let mut best: Option<Progress> = None;
    // Offered in order of preference: on a tie the earlier, which knows more, stays.
    let mut offer = |version: Option<u64>, app_id: String, partial_applies: bool| {
        if let Some(version) = version
            && best.as_ref().is_none_or(|b| version > b.version)
        {
            best = Some(Progress {
                version,
                app_id,
                partial_applies,
            });
        }
    };
    offer(txn_u64(staging, &own).await?, own.clone(), true);
    if range.is_some() {
        offer(
            txn_u64(staging, STAGING_APP_ID).await?,
            STAGING_APP_ID.into(),
            true,
        );
    }
    // The last other kind of ranges that merged (its least may be past this range's own
    // progress, or this range may have none: a new kind's first runs).
    if let Some(kind) = last_other_kind(staging, range).await? {
        offer(
            least_of(staging, kind).await?,
            staging_app_id(Some(kind)),
            false,
        );
    }
    let everywhere = everywhere_app_id(&table_id(staging)?);
    offer(txn_u64(raw, &everywhere).await?, everywhere, false);
    Ok(best)
}

/// The raw version every kind of run has consumed into `staging`, as far as the records
/// tell: the greatest of what raw recorded of it, the whole-table run's progress, the least
/// of the ranges that merged last and, when given, the least of `also`'s ranges (a
/// maintainer's own kind). `None` when none of them has consumed anything.
pub async fn consumed_everywhere(
    raw: &DeltaTable,
    staging: &DeltaTable,
    also: Option<RunRange>,
) -> Result<Option<u64>> {
    let recorded = txn_u64(raw, &everywhere_app_id(&table_id(staging)?)).await?;
    let whole = txn_u64(staging, STAGING_APP_ID).await?;
    let mut most = recorded.max(whole);
    for kind in [last_kind(staging).await?, also].into_iter().flatten() {
        most = most.max(least_of(staging, kind).await?);
    }
    Ok(most)
}

/// The kind of ranges staging's last merge came from; `None` when it was the whole-table
/// run's (or no merge is near the head).
async fn last_kind(staging: &DeltaTable) -> Result<Option<RunRange>> {
    Ok(last_merge(staging, None)
        .await?
        .and_then(|m| m.source)
        .and_then(|app_id| range_of_app_id(&app_id)))
}

/// The kind of ranges of staging's last merge by another kind than `range`'s; `None` when
/// that merge was the whole-table run's (whose own record says more), or none is near.
async fn last_other_kind(
    staging: &DeltaTable,
    range: Option<RunRange>,
) -> Result<Option<RunRange>> {
    let other = |app_id: &str| match (range_of_app_id(app_id), range) {
        (Some(kind), Some(ours)) => !kind.same_kind(ours),
        (Some(_), None) | (None, Some(_)) => true,
        (None, None) => false,
    };
    Ok(last_merge_by(staging, other)
        .await?
        .and_then(|m| m.source)
        .and_then(|app_id| range_of_app_id(&app_id)))
}

/// Each range of the kind staging's last merge came from, with the raw version it has
/// consumed (`None`: nothing yet); empty when the whole-table run merged last. Which of N
/// ranges holds the lag back.
pub async fn ranges_consumed(staging: &DeltaTable) -> Result<Vec<(RunRange, Option<u64>)>> {
    let Some(kind) = last_kind(staging).await? else {
        return Ok(Vec::new());
    };
    let mut ranges = Vec::new();
    for range in kind.siblings() {
        ranges.push((range, txn_u64(staging, &staging_app_id(Some(range))).await?));
    }
    Ok(ranges)
}

/// What every range of `kind`'s count has consumed: the least of them; `None` while one of
/// them has merged nothing.
pub async fn least_of(staging: &DeltaTable, kind: RunRange) -> Result<Option<u64>> {
    let mut least = u64::MAX;
    for range in kind.siblings() {
        match txn_u64(staging, &staging_app_id(Some(range))).await? {
            Some(v) => least = least.min(v),
            None => return Ok(None),
        }
    }
    Ok(Some(least))
}

fn table_id(table: &DeltaTable) -> Result<String> {
    Ok(table.snapshot()?.metadata().id().to_string())
}

/// The staging version the last sweep of `staging` swept, if any.
pub async fn last_sweep(staging: &DeltaTable) -> Result<Option<u64>> {
    txn_u64(staging, &sweep_app_id(&table_id(staging)?)).await
}

/// Staging commits read back at most to find the last merge. Each run adds only a few
/// other commits (optimize, vacuum start and end), so the last merge is near the head.
const LOOKBACK: u64 = 1000;

/// What staging's most recent merge by `app_id` (by any run: `None`) recorded about itself
/// (the raw table id among it); `None` when its log no longer reaches back to one. Merges
/// from before merges named themselves are the whole-table run's (`STAGING_APP_ID`).
pub async fn last_merge(
    staging: &DeltaTable,
    app_id: Option<&str>,
) -> Result<Option<CommitMetadata>> {
    last_merge_by(staging, |source| app_id.is_none_or(|id| source == id)).await
}

/// Staging's most recent merge by a run whose app id `by` accepts.
pub async fn last_merge_by(
    staging: &DeltaTable,
    by: impl Fn(&str) -> bool,
) -> Result<Option<CommitMetadata>> {
    let log_store = staging.log_store();
    let head = staging.version().unwrap_or(0);
    for version in (head.saturating_sub(LOOKBACK)..=head).rev() {
        let Some(actions) = commit_actions(log_store.as_ref(), version).await? else {
            break;
        };
        if let Some(merge) = CommitMetadata::from_actions(&actions)
            && merge.raw_version.is_some()
            && by(merge.source.as_deref().unwrap_or(STAGING_APP_ID))
        {
            return Ok(Some(merge));
        }
    }
    Ok(None)
}
