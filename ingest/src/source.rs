//! Records and where they come from; JSON Lines streams. Kinesis records are decoded by
//! [`crate::kinesis`].

use std::io::BufRead;
use std::sync::Arc;

use crate::error::{IngestError, Result};

/// One input record and where it came from, for lineage and for quarantine.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    pub data: &'a [u8],
    /// The input: a file path, `stdin`, or a Kinesis shard (`kinesis:<stream>/<shard>`).
    pub source: &'a str,
    /// Position within the source: the 1-based line number, or the Kinesis sequence number
    /// (`<sequence>:<index>` for a user record of a KPL aggregate).
    pub position: &'a str,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads JSON Lines one record at a time into a reused buffer, so memory stays flat
/// whatever the input size. A trailing `\r` is part of the line end; a final line end does
/// not start another (empty) record; a UTF-8 byte-order mark before the first line is not
/// part of it (anywhere else, the bytes stay, and the record is judged as it is).
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
        if self.line_no == 1 {
            // A UTF-8 byte-order mark (editors on Windows add one) marks the encoding, not
            // the first event: without this the first line would be quarantined.
            data = data.strip_prefix(UTF8_BOM).unwrap_or(data);
        }
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
    fn a_byte_order_mark_opens_the_file_not_its_first_record() {
        let input = b"\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n" as &[u8];
        let mut lines = JsonLines::new(input, "t");
        let first = lines.next_record().unwrap().unwrap().data.to_vec();
        assert_eq!(first, br#"{"a":1}"#);
        // Only the file's first bytes are a mark; later ones are data.
        let second = lines.next_record().unwrap().unwrap().data.to_vec();
        assert_eq!(second, b"\xEF\xBB\xBF{\"b\":2}");
    }
}
