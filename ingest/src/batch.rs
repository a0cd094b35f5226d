//! Columnar builders that turn records into Arrow batches of the `raw` and `quarantine`
//! schemas. One row per record, in input order. An ingest keeps one builder per partition
//! (see [`crate::sink`]), so a builder starts small: thousands of them may be open.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use deltalake::arrow::error::ArrowError;
use lakehouse_lake::schema::{Table, UTC};

use crate::event::Event;
use crate::source::SourceRecord;

/// Rows a builder has room for when it starts; it grows as rows come.
const FIRST_ROWS: usize = 8;

fn strings(bytes_per_row: usize) -> StringBuilder {
    StringBuilder::with_capacity(FIRST_ROWS, FIRST_ROWS * bytes_per_row)
}

/// The rows of one table gathered for one file.
pub trait Rows: Default + Send + 'static {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes the rows hold, about: their strings plus fixed-width values and offsets.
    fn bytes(&self) -> usize;
    /// Takes the rows appended so far as a batch of the table's schema and starts empty.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
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

pub struct RawBatchBuilder {
    event_uuid: StringBuilder,
    event_name: StringBuilder,
    event_type: StringBuilder,
    event_subtype: StringBuilder,
    created_at: Int64Builder,
    created_datetime: TimestampMicrosecondBuilder,
    event_date: Date32Builder,
    ingested_at: TimestampMicrosecondBuilder,
    source: StringBuilder,
    source_position: StringBuilder,
    ingest_seq: Int64Builder,
    payload: StringBuilder,
    rows: usize,
    /// Variable-length bytes appended (strings), the part that can overflow offsets.
    bytes: usize,
}

impl Default for RawBatchBuilder {
    fn default() -> Self {
        RawBatchBuilder {
            event_uuid: strings(36),
            event_name: strings(32),
            event_type: strings(16),
            event_subtype: strings(16),
            created_at: Int64Builder::with_capacity(FIRST_ROWS),
            created_datetime: TimestampMicrosecondBuilder::with_capacity(FIRST_ROWS)
                .with_timezone(UTC),
            event_date: Date32Builder::with_capacity(FIRST_ROWS),
            ingested_at: TimestampMicrosecondBuilder::with_capacity(FIRST_ROWS).with_timezone(UTC),
            source: strings(32),
            source_position: strings(8),
            ingest_seq: Int64Builder::with_capacity(FIRST_ROWS),
            payload: strings(256),
            rows: 0,
            bytes: 0,
        }
    }
}

/// Fixed-width bytes of a raw row: five 8-byte values, a date, seven string offsets.
const RAW_ROW_BYTES: usize = 5 * 8 + 4 + 7 * 4;
/// Likewise for quarantine: three 8-byte values, a date, four offsets.
const QUARANTINE_ROW_BYTES: usize = 3 * 8 + 4 + 4 * 4;

impl RawBatchBuilder {
    /// Appends a valid event.
    pub fn append(&mut self, event: &Event<'_>, rec: &SourceRecord, ctx: RowContext) {
        self.event_uuid.append_value(&event.event_uuid);
        self.event_name.append_value(&event.event_name);
        self.event_type.append_value(event.event_type());
        self.event_subtype.append_option(event.event_subtype());
        self.created_at.append_value(event.created_at);
        self.created_datetime.append_value(event.created_micros);
        self.event_date.append_value(event.event_date_days());
        self.ingested_at.append_value(ctx.ingested_at_micros);
        self.source.append_value(rec.source);
        self.source_position.append_value(rec.position);
        self.ingest_seq.append_value(ctx.ingest_seq);
        self.payload.append_value(event.payload);
        self.rows += 1;
        self.bytes += RAW_ROW_BYTES
            + event.payload.len()
            + event.event_uuid.len()
            + 2 * event.event_name.len()
            + rec.source.len()
            + rec.position.len();
    }
}

impl Rows for RawBatchBuilder {
    fn len(&self) -> usize {
        self.rows
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_uuid.finish()),
            Arc::new(self.event_name.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.event_subtype.finish()),
            Arc::new(self.created_at.finish()),
            Arc::new(self.created_datetime.finish()),
            Arc::new(self.event_date.finish()),
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.source_position.finish()),
            Arc::new(self.ingest_seq.finish()),
            Arc::new(self.payload.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
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

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.raw.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.source_position.finish()),
            Arc::new(self.ingest_seq.finish()),
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.ingest_date.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(Table::Quarantine.arrow_schema(), columns)
    }
}
