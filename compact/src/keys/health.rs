//! The index's lag and build, from the logs only (for `status`).

use deltalake::DeltaTable;
use deltalake::kernel::Action;
use futures::TryStreamExt;
use lakehouse_lake::log::commits_in;
use serde::Serialize;

use crate::error::Result;
use crate::progress::last_sweep;

use super::update::indexed_version;
use crate::key_build::{self, build_progress, build_version};

/// The index's size and lag, for `status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeysHealth {
    /// The staging version the index holds; `None`: no index for this staging.
    pub indexed: Option<u64>,
    /// Staging commits after `indexed` that changed data (optimize's do not: the index
    /// need not follow them); every commit when `indexed` is `None`.
    pub lag_versions: u64,
    /// A rebuild under way: the staging version it builds and the files of it indexed.
    pub building: Option<(u64, u64)>,
    /// The staging version the last sweep swept (`None`: never swept).
    pub swept: Option<u64>,
}

/// Staging commits read at most to count the index's lag; past it each counts.
const LAG_COMMITS_READ: u64 = 1_000;

/// The index's lag behind `staging`, from the logs only.
pub async fn keys_health(staging: &DeltaTable, keys: Option<&DeltaTable>) -> Result<KeysHealth> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let head = staging.version().unwrap_or(0);
    let indexed = match keys {
        Some(keys) => indexed_version(keys, &staging_id).await?,
        None => None,
    };
    let swept = last_sweep(staging).await?;
    let Some(from) = indexed.map(|v| v + 1) else {
        let building = match keys {
            Some(keys) => match build_progress(keys, &staging_id, None).await {
                Ok(progress) => progress.map(|p| (p.version, p.files_done())),
                // The build's log is gone: the next update starts it over.
                Err(e) if key_build::gone(&e) => build_version(keys, &staging_id, None)
                    .await?
                    .map(|v| (v, 0)),
                Err(e) => return Err(e),
            },
            None => None,
        };
        return Ok(KeysHealth {
            indexed,
            lag_versions: head + 1,
            building,
            swept,
        });
    };
    let read_to = head.min(from.saturating_add(LAG_COMMITS_READ - 1));
    let mut lag = head.saturating_sub(read_to);
    let mut commits = std::pin::pin!(commits_in(staging.log_store(), from..=read_to, 16));
    while let Some((_, actions)) = commits.try_next().await? {
        let changes_data = actions.is_none_or(|actions| {
            actions
                .iter()
                .any(|a| matches!(a, Action::Add(add) if add.data_change))
        });
        lag += u64::from(changes_data);
    }
    Ok(KeysHealth {
        indexed,
        lag_versions: lag,
        building: None,
        swept,
    })
}
