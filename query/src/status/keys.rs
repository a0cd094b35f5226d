//! The key index's lag behind staging, its build under way and the last sweep.

use deltalake::DeltaTable;

use lakehouse_lake::index_progress::{
    build_progress, build_version, indexed_version, lag_versions,
};
use lakehouse_lake::progress::last_sweep;

use crate::error::Result;

use super::types::KeysHealth;

/// The index's lag behind `staging`, its build under way and the last sweep, from the logs
/// only.
pub async fn keys_health(staging: &DeltaTable, keys: Option<&DeltaTable>) -> Result<KeysHealth> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let indexed = match keys {
        Some(keys) => indexed_version(keys, &staging_id).await?,
        None => None,
    };
    let building = match (keys, indexed) {
        (Some(keys), None) => match build_progress(keys, &staging_id, None).await {
            Ok(progress) => progress.map(|p| (p.version, p.files_done())),
            // The build's log is gone: the next update starts it over.
            Err(e) if e.is_gone() => build_version(keys, &staging_id, None)
                .await?
                .map(|v| (v, 0)),
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    Ok(KeysHealth {
        indexed,
        lag_versions: lag_versions(staging, indexed).await?,
        building,
        swept: last_sweep(staging).await?,
    })
}
