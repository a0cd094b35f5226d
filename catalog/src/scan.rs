//! Reads `staging` for view inference: event types and payloads, streamed batch by batch
//! so memory stays flat however large the window.

use chrono::{Duration, NaiveDate};
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use lakehouse_lake::read::{self, register_table};
use lakehouse_lake::schema::{EVENT_DATE, EVENT_TYPE, PAYLOAD};
use lakehouse_lake::{Lake, Table};

use crate::error::{CatalogError, Result};
use crate::infer::Inference;

/// Which part of `staging` to read.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Only events of the last `days` days (by `event_date`, a partition column, so older
    /// partitions are never read); `None` reads everything.
    pub days: Option<u32>,
    /// Events parsed per event type at most: enough to see every field of a steady shape
    /// without parsing a billion payloads.
    pub sample_per_type: u64,
    /// The day the window ends on (today, unless testing).
    pub today: NaiveDate,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            days: Some(7),
            sample_per_type: 10_000,
            today: chrono::Utc::now().date_naive(),
        }
    }
}

impl ScanOptions {
    fn scope(&self) -> String {
        match self.days {
            Some(days) => format!(" in the last {days} days (--days)"),
            None => String::new(),
        }
    }
}

pub async fn scan_staging(lake: &Lake, options: &ScanOptions) -> Result<Inference> {
    let Some(staging) = lake.open_existing(Table::Staging).await? else {
        return Err(CatalogError::NoEvents {
            scope: " (staging does not exist yet: run `lakehouse compact`)".into(),
        });
    };
    // Only staging: the scan never reads raw or quarantine, so their logs are not loaded.
    let ctx = SessionContext::new();
    register_table(&ctx, Table::Staging, &staging).await?;
    let filter = match options.days {
        Some(days) => {
            let from = options.today - Duration::days(i64::from(days.max(1)) - 1);
            format!(" WHERE {EVENT_DATE} >= DATE '{from}'")
        }
        None => String::new(),
    };
    let sql = format!("SELECT {EVENT_TYPE}, {PAYLOAD} FROM staging{filter}");
    let inference = collect(&ctx, &sql, options.sample_per_type).await?;
    if inference.events() == 0 {
        return Err(CatalogError::NoEvents {
            scope: options.scope(),
        });
    }
    Ok(inference)
}

async fn collect(
    ctx: &SessionContext,
    sql: &str,
    sample: u64,
) -> deltalake::datafusion::error::Result<Inference> {
    let mut stream = read::query(ctx, sql).await?.execute_stream().await?;
    let mut inference = Inference::default();
    while let Some(batch) = stream.try_next().await? {
        // Strings may arrive as Utf8View depending on the reader: normalise.
        let types = cast(batch.column(0), &DataType::Utf8)?;
        let payloads = cast(batch.column(1), &DataType::Utf8)?;
        let (types, payloads) = (types.as_string::<i32>(), payloads.as_string::<i32>());
        for row in 0..batch.num_rows() {
            if types.is_null(row) || payloads.is_null(row) {
                continue;
            }
            let event_type = types.value(row);
            if inference.events_of(event_type) < sample {
                inference.observe(event_type, payloads.value(row));
            }
        }
    }
    Ok(inference)
}
