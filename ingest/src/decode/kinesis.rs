//! The one Kinesis decoder: `lakehouse ingest --format kinesis-event` and the ingest Lambda
//! both go through it, so the same event document gives the same rows either way.
//!
//! A Lambda Kinesis event document holds records whose `data` is base64 (decoded by the
//! event types). A record is one user record, or a KPL aggregate of many ([`crate::decode::kpl`]);
//! a corrupt aggregate goes to quarantine whole, with the reason. Lineage: `source` is
//! `kinesis:<stream>/<shard>`, `source_position` the record's sequence number, or
//! `<sequence>:<index>` for the index-th user record of an aggregate (the KPL's
//! sub-sequence number). The decoder only yields records ([`decode`]); the ingestor writes
//! them (`Ingestor::push_kinesis`).

use std::borrow::Cow;

pub use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};

use crate::decode::kpl;
use crate::error::{IngestError, Result};

/// The reason kind of a Kinesis record whose KPL aggregate cannot be unpacked.
pub const CORRUPT_AGGREGATE_KIND: &str = "corrupt KPL aggregate";

/// Parses a Lambda Kinesis event document (`{"Records":[{"kinesis":{"data":…}}]}`). The
/// document itself must be well formed; a bad event inside it is quarantined later.
pub fn parse_document(document: &[u8], source_name: &str) -> Result<KinesisEvent> {
    serde_json::from_slice(document).map_err(|e| IngestError::KinesisEvent {
        source_name: source_name.to_string(),
        reason: e.to_string(),
    })
}

/// The stream name (from `eventSourceARN`) and shard id (from `eventID`) of a record.
pub fn origin(record: &KinesisEventRecord) -> (&str, &str) {
    let stream = record
        .event_source_arn
        .as_deref()
        .and_then(|arn| arn.rsplit_once(":stream/").map(|(_, name)| name))
        .unwrap_or("unknown-stream");
    // eventID is "shardId-000000000000:<sequence number>".
    let shard = record
        .event_id
        .as_deref()
        .and_then(|id| id.split(':').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown-shard");
    (stream, shard)
}

/// The lineage `source` of a shard's records.
pub fn source_name(stream: &str, shard: &str) -> String {
    format!("kinesis:{stream}/{shard}")
}

/// What one Kinesis record carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Records for the event rules: the user records of an aggregate, or 1 (a corrupt
    /// aggregate counts as the one record it is quarantined as).
    pub user_records: u64,
    /// Bytes of the Kinesis record's data.
    pub bytes: u64,
}

/// One record a Kinesis record decodes to, for the event rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    /// The Kinesis record itself, or one user record of its KPL aggregate, at its position
    /// (`<sequence>`, borrowed, or `<sequence>:<index>`).
    Record {
        data: &'a [u8],
        position: Cow<'a, str>,
    },
    /// A KPL aggregate that does not decode: quarantined whole, with the reason.
    Corrupt {
        data: &'a [u8],
        position: &'a str,
        reason: String,
    },
}

/// The records one Kinesis record decodes to, in order, and what it carried.
pub fn decode(record: &KinesisEventRecord) -> (Vec<Part<'_>>, Decoded) {
    let data = record.kinesis.data.0.as_slice();
    let sequence = record.kinesis.sequence_number.as_str();
    let mut decoded = Decoded {
        user_records: 1,
        bytes: data.len() as u64,
    };
    if !kpl::is_aggregated(data) {
        let whole = Part::Record {
            data,
            position: Cow::Borrowed(sequence),
        };
        return (vec![whole], decoded);
    }
    let parts = match kpl::deaggregate(data) {
        Ok(user_records) => {
            decoded.user_records = user_records.len() as u64;
            user_records
                .iter()
                .enumerate()
                .map(|(index, user)| Part::Record {
                    data: user.data,
                    position: Cow::Owned(format!("{sequence}:{index}")),
                })
                .collect()
        }
        Err(corrupt) => vec![Part::Corrupt {
            data,
            position: sequence,
            reason: corrupt.to_string(),
        }],
    };
    (parts, decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_decode_base64_data_and_name_their_origin() {
        let doc =
            br#"{"Records":[{"eventID":"shardId-000000000007:4959","eventSource":"aws:kinesis",
            "eventSourceARN":"arn:aws:kinesis:eu-west-1:123456789012:stream/events",
            "kinesis":{"data":"eyJhIjoxfQ==","sequenceNumber":"4959","partitionKey":"k",
            "approximateArrivalTimestamp":1700000000.5,"kinesisSchemaVersion":"1.0"}}]}"#;
        let event = parse_document(doc, "doc.json").unwrap();
        let record = &event.records[0];
        assert_eq!(record.kinesis.data.0, br#"{"a":1}"#);
        let (stream, shard) = origin(record);
        assert_eq!(
            source_name(stream, shard),
            "kinesis:events/shardId-000000000007"
        );
        assert!(parse_document(b"{\"Records\":[{}]}", "bad.json").is_err());
    }

    #[test]
    fn a_record_without_arn_or_event_id_still_has_an_origin() {
        let doc = br#"{"Records":[{"kinesis":{"data":"e30=","sequenceNumber":"1",
            "partitionKey":"k","approximateArrivalTimestamp":1700000000.5,
            "kinesisSchemaVersion":"1.0"}}]}"#;
        let event = parse_document(doc, "doc.json").unwrap();
        assert_eq!(
            origin(&event.records[0]),
            ("unknown-stream", "unknown-shard")
        );
    }
}
