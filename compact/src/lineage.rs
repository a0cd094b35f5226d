//! Which `raw` table `staging` was built from. Each staging merge records the Delta table id
//! of the `raw` it consumed; a `raw` recreated under `staging` has another id, and consuming
//! it from the version staging recorded would silently skip its first versions.

use deltalake::DeltaTable;
use lakehouse_lake::CommitMetadata;
use lakehouse_lake::app_ids::STAGING_APP_ID;
use lakehouse_lake::log::commit_actions;

use crate::error::{CompactError, Result};

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

/// Fails when `raw` (table id `found`, at version `head`) is not the table staging consumed
/// up to version `consumed`, by what its `last_merge` recorded: another table id, or (where
/// no id was recorded) fewer versions than staging consumed.
pub fn check_same_raw(
    last_merge: Option<&CommitMetadata>,
    (found, head): (&str, u64),
    consumed: u64,
) -> Result<()> {
    let expected = last_merge.and_then(|m| m.raw_table_id.clone());
    let replaced = match &expected {
        Some(id) => id != found,
        None => consumed > head,
    };
    if !replaced {
        return Ok(());
    }
    Err(CompactError::RawReplaced {
        consumed,
        expected: expected.unwrap_or_else(|| "(not recorded)".into()),
        found: found.to_string(),
        head,
    })
}
