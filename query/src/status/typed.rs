//! The typed tables at a glance, from their logs: how many rows they hold against
//! staging's (equal once compaction has mirrored staging's last change), and the values
//! rescued in those rows per event type and field, from each file's tag.

use deltalake::DeltaTable;
use lakehouse_lake::Lake;
use lakehouse_lake::files::{live_files, rows_of};
use lakehouse_lake::typed::mirror::rescued_of;

use crate::error::Result;

use super::types::TypedHealth;

pub(super) async fn typed_health(lake: &Lake, staging: &DeltaTable) -> Result<TypedHealth> {
    let mut health = TypedHealth {
        staging_rows: live_files(staging)?.iter().filter_map(rows_of).sum(),
        ..TypedHealth::default()
    };
    for table in lake.typed_tables().await? {
        health.tables += 1;
        for file in live_files(&table.delta)? {
            health.rows += rows_of(&file).unwrap_or(0);
            for (field, n) in rescued_of(&file) {
                *health
                    .rescued
                    .entry(table.event_type.clone())
                    .or_default()
                    .entry(field)
                    .or_default() += n;
            }
        }
    }
    Ok(health)
}
