//! A DataFusion session with the lake's tables registered (the typed tables as
//! `typed_<event type>`), each at its
//! latest version, a chosen version, or as of an instant. Reading never writes: the tables
//! are registered read-only and SQL that would write is refused ([`lakehouse_lake::read`]);
//! a table not written yet reads as empty, and a location holding no table at all is an
//! error. A past version an erasure since deleted files of is refused with why.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use lakehouse_lake::log::erased_since;
use lakehouse_lake::read::{self, Opener, register_empty, register_lazily, register_table};
use lakehouse_lake::typed::table::{TYPED_PREFIX, sql_table_name};
use lakehouse_lake::{Lake, LakeError, Table};

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
    let past = match (selection.versions.get(&table), selection.as_of) {
        (Some(&version), _) => Some(lake.open_version(table, version).await?),
        (None, Some(at)) => lake.open_as_of(table, at).await?,
        (None, None) => return Ok(lake.open_existing(table).await?),
    };
    if let Some(past) = &past {
        refuse_erased(lake, table, past).await?;
    }
    Ok(past)
}

/// Fails, before any query runs, when an erasure since deleted files `past` reads.
async fn refuse_erased(lake: &Lake, table: Table, past: &DeltaTable) -> Result<()> {
    let head = match lake.open_existing(table).await? {
        Some(now) => now.version().unwrap_or(0),
        None => return Ok(()),
    };
    if let Some(erased) = erased_since(past, head).await? {
        return Err(LakeError::Erased {
            table: table.name(),
            version: past.version().unwrap_or(0),
            erased_at: erased.version,
            request: erased.request,
            files: erased.files,
        }
        .into());
    }
    Ok(())
}

/// Registers the tables. A table not written yet (or not yet at `as_of`) reads as empty
/// and has no snapshot; when no table of the lake exists at all, the location is wrong.
pub async fn open_session(
    lake: &Lake,
    selection: &TableSelection,
) -> Result<(SessionContext, Vec<Snapshot>)> {
    let ctx = SessionContext::new();
    let mut snapshots = Vec::new();
    let mut missing = Vec::new();
    for table in Table::ALL {
        match open_selected(lake, table, selection).await? {
            Some(delta) => {
                register_table(&ctx, table, &delta).await?;
                snapshots.push(Snapshot {
                    table,
                    version: delta.version().unwrap_or(0),
                });
            }
            None => missing.push(table),
        }
    }
    // Reading the latest versions, every table was just looked for; only a session as of
    // an instant must ask again whether the lake exists now.
    let lake_exists =
        !snapshots.is_empty() || (selection.as_of.is_some() && any_table_now(lake).await?);
    if !lake_exists {
        return Err(LakeError::EmptyLake {
            location: lake.root().to_string(),
        }
        .into());
    }
    for table in missing {
        register_empty(&ctx, table)?;
    }
    register_typed(lake, &ctx, selection).await?;
    Ok((ctx, snapshots))
}

/// Makes each typed table a table of the session under its SQL name (`typed_<folder>`),
/// opened when a query first names it (one listing here): at its latest version, or as of
/// the session's instant (not there yet then: an empty result's error, from the opener).
async fn register_typed(
    lake: &Lake,
    ctx: &SessionContext,
    selection: &TableSelection,
) -> Result<()> {
    let folders = lake.typed_folders().await?;
    let names = folders.iter().map(|f| sql_table_name(f)).collect();
    let (lake, as_of) = (lake.clone(), selection.as_of);
    let open: Opener = Arc::new(move |name: String| {
        let lake = lake.clone();
        Box::pin(async move {
            let Some(folder) = name.strip_prefix(TYPED_PREFIX) else {
                return Ok(None);
            };
            let Some(mut typed) = lake.open_typed_folder(folder).await? else {
                return Ok(None);
            };
            if let Some(at) = as_of {
                match typed.delta.load_with_datetime(at).await {
                    Ok(()) => {}
                    Err(deltalake::DeltaTableError::InvalidDateTimeString { .. }) => {
                        return Ok(None);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Some(typed.delta))
        })
    });
    register_lazily(ctx, names, open)?;
    Ok(())
}

/// Whether the lake holds any table at its latest version (a session as of an instant
/// before every table reads empty, but only where the lake exists at all).
async fn any_table_now(lake: &Lake) -> Result<bool> {
    for table in Table::ALL {
        if lake.open_existing(table).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs one SQL query and collects its result; SQL that would write is refused.
pub async fn run_query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(read::query(ctx, sql).await?.collect().await?)
}
