//! How a quarantined record re-driven into `raw` names its origin: the raw row's `source`
//! is `quarantine:<the record's source>` and its `source_position` is
//! `<the record's position>@<ingested_at µs>#<ingest_seq>`, which together are unique per
//! quarantine row. Re-drive looks these up in raw to take each quarantine row at most once,
//! and the raw commit that carries them is the history: when, and into which version.
//! [`redriven_keys`] reads which rows raw names; [`stored_rows`] finds the quarantine rows
//! an export's keys name, so that a key naming no row is refused rather than believed.

use std::collections::{BTreeSet, HashMap, HashSet};

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use deltalake::datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::read::{self, register_table};
use crate::schema::{
    ERROR, INGEST_DATE, INGEST_SEQ, INGESTED_AT, RAW, SOURCE, SOURCE_POSITION, Table,
};

/// What a re-driven raw row's `source` starts with.
pub const REDRIVEN_SOURCE_PREFIX: &str = "quarantine:";

/// One quarantine row, as re-drive reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuarantinedRecord {
    /// The record's bytes (for a record too large, its first bytes only).
    #[serde(skip)]
    pub raw: Vec<u8>,
    #[serde(skip)]
    pub error: String,
    pub source: String,
    pub source_position: String,
    pub ingested_at_micros: i64,
    pub ingest_seq: i64,
}

impl QuarantinedRecord {
    /// The `source` of the raw row it becomes.
    pub fn redriven_source(&self) -> String {
        format!("{REDRIVEN_SOURCE_PREFIX}{}", self.source)
    }

    /// The `source_position` of the raw row it becomes.
    pub fn redriven_position(&self) -> String {
        format!(
            "{}@{}#{}",
            self.source_position, self.ingested_at_micros, self.ingest_seq
        )
    }

    /// The (source, source_position) of the raw row it becomes: what marks it re-driven.
    pub fn redriven_key(&self) -> (String, String) {
        (self.redriven_source(), self.redriven_position())
    }

    /// The row's identity as one JSON line of an export's keys file (one line per
    /// exported record, in order), so that fixed records re-driven from the export name
    /// the rows they fix.
    pub fn key_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The row a keys-file line names, with `raw` as its (fixed) bytes.
    pub fn from_key_line(line: &str, raw: Vec<u8>) -> Result<QuarantinedRecord, String> {
        let mut record: QuarantinedRecord =
            serde_json::from_str(line).map_err(|e| format!("not a quarantine key: {e}"))?;
        record.raw = raw;
        Ok(record)
    }
}

/// A quarantine row's identity: what its re-driven raw row is named by.
pub type RedrivenKey = (String, String);

/// The (source, source_position) of every raw row re-driven from quarantine, in `raw` as
/// given (the snapshot a re-drive commits on): the quarantine rows already re-driven.
pub async fn redriven_keys(raw: &DeltaTable) -> Result<HashSet<RedrivenKey>> {
    let ctx = SessionContext::new();
    register_table(&ctx, Table::Raw, raw).await?;
    let sql = format!(
        "SELECT {SOURCE}, {SOURCE_POSITION} FROM raw \
         WHERE {SOURCE} LIKE '{REDRIVEN_SOURCE_PREFIX}%'"
    );
    let mut keys = HashSet::new();
    for batch in read::query(&ctx, &sql).await?.collect().await? {
        let source = cast(batch.column(0), &DataType::Utf8)?;
        let position = cast(batch.column(1), &DataType::Utf8)?;
        let (source, position) = (source.as_string::<i32>(), position.as_string::<i32>());
        for row in 0..batch.num_rows() {
            keys.insert((text(source, row), text(position, row)));
        }
    }
    Ok(keys)
}

/// The quarantine rows (by their re-drive key) that `wanted` name, as `quarantine` holds
/// them; a key naming no row is absent from the map. Only the days the keys' ingest times
/// fall on are read (quarantine is partitioned by ingest date), and the bytes only of rows
/// quarantined as too large (`too_large_prefix` starts their reason), which a re-drive
/// compares with the line offered for them.
pub async fn stored_rows(
    quarantine: &DeltaTable,
    wanted: &[QuarantinedRecord],
    too_large_prefix: &str,
) -> Result<HashMap<RedrivenKey, QuarantinedRecord>> {
    let keys: HashSet<RedrivenKey> = wanted.iter().map(QuarantinedRecord::redriven_key).collect();
    let days: BTreeSet<i64> = wanted
        .iter()
        .map(|r| r.ingested_at_micros.div_euclid(86_400_000_000))
        .collect();
    let mut found = HashMap::new();
    let ctx = SessionContext::new();
    register_table(&ctx, Table::Quarantine, quarantine).await?;
    let dates: Vec<String> = days
        .iter()
        .filter_map(|d| chrono::DateTime::from_timestamp(d.saturating_mul(86_400), 0))
        .map(|at| format!("DATE '{}'", at.date_naive()))
        .collect();
    if dates.is_empty() {
        return Ok(found);
    }
    let too_large = too_large_prefix.replace('\'', "''");
    let sql = format!(
        "SELECT CASE WHEN {ERROR} LIKE '{too_large}%' THEN {RAW} END AS {RAW}, {ERROR}, \
         {SOURCE}, {SOURCE_POSITION}, {INGESTED_AT}, {INGEST_SEQ} FROM quarantine \
         WHERE {INGEST_DATE} IN ({})",
        dates.join(", ")
    );
    for batch in read::query(&ctx, &sql).await?.collect().await? {
        for record in records_of(&batch)? {
            let key = record.redriven_key();
            if keys.contains(&key) {
                found.insert(key, record);
            }
        }
    }
    Ok(found)
}

/// Quarantine rows as re-drive reads them, from a batch of (raw, error, source,
/// source_position, ingested_at, ingest_seq).
pub fn records_of(batch: &RecordBatch) -> Result<Vec<QuarantinedRecord>> {
    let bytes = cast(batch.column(0), &DataType::Binary)?;
    let bytes = bytes.as_binary::<i32>();
    let strings = |i: usize| cast(batch.column(i), &DataType::Utf8);
    let (error, source, position) = (strings(1)?, strings(2)?, strings(3)?);
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
    Ok((0..batch.num_rows())
        .map(|row| QuarantinedRecord {
            raw: if bytes.is_null(row) {
                Vec::new()
            } else {
                bytes.value(row).to_vec()
            },
            error: text(error, row),
            source: text(source, row),
            source_position: text(position, row),
            ingested_at_micros: if at.is_null(row) { 0 } else { at.value(row) },
            ingest_seq: if seq.is_null(row) { 0 } else { seq.value(row) },
        })
        .collect())
}

fn text(column: &StringArray, row: usize) -> String {
    if column.is_null(row) {
        String::new()
    } else {
        column.value(row).to_string()
    }
}

/// The keys file written beside an export at `path`.
pub fn keys_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".keys");
    name.into()
}

/// The records of an export fixed in place (`fixed`, one record a line; an empty line
/// skips one), each named by the line of its keys file (`keys`) at the same place. `name`
/// and `keys_name` name the two files in errors.
pub fn fixed_records(
    fixed: &[u8],
    keys: &[u8],
    name: &str,
    keys_name: &str,
) -> Result<Vec<QuarantinedRecord>, String> {
    let body = fixed.strip_suffix(b"\n").unwrap_or(fixed);
    let lines: Vec<&[u8]> = if body.is_empty() {
        Vec::new()
    } else {
        body.split(|b| *b == b'\n').collect()
    };
    let keys: Vec<&str> = std::str::from_utf8(keys)
        .map_err(|_| format!("the keys file {keys_name} is not UTF-8"))?
        .lines()
        .collect();
    if lines.len() != keys.len() {
        return Err(format!(
            "{name} has {} lines but its keys file {}: keep one line per exported record, \
             fixed in place (an empty line skips one)",
            lines.len(),
            keys.len()
        ));
    }
    let mut records = Vec::new();
    for (n, (line, key)) in lines.iter().zip(&keys).enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let record = QuarantinedRecord::from_key_line(key, line.to_vec())
            .map_err(|e| format!("{keys_name} line {}: {e}", n + 1))?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_row_names_the_quarantine_row() {
        let record = QuarantinedRecord {
            raw: b"{}".to_vec(),
            error: "missing field `event_uuid`".into(),
            source: "kinesis:events/shard-0".into(),
            source_position: "4960:0".into(),
            ingested_at_micros: 1_700_000_000_000_001,
            ingest_seq: 7,
        };
        let line = record.key_line();
        let back = QuarantinedRecord::from_key_line(&line, record.raw.clone()).unwrap();
        assert_eq!(
            (back.raw.clone(), back.redriven_key()),
            (record.raw.clone(), record.redriven_key())
        );
        assert!(QuarantinedRecord::from_key_line("{}", Vec::new()).is_err());
        assert_eq!(
            record.redriven_key(),
            (
                "quarantine:kinesis:events/shard-0".to_string(),
                "4960:0@1700000000000001#7".to_string()
            )
        );
    }
}
