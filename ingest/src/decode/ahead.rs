//! JSON Lines read and judged by the event rules on a thread of their own, a chunk at a
//! time, while the ingestor appends the chunk before: parsing is most of the work of the
//! thread that holds the rows, and a second core takes it.

use std::io::BufRead;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use crate::decode::source::{JsonLines, SourceRecord};
use crate::error::{IngestError, Result};
use crate::rules::event::DetachedEvent;
use crate::rules::verdict::{Verdict, judge};

/// Records in input order, their bytes copied out of the reader, each with its verdict.
pub struct Chunk {
    source: Arc<str>,
    bytes: Vec<u8>,
    records: Vec<(Range<usize>, Range<usize>, Verdict<DetachedEvent>)>,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Each record with its verdict.
    pub fn records(&self) -> impl Iterator<Item = (SourceRecord<'_>, &Verdict<DetachedEvent>)> {
        self.records.iter().map(|(data, position, verdict)| {
            let record = SourceRecord {
                data: &self.bytes[data.clone()],
                source: &self.source,
                // Written by the reader from a `&str`.
                position: std::str::from_utf8(&self.bytes[position.clone()]).unwrap_or("?"),
            };
            (record, verdict)
        })
    }
}

/// Records per chunk, and bytes (a chunk ends at whichever comes first).
const CHUNK_RECORDS: usize = 4096;
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks read ahead of the ingestor, besides the one it holds.
const AHEAD: usize = 2;

/// The chunks of one JSON Lines input, read and judged on a thread of their own.
pub struct ParseAhead {
    chunks: Receiver<Result<Chunk>>,
    thread: Option<JoinHandle<()>>,
    source: Arc<str>,
}

impl ParseAhead {
    pub fn start<R: BufRead + Send + 'static>(
        mut lines: JsonLines<R>,
        max_record_bytes: usize,
    ) -> Result<ParseAhead> {
        let source = lines.source();
        let (send, chunks) = sync_channel(AHEAD);
        let chunk_source = source.clone();
        let thread = std::thread::Builder::new()
            .name("parse".into())
            .spawn(move || {
                loop {
                    let chunk = read_chunk(&mut lines, &chunk_source, max_record_bytes);
                    let last = !matches!(chunk, Ok(Some(_)));
                    let sent = match chunk {
                        Ok(Some(chunk)) => send.send(Ok(chunk)),
                        Ok(None) => Ok(()),
                        Err(e) => send.send(Err(e)),
                    };
                    // A closed channel: the ingestor stopped, on an error of its own.
                    if last || sent.is_err() {
                        return;
                    }
                }
            })
            .map_err(|error| IngestError::Read {
                source_name: source.to_string(),
                error,
            })?;
        Ok(ParseAhead {
            chunks,
            thread: Some(thread),
            source,
        })
    }

    /// The next chunk; `None` at the end of the input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        match self.chunks.recv() {
            Ok(chunk) => chunk.map(Some),
            // The thread ended: at the end of the input, or in a panic.
            Err(_) => match self.thread.take().map(JoinHandle::join) {
                Some(Err(_)) => Err(IngestError::Internal(format!(
                    "the thread parsing {} stopped",
                    self.source
                ))),
                _ => Ok(None),
            },
        }
    }
}

fn read_chunk<R: BufRead>(
    lines: &mut JsonLines<R>,
    source: &Arc<str>,
    max_record_bytes: usize,
) -> Result<Option<Chunk>> {
    let mut chunk = Chunk {
        source: source.clone(),
        bytes: Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
        records: Vec::with_capacity(CHUNK_RECORDS),
    };
    while chunk.records.len() < CHUNK_RECORDS && chunk.bytes.len() < CHUNK_BYTES {
        let Some(record) = lines.next_record()? else {
            break;
        };
        let verdict = judge(record.data, max_record_bytes).detach();
        let start = chunk.bytes.len();
        chunk.bytes.extend_from_slice(record.data);
        let data = start..chunk.bytes.len();
        chunk.bytes.extend_from_slice(record.position.as_bytes());
        let position = data.end..chunk.bytes.len();
        chunk.records.push((data, position, verdict));
    }
    Ok((!chunk.records.is_empty()).then_some(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_give_back_every_record_in_order_with_its_verdict() {
        let mut input = String::new();
        for i in 0..10_000 {
            if i % 7 == 0 {
                input.push_str("not json\n");
            } else {
                input.push_str(&format!(
                    r#"{{"event_uuid":"u{i}","event_name":"t:s","created_at":{i}}}"#
                ));
                input.push('\n');
            }
        }
        input.push_str(&"x".repeat(300));
        let lines = JsonLines::new(std::io::Cursor::new(input.clone().into_bytes()), "in")
            .with_max_record_bytes(200);
        let mut ahead = ParseAhead::start(lines, 200).unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = ahead.next_chunk().unwrap() {
            for (record, verdict) in chunk.records() {
                assert_eq!(record.source, "in");
                got.push((
                    record.data.to_vec(),
                    record.position.to_string(),
                    verdict.clone(),
                ));
            }
        }
        let mut lines = JsonLines::new(input.as_bytes(), "in").with_max_record_bytes(200);
        let mut want = Vec::new();
        while let Some(record) = lines.next_record().unwrap() {
            let verdict = judge(record.data, 200).detach();
            want.push((record.data.to_vec(), record.position.to_string(), verdict));
        }
        assert_eq!(got.len(), 10_001);
        assert_eq!(got, want);
        assert_eq!(got.last().map(|g| &g.2), Some(&Verdict::TooLarge));
        assert!(matches!(got[0].2, Verdict::Invalid(_)));
        assert!(matches!(got[1].2, Verdict::Valid(_)));
    }

    #[test]
    fn a_read_error_reaches_the_ingestor() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk gone"))
            }
        }
        let lines = JsonLines::new(std::io::BufReader::new(Failing), "in");
        let mut ahead = ParseAhead::start(lines, 100).unwrap();
        let error = ahead.next_chunk().err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("reading in: disk gone"));
    }
}
