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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRecord {
    /// The record's bytes (for a record too large, its first bytes only).
    pub raw: Vec<u8>,
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
        assert_eq!(
            record.redriven_key(),
            (
                "quarantine:kinesis:events/shard-0".to_string(),
                "4960:0@1700000000000001#7".to_string()
            )
        );
    }
}
