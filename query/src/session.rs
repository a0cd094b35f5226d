//! A DataFusion session with `raw`, `staging` and `quarantine` registered, each at its
//! latest version, a chosen version, or as of an instant.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use lakehouse_lake::{Lake, Table};

use crate::error::Result;

/// Which version of each table a query reads. A table with an explicit version ignores
/// `as_of`; without either, the latest version is read.
#[derive(Debug, Clone, Default)]
pub struct TableSelection {
    pub versions: HashMap<Table, u64>,
    pub as_of: Option<DateTime<Utc>>,
}

/// The version of a table a session reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub table: Table,
    pub version: u64,
}

async fn open_selected(
    lake: &Lake,
    table: Table,
    selection: &TableSelection,
) -> Result<Option<DeltaTable>> {
    Ok(match (selection.versions.get(&table), selection.as_of) {
        (Some(&version), _) => Some(lake.open_version(table, version).await?),
        (None, Some(at)) => lake.open_as_of(table, at).await?,
        (None, None) => Some(lake.open(table).await?),
    })
}

/// Registers the tables. At an `as_of` before a table was created, it reads as its first,
/// empty version; a table never created at all is left out.
pub async fn open_session(
    lake: &Lake,
    selection: &TableSelection,
) -> Result<(SessionContext, Vec<Snapshot>)> {
    let ctx = SessionContext::new();
    let mut snapshots = Vec::new();
    for table in Table::ALL {
        let Some(delta) = open_selected(lake, table, selection).await? else {
            continue;
        };
        register_table(&ctx, table, &delta).await?;
        snapshots.push(Snapshot {
            table,
            version: delta.version().unwrap_or(0),
        });
    }
    Ok((ctx, snapshots))
}

/// Registers one opened table under its name, for sessions that need only that table.
pub async fn register_table(ctx: &SessionContext, table: Table, delta: &DeltaTable) -> Result<()> {
    delta.update_datafusion_session(&ctx.state())?;
    let provider = delta.table_provider().await?;
    ctx.register_table(table.name(), provider)?;
    Ok(())
}

/// Runs one SQL statement and collects its result.
pub async fn run_query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(ctx.sql(sql).await?.collect().await?)
}
