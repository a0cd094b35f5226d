//! Records and where they come from; JSON Lines streams. Kinesis records are decoded by
//! [`crate::decode::kinesis`].

use std::io::BufRead;
use std::sync::Arc;

use crate::error::{IngestError, Result};
use crate::rules::event::{MAX_RECORD_BYTES, QUARANTINED_PREFIX_BYTES};

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

/// Reads JSON Lines one record at a time, so memory stays flat whatever the input size. A
/// line wholly in the reader's buffer is handed out from there, uncopied; any other goes
/// through a reused buffer of its own: of a line longer than the maximum record size, only
/// the first bytes past that maximum are kept (the ingestor quarantines it as too large),
/// the rest is read past. A trailing `\r` is part of the line end; a final line end does
/// not start another (empty) record; a UTF-8 byte-order mark before the first line is not
/// part of it (anywhere else, the bytes stay, and the record is judged as it is).
pub struct JsonLines<R> {
    reader: R,
    source: Arc<str>,
    line: Vec<u8>,
    /// Bytes of the reader's buffer the last record was handed out from, consumed when the
    /// next is asked for.
    borrowed: usize,
    line_no: u64,
    position: String,
    max_record_bytes: usize,
}

impl<R: BufRead> JsonLines<R> {
    pub fn new(reader: R, source: impl Into<Arc<str>>) -> Self {
        JsonLines {
            reader,
            source: source.into(),
            line: Vec::with_capacity(4096),
            borrowed: 0,
            line_no: 0,
            position: String::new(),
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }

    /// The input's name, as each record gives it.
    pub fn source(&self) -> Arc<str> {
        self.source.clone()
    }

    /// Keeps no more of a line than a record of `max` bytes and its line end need.
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// Bytes of a line kept at most: a record of the maximum size and its line end, and
    /// never fewer than quarantine keeps of a record too large (whatever the maximum, the
    /// reason's "the first 4096 are kept" holds).
    fn kept_bytes(&self) -> usize {
        self.max_record_bytes
            .max(QUARANTINED_PREFIX_BYTES)
            .saturating_add(2)
    }

    /// Reads one line into `self.line`, keeping at most [`Self::kept_bytes`];
    /// returns the bytes consumed (0 at the end of input).
    fn read_line(&mut self) -> std::io::Result<usize> {
        let cap = self.kept_bytes();
        let mut consumed = 0;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(consumed);
            }
            let end = memchr::memchr(b'\n', buf);
            let chunk = &buf[..end.map_or(buf.len(), |i| i + 1)];
            let room = cap.saturating_sub(self.line.len());
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            let n = chunk.len();
            self.reader.consume(n);
            consumed += n;
            if end.is_some() {
                return Ok(consumed);
            }
        }
    }

    /// The next record, or `None` at the end of input.
    pub fn next_record(&mut self) -> Result<Option<SourceRecord<'_>>> {
        self.reader.consume(std::mem::take(&mut self.borrowed));
        let read_error = |source: &str, error| IngestError::Read {
            source_name: source.to_string(),
            error,
        };
        let cap = self.kept_bytes();
        let buffered = self
            .reader
            .fill_buf()
            .map_err(|e| read_error(&self.source, e))?;
        if buffered.is_empty() {
            return Ok(None);
        }
        let whole = memchr::memchr(b'\n', buffered)
            .filter(|&end| end < cap)
            .map(|end| end + 1);
        let mut data = match whole {
            Some(n) => {
                self.borrowed = n;
                // The same bytes again: the buffer is not refilled while it holds any.
                let buffered = self
                    .reader
                    .fill_buf()
                    .map_err(|e| read_error(&self.source, e))?;
                &buffered[..n]
            }
            None => {
                self.line.clear();
                self.read_line().map_err(|e| read_error(&self.source, e))?;
                self.line.as_slice()
            }
        };
        self.line_no += 1;
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
    fn a_line_past_the_maximum_is_cut_just_past_it_and_the_next_line_is_whole() {
        let long = "x".repeat(1000);
        let input = format!("{}\r\n{long}\r\n{long}y\nnext\n", &long[..999]);
        let mut lines = JsonLines::new(input.as_bytes(), "t").with_max_record_bytes(1000);
        let mut got = vec![];
        while let Some(r) = lines.next_record().unwrap() {
            got.push(r.data.len());
        }
        // 999 and 1000 bytes fit; 1001 is cut at 1002 (still more than the maximum).
        assert_eq!(got, vec![999, 1000, 1001, 4]);
        // Under a maximum below what quarantine keeps of a record too large, a line is
        // kept up to that (and its line end), so the too-large reason says what is true.
        let huge = "z".repeat(100_000) + "\nok\n";
        let mut lines = JsonLines::new(huge.as_bytes(), "t").with_max_record_bytes(10);
        let cut = lines.next_record().unwrap().unwrap().data.len();
        assert_eq!(cut, QUARANTINED_PREFIX_BYTES + 2);
        assert_eq!(lines.next_record().unwrap().unwrap().data, b"ok");
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
