//! Reading quarantine for its operators: the rows a filter selects, and which of them are
//! re-driven already (raw holds a row naming them, see [`lakehouse_lake::redrive`]).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use deltalake::datafusion::prelude::SessionContext;
use lakehouse_lake::redrive::{QuarantinedRecord, REDRIVEN_SOURCE_PREFIX};

use crate::error::Result;
use crate::session::run_query;

/// Which quarantine rows: an SQL condition over its columns, and a time they were
/// quarantined at or after.
#[derive(Debug, Clone, Default)]
pub struct QuarantineFilter {
    pub where_sql: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl QuarantineFilter {
    fn condition(&self) -> String {
        let mut parts = vec!["TRUE".to_string()];
        if let Some(sql) = &self.where_sql {
            parts.push(format!("({sql})"));
        }
        if let Some(since) = self.since {
            parts.push(format!(
                "ingested_at >= TIMESTAMP '{}'",
                since.format("%Y-%m-%dT%H:%M:%S%.6fZ")
            ));
        }
        parts.join(" AND ")
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
        "raw"
    } else {
        "CAST(NULL AS BYTEA) AS raw"
    };
    let sql = format!(
        "SELECT {raw}, error, source, source_position, ingested_at, ingest_seq \
         FROM quarantine WHERE {} AND raw IS NOT NULL \
         ORDER BY ingested_at, ingest_seq, source, source_position",
        filter.condition()
    );
    let mut records = Vec::new();
    for batch in run_query(ctx, &sql).await? {
        let bytes = cast(batch.column(0), &DataType::Binary)?;
        let bytes = bytes.as_binary::<i32>();
        let text = |i: usize| -> Result<_> { Ok(cast(batch.column(i), &DataType::Utf8)?) };
        let (error, source, position) = (text(1)?, text(2)?, text(3)?);
        let (error, source, position) = (
            error.as_string::<i32>(),
            source.as_string::<i32>(),
            position.as_string::<i32>(),
        );
        let at = cast(
            batch.column(4),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let at = at.as_primitive::<TimestampMicrosecondType>();
        let seq = cast(batch.column(5), &DataType::Int64)?;
        let seq = seq.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let value = |a: &deltalake::arrow::array::StringArray| {
                if a.is_null(row) {
                    String::new()
                } else {
                    a.value(row).to_string()
                }
            };
            records.push(QuarantinedRecord {
                raw: if bytes.is_null(row) {
                    Vec::new()
                } else {
                    bytes.value(row).to_vec()
                },
                error: value(error),
                source: value(source),
                source_position: value(position),
                ingested_at_micros: if at.is_null(row) { 0 } else { at.value(row) },
                ingest_seq: if seq.is_null(row) { 0 } else { seq.value(row) },
            });
        }
    }
    Ok(records)
}

/// The (source, source_position) of every re-driven row in raw: what marks a quarantine row
/// re-driven ([`QuarantinedRecord::redriven_key`]).
pub async fn redriven_keys(ctx: &SessionContext) -> Result<HashSet<(String, String)>> {
    let sql = format!(
        "SELECT source, source_position FROM raw WHERE source LIKE '{REDRIVEN_SOURCE_PREFIX}%'"
    );
    let mut keys = HashSet::new();
    for batch in run_query(ctx, &sql).await? {
        add_keys(&batch, &mut keys)?;
    }
    Ok(keys)
}

fn add_keys(batch: &RecordBatch, keys: &mut HashSet<(String, String)>) -> Result<()> {
    let source = cast(batch.column(0), &DataType::Utf8)?;
    let position = cast(batch.column(1), &DataType::Utf8)?;
    let (source, position) = (source.as_string::<i32>(), position.as_string::<i32>());
    for row in 0..batch.num_rows() {
        keys.insert((
            source.value(row).to_string(),
            if position.is_null(row) {
                String::new()
            } else {
                position.value(row).to_string()
            },
        ));
    }
    Ok(())
}
