//! Finding the events staged more than once with DataFusion: the SQL Athena runs at scale
//! (`sql/queries/duplicated_events.sql`, one definition for both), over staging at one
//! version. Its rows are the sweep's candidates.

use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use lakehouse_lake::read::register_table;
use lakehouse_lake::{Lake, Table};

use crate::error::Result;
use crate::session::run_query;

/// The query, as Athena runs it.
pub const DUPLICATED_EVENTS_SQL: &str = include_str!("../../sql/queries/duplicated_events.sql");

/// Every staged copy of an event staged more than once, and the staging version read.
#[derive(Debug, Clone)]
pub struct Duplicated {
    pub staging_version: u64,
    /// Columns `event_uuid`, `event_date`, `event_type`.
    pub batches: Vec<RecordBatch>,
}

/// Runs the query on staging's latest version; `None` when there is no staging table.
pub async fn duplicated_events(lake: &Lake) -> Result<Option<Duplicated>> {
    let Some(staging) = lake.open_existing(Table::Staging).await? else {
        return Ok(None);
    };
    let ctx = SessionContext::new();
    register_table(&ctx, Table::Staging, &staging).await?;
    Ok(Some(Duplicated {
        staging_version: staging.version().unwrap_or(0),
        batches: run_query(&ctx, DUPLICATED_EVENTS_SQL).await?,
    }))
}
