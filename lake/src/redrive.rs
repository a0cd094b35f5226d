//! How a quarantined record re-driven into `raw` names its origin: the raw row's `source`
//! is `quarantine:<the record's source>` and its `source_position` is
//! `<the record's position>@<ingested_at µs>#<ingest_seq>`, which together are unique per
//! quarantine row. Re-drive looks these up in raw to take each quarantine row at most once,
//! and the raw commit that carries them is the history: when, and into which version.

/// What a re-driven raw row's `source` starts with.
pub const REDRIVEN_SOURCE_PREFIX: &str = "quarantine:";

/// The `txn` app id every re-drive commit to raw advances: two re-drives planned on the same
/// raw cannot both commit (the commit path refuses the second), so neither can take a row
/// the other took.
pub const REDRIVE_APP_ID: &str = "lakehouse-redrive";

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

/// The keys file written beside an export at `path`.
pub fn keys_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".keys");
    name.into()
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
