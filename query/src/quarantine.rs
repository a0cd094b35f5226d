//! Reading quarantine for its operators: the rows a filter selects (which of them are
//! re-driven already, raw says: [`lakehouse_lake::redrive::redriven_keys`]).

use chrono::{DateTime, Utc};
use deltalake::datafusion::common::ScalarValue;
use deltalake::datafusion::prelude::{DataFrame, SessionContext, col, lit};
use lakehouse_lake::Table;
use lakehouse_lake::read;
use lakehouse_lake::redrive::{QuarantinedRecord, records_of};

use crate::error::Result;

/// Which quarantine rows: an SQL condition over its columns, and a time they were
/// quarantined at or after.
#[derive(Debug, Clone, Default)]
pub struct QuarantineFilter {
    pub where_sql: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl QuarantineFilter {
    /// Quarantine's rows this filter selects, as a plan: the user's condition is parsed as one
    /// expression ([`read::condition`]), so it filters and cannot reshape the query.
    async fn apply(&self, ctx: &SessionContext) -> Result<DataFrame> {
        let mut rows = ctx.table(Table::Quarantine.name()).await?;
        let mut conditions: Vec<String> = self.where_sql.iter().cloned().collect();
        if let Some(since) = self.since {
            conditions.push(format!(
                "ingested_at >= TIMESTAMP '{}'",
                since.format("%Y-%m-%dT%H:%M:%S%.6fZ")
            ));
        }
        for sql in &conditions {
            let condition = read::condition(ctx, sql, rows.schema())?;
            rows = rows.filter(condition)?;
        }
        Ok(rows.filter(col("raw").is_not_null())?)
    }
}

/// The quarantine rows `filter` selects, oldest first; with their bytes when `with_bytes`
/// (else `raw` is left empty: listing needs no bytes). Rows without bytes are left out.
pub async fn quarantined(
    ctx: &SessionContext,
    filter: &QuarantineFilter,
    with_bytes: bool,
) -> Result<Vec<QuarantinedRecord>> {
    let raw = if with_bytes {
        col("raw")
    } else {
        lit(ScalarValue::Binary(None)).alias("raw")
    };
    let order = ["ingested_at", "ingest_seq", "source", "source_position"];
    let selected = filter
        .apply(ctx)
        .await?
        .select(vec![
            raw,
            col("error"),
            col("source"),
            col("source_position"),
            col("ingested_at"),
            col("ingest_seq"),
        ])?
        .sort(order.iter().map(|c| col(*c).sort(true, true)).collect())?;
    let mut records = Vec::new();
    for batch in selected.collect().await? {
        records.extend(records_of(&batch)?);
    }
    Ok(records)
}
