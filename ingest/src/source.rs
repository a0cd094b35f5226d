//! Where records come from: JSON Lines streams and Lambda Kinesis event documents.

use std::io::BufRead;
use std::sync::Arc;

use aws_lambda_events::event::kinesis::KinesisEvent;

use crate::error::{IngestError, Result};

/// One input record and where it came from, for lineage and for quarantine.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    pub data: &'a [u8],
    /// The input: a file path, `stdin`, or a Kinesis shard (`kinesis:shardId-…`).
    pub source: &'a str,
    /// Position within the source: the 1-based line number, or the Kinesis sequence number.
    pub position: &'a str,
}

/// Reads JSON Lines one record at a time into a reused buffer, so memory stays flat
/// whatever the input size. A trailing `\r` is part of the line end; a final line end does
/// not start another (empty) record.
pub struct JsonLines<R> {
    reader: R,
    source: Arc<str>,
    line: Vec<u8>,
    line_no: u64,
    position: String,
}

impl<R: BufRead> JsonLines<R> {
    pub fn new(reader: R, source: impl Into<Arc<str>>) -> Self {
        JsonLines {
            reader,
            source: source.into(),
            line: Vec::with_capacity(4096),
            line_no: 0,
            position: String::new(),
        }
    }

    /// The next record, or `None` at the end of input.
    pub fn next_record(&mut self) -> Result<Option<SourceRecord<'_>>> {
        self.line.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.line)
            .map_err(|error| IngestError::Read {
                source_name: self.source.to_string(),
                error,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let mut data = self.line.as_slice();
        data = data.strip_suffix(b"\n").unwrap_or(data);
        data = data.strip_suffix(b"\r").unwrap_or(data);
        self.position.clear();
        use std::fmt::Write;
        let _ = write!(self.position, "{}", self.line_no);
        Ok(Some(SourceRecord {
            data,
            source: &self.source,
            position: &self.position,
        }))
    }
}

/// A Lambda Kinesis event document's records, decoded: `(shard source, sequence, bytes)`.
pub struct KinesisRecords {
    pub records: Vec<(String, String, Vec<u8>)>,
}

impl KinesisRecords {
    /// Parses a Lambda Kinesis event document (`{"Records":[{"kinesis":{"data":…}}]}`). The
    /// document itself must be well formed; a bad event inside it is quarantined later.
    pub fn parse(document: &[u8], source_name: &str) -> Result<KinesisRecords> {
        let event: KinesisEvent =
            serde_json::from_slice(document).map_err(|e| IngestError::KinesisEvent {
                source_name: source_name.to_string(),
                reason: e.to_string(),
            })?;
        let records = event
            .records
            .into_iter()
            .map(|r| {
                let (_, shard) = crate::stream::origin(&r);
                (
                    format!("kinesis:{shard}"),
                    r.kinesis.sequence_number,
                    r.kinesis.data.0,
                )
            })
            .collect();
        Ok(KinesisRecords { records })
    }

    pub fn iter(&self) -> impl Iterator<Item = SourceRecord<'_>> {
        self.records
            .iter()
            .map(|(source, position, data)| SourceRecord {
                data,
                source,
                position,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_strip_line_ends_and_number_lines() {
        let input = b"a\r\n\nb\nc" as &[u8];
        let mut lines = JsonLines::new(input, "t");
        let mut got = vec![];
        while let Some(r) = lines.next_record().unwrap() {
            got.push((r.data.to_vec(), r.position.to_string()));
        }
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), "1".into()),
                (b"".to_vec(), "2".into()),
                (b"b".to_vec(), "3".into()),
                (b"c".to_vec(), "4".into())
            ]
        );
    }

    #[test]
    fn kinesis_documents_decode_base64_data() {
        let doc =
            br#"{"Records":[{"eventID":"shardId-000000000007:4959","eventSource":"aws:kinesis",
            "kinesis":{"data":"eyJhIjoxfQ==","sequenceNumber":"4959","partitionKey":"k",
            "approximateArrivalTimestamp":1700000000.5,"kinesisSchemaVersion":"1.0"}}]}"#;
        let recs = KinesisRecords::parse(doc, "doc.json").unwrap();
        let r: Vec<_> = recs.iter().collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].data, br#"{"a":1}"#);
        assert_eq!(r[0].source, "kinesis:shardId-000000000007");
        assert_eq!(r[0].position, "4959");
        assert!(KinesisRecords::parse(b"{\"Records\":[{}]}", "bad.json").is_err());
    }
}
