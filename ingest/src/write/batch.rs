//! Builders that turn records into Arrow batches of the `raw` and `quarantine` schemas.
//! One row per record, in input order. An ingest keeps one builder per partition
//! (see [`crate::write::sink`]), so a builder starts small: thousands of them may be open.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use deltalake::arrow::error::ArrowError;
use lakehouse_lake::schema::{Table, UTC};

use crate::decode::source::SourceRecord;
use crate::rules::event::{
    Event, MICROS_PER_SECOND, event_date_of, event_subtype_of, event_type_of, offset_within,
};

/// Rows a builder has room for when it starts; it grows as rows come.
const FIRST_ROWS: usize = 8;

fn strings(bytes_per_row: usize) -> StringBuilder {
    StringBuilder::with_capacity(FIRST_ROWS, FIRST_ROWS * bytes_per_row)
}

/// The rows of one table gathered for one file.
pub trait Rows: Default + Send + 'static {
    fn len(&self) -> usize;
    /// Bytes the rows hold, about: their strings plus fixed-width values and offsets.
    fn bytes(&self) -> usize;
    /// The rows as a batch of the table's schema.
    fn finish(self) -> Result<RecordBatch, ArrowError>;
}

/// Shared per-commit context of a row.
#[derive(Debug, Clone, Copy)]
pub struct RowContext {
    /// When this ingest started, Unix microseconds.
    pub ingested_at_micros: i64,
    /// Position of the record within the commit: orders records that tie on `created_at`.
    pub ingest_seq: i64,
}

impl RowContext {
    /// Days since the Unix epoch of the ingest, in UTC: quarantine's partition.
    pub fn ingest_date(&self) -> i32 {
        self.ingested_at_micros.div_euclid(86_400_000_000) as i32
    }
}

/// Raw rows, held compactly until they become a file: the payload (the record's text) in
/// one string builder, and per row only what is not in it. The uuid and name are spans of
/// the payload (copied only when unescaping changed them), the source an index into the
/// few sources seen. The other columns are derived from these when the rows become a batch
/// ([`Rows::finish`]), on an encoder's task rather than the parsing thread; held so, a row
/// takes about a third less memory than as Arrow columns.
pub struct RawBatchBuilder {
    payload: StringBuilder,
    rows: Vec<RawRow>,
    /// Strings that are not part of their payload: positions, unescaped uuids and names.
    extra: Vec<u8>,
    sources: Vec<Arc<str>>,
    /// Variable-length bytes held (payloads and extras), the part that can overflow offsets.
    bytes: usize,
}

/// Where a string is: `len` bytes at `start` of the payloads (or of the extras).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    in_extra: bool,
}

#[derive(Debug, Clone, Copy)]
struct RawRow {
    uuid: Span,
    name: Span,
    position: Span,
    /// `subject_id`, resolved by the lake's subject paths.
    subject: Option<Span>,
    created_micros: i64,
    ingested_at_micros: i64,
    ingest_seq: i64,
    source: u32,
}

impl Default for RawBatchBuilder {
    fn default() -> Self {
        RawBatchBuilder {
            payload: strings(256),
            rows: Vec::with_capacity(FIRST_ROWS),
            extra: Vec::with_capacity(FIRST_ROWS * 8),
            sources: Vec::new(),
            bytes: 0,
        }
    }
}

/// Fixed bytes of a held raw row: its [`RawRow`] and its payload's offset.
const RAW_ROW_BYTES: usize = std::mem::size_of::<RawRow>() + 4;
/// Fixed-width bytes of a quarantine row: three 8-byte values, a date, four offsets.
const QUARANTINE_ROW_BYTES: usize = 3 * 8 + 4 + 4 * 4;

impl RawBatchBuilder {
    /// Appends a valid event whose subject is `subject`.
    pub fn append(
        &mut self,
        event: &Event<'_>,
        subject: Option<&str>,
        rec: &SourceRecord,
        ctx: RowContext,
    ) {
        let payload_start = self.payload.values_slice().len();
        self.payload.append_value(event.payload);
        let within = |s: &str, extra: &mut Vec<u8>| -> Span {
            match offset_within(s, event.payload) {
                Some(at) => span(payload_start + at, s.len(), false),
                None => {
                    let start = extra.len();
                    extra.extend_from_slice(s.as_bytes());
                    span(start, s.len(), true)
                }
            }
        };
        let extra_before = self.extra.len();
        let uuid = within(&event.event_uuid, &mut self.extra);
        let name = within(&event.event_name, &mut self.extra);
        let position = {
            let start = self.extra.len();
            self.extra.extend_from_slice(rec.position.as_bytes());
            span(start, rec.position.len(), true)
        };
        let subject = subject.map(|s| {
            let start = self.extra.len();
            self.extra.extend_from_slice(s.as_bytes());
            span(start, s.len(), true)
        });
        let source = match self.sources.last() {
            // Every record of an input shares one `source`: its address is the same.
            Some(last)
                if std::ptr::eq(last.as_ptr(), rec.source.as_ptr()) || **last == *rec.source =>
            {
                self.sources.len() - 1
            }
            _ => {
                self.sources.push(rec.source.into());
                self.sources.len() - 1
            }
        };
        self.rows.push(RawRow {
            uuid,
            name,
            position,
            subject,
            created_micros: event.created_micros,
            ingested_at_micros: ctx.ingested_at_micros,
            ingest_seq: ctx.ingest_seq,
            source: source as u32,
        });
        self.bytes += RAW_ROW_BYTES + event.payload.len() + (self.extra.len() - extra_before);
    }

    fn text(&self, span: Span) -> Result<&str, ArrowError> {
        let bytes = if span.in_extra {
            &self.extra[..]
        } else {
            self.payload.values_slice()
        };
        let range = span.start as usize..span.start as usize + span.len as usize;
        // Spans are cut from `&str`s at their own bounds, so they are whole UTF-8.
        bytes
            .get(range)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| ArrowError::ComputeError(format!("a raw row's {span:?} is not text")))
    }
}

/// A span; offsets stay below `u32::MAX` because a partition becomes a file at 1 GiB (see
/// the sink's `MAX_FILE_BYTES`) and a record is far smaller than the rest.
fn span(start: usize, len: usize, in_extra: bool) -> Span {
    Span {
        start: start as u32,
        len: len as u32,
        in_extra,
    }
}

impl Rows for RawBatchBuilder {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let n = self.rows.len();
        let total = |f: fn(&RawRow) -> Span| self.rows.iter().map(|r| f(r).len as usize).sum();
        let mut event_uuid = StringBuilder::with_capacity(n, total(|r| r.uuid));
        let mut event_name = StringBuilder::with_capacity(n, total(|r| r.name));
        let mut event_type = StringBuilder::with_capacity(n, total(|r| r.name));
        let mut event_subtype = StringBuilder::with_capacity(n, total(|r| r.name));
        let mut source_position = StringBuilder::with_capacity(n, total(|r| r.position));
        let source_bytes: usize = self
            .rows
            .iter()
            .map(|r| self.sources.get(r.source as usize).map_or(0, |s| s.len()))
            .sum();
        let mut source = StringBuilder::with_capacity(n, source_bytes);
        let mut created_at = Int64Builder::with_capacity(n);
        let mut created_datetime = TimestampMicrosecondBuilder::with_capacity(n);
        let mut event_date = Date32Builder::with_capacity(n);
        let mut ingested_at = TimestampMicrosecondBuilder::with_capacity(n);
        let mut ingest_seq = Int64Builder::with_capacity(n);
        let mut subject = StringBuilder::with_capacity(n, 0);
        for row in &self.rows {
            let name = self.text(row.name)?;
            event_uuid.append_value(self.text(row.uuid)?);
            event_name.append_value(name);
            event_type.append_value(event_type_of(name));
            event_subtype.append_option(event_subtype_of(name));
            let seconds = row.created_micros.div_euclid(MICROS_PER_SECOND);
            created_at.append_value(seconds);
            created_datetime.append_value(row.created_micros);
            event_date.append_value(event_date_of(seconds));
            ingested_at.append_value(row.ingested_at_micros);
            let row_source = self.sources.get(row.source as usize).ok_or_else(|| {
                ArrowError::ComputeError(format!("a raw row's source {} is unknown", row.source))
            })?;
            source.append_value(row_source);
            source_position.append_value(self.text(row.position)?);
            ingest_seq.append_value(row.ingest_seq);
            subject.append_option(row.subject.map(|s| self.text(s)).transpose()?);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(event_uuid.finish()),
            Arc::new(event_name.finish()),
            Arc::new(event_type.finish()),
            Arc::new(event_subtype.finish()),
            Arc::new(created_at.finish()),
            Arc::new(created_datetime.finish().with_timezone(UTC)),
            Arc::new(event_date.finish()),
            Arc::new(ingested_at.finish().with_timezone(UTC)),
            Arc::new(source.finish()),
            Arc::new(source_position.finish()),
            Arc::new(ingest_seq.finish()),
            Arc::new(self.payload.finish()),
            Arc::new(subject.finish()),
        ];
        RecordBatch::try_new(Table::Raw.arrow_schema(), columns)
    }
}

pub struct QuarantineBatchBuilder {
    raw: BinaryBuilder,
    error: StringBuilder,
    source: StringBuilder,
    source_position: StringBuilder,
    ingest_seq: Int64Builder,
    ingested_at: TimestampMicrosecondBuilder,
    ingest_date: Date32Builder,
    rows: usize,
    bytes: usize,
}

impl Default for QuarantineBatchBuilder {
    fn default() -> Self {
        QuarantineBatchBuilder {
            raw: BinaryBuilder::with_capacity(FIRST_ROWS, FIRST_ROWS * 256),
            error: strings(64),
            source: strings(32),
            source_position: strings(8),
            ingest_seq: Int64Builder::with_capacity(FIRST_ROWS),
            ingested_at: TimestampMicrosecondBuilder::with_capacity(FIRST_ROWS).with_timezone(UTC),
            ingest_date: Date32Builder::with_capacity(FIRST_ROWS),
            rows: 0,
            bytes: 0,
        }
    }
}

impl QuarantineBatchBuilder {
    /// Appends a rejected record, byte for byte, with the reason.
    pub fn append(&mut self, rec: &SourceRecord, error: &str, ctx: RowContext) {
        self.raw.append_value(rec.data);
        self.error.append_value(error);
        self.source.append_value(rec.source);
        self.source_position.append_value(rec.position);
        self.ingest_seq.append_value(ctx.ingest_seq);
        self.ingested_at.append_value(ctx.ingested_at_micros);
        self.ingest_date.append_value(ctx.ingest_date());
        self.rows += 1;
        self.bytes += QUARANTINE_ROW_BYTES
            + rec.data.len()
            + error.len()
            + rec.source.len()
            + rec.position.len();
    }
}

impl Rows for QuarantineBatchBuilder {
    fn len(&self) -> usize {
        self.rows
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.raw.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.source_position.finish()),
            Arc::new(self.ingest_seq.finish()),
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.ingest_date.finish()),
        ];
        RecordBatch::try_new(Table::Quarantine.arrow_schema(), columns)
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{Date32Type, Int64Type, TimestampMicrosecondType};

    use super::*;
    use crate::rules::event::parse_event;

    #[test]
    fn raw_rows_become_the_columns_of_raw() {
        let lines = [
            r#"{"event_uuid":"u1","event_name":"pay:order:done","created_at":1700000000.25}"#,
            r#"{"event_uuid":"u\u0032","event_name":"login","created_at":86400}"#,
        ];
        let sources = ["a.jsonl", "a.jsonl", "b.jsonl"];
        let mut rows = RawBatchBuilder::default();
        for (i, (line, source)) in lines.iter().cycle().zip(sources).enumerate() {
            let event = parse_event(line.as_bytes()).unwrap();
            let position = (i + 1).to_string();
            let record = SourceRecord {
                data: line.as_bytes(),
                source,
                position: &position,
            };
            let ctx = RowContext {
                ingested_at_micros: 7,
                ingest_seq: i as i64,
            };
            rows.append(&event, Some(source), &record, ctx);
        }
        assert_eq!(rows.len(), 3);
        let batch = rows.finish().unwrap();
        assert_eq!(batch.schema(), Table::Raw.arrow_schema());
        let text = |name: &str| -> Vec<Option<String>> {
            let c = batch.column_by_name(name).unwrap().as_string::<i32>();
            (0..c.len())
                .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
                .collect()
        };
        let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        assert_eq!(text("event_uuid"), some(&["u1", "u2", "u1"]));
        assert_eq!(text("event_type"), some(&["pay", "login", "pay"]));
        assert_eq!(
            text("event_subtype"),
            vec![Some("order".into()), None, Some("order".into())]
        );
        assert_eq!(text("source"), some(&sources));
        assert_eq!(text("source_position"), some(&["1", "2", "3"]));
        assert_eq!(text("payload"), some(&[lines[0], lines[1], lines[0]]));
        assert_eq!(text("subject_id"), some(&sources));
        let int = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        };
        assert_eq!(
            int("created_at"),
            vec![1_700_000_000, 86_400, 1_700_000_000]
        );
        assert_eq!(int("ingest_seq"), vec![0, 1, 2]);
        let micros = batch
            .column_by_name("created_datetime")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(micros.value(0), 1_700_000_000_250_000);
        let dates = batch
            .column_by_name("event_date")
            .unwrap()
            .as_primitive::<Date32Type>();
        assert_eq!(dates.values().to_vec(), vec![19_675, 1, 19_675]);
    }
}
