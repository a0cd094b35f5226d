//! Columnar builders that turn records into Arrow batches of the `raw` and `quarantine`
//! schemas. One row per record, in input order.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use deltalake::arrow::error::ArrowError;
use lakehouse_lake::schema::{Table, UTC};

use crate::event::Event;
use crate::source::SourceRecord;

/// Shared per-commit context of a row.
#[derive(Debug, Clone, Copy)]
pub struct RowContext {
    /// When this ingest started, Unix microseconds.
    pub ingested_at_micros: i64,
    /// Position of the record within the commit: orders records that tie on `created_at`.
    pub ingest_seq: i64,
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
            event_uuid: StringBuilder::new(),
            event_name: StringBuilder::new(),
            event_type: StringBuilder::new(),
            event_subtype: StringBuilder::new(),
            created_at: Int64Builder::new(),
            created_datetime: TimestampMicrosecondBuilder::new().with_timezone(UTC),
            event_date: Date32Builder::new(),
            ingested_at: TimestampMicrosecondBuilder::new().with_timezone(UTC),
            source: StringBuilder::new(),
            source_position: StringBuilder::new(),
            ingest_seq: Int64Builder::new(),
            payload: StringBuilder::new(),
            rows: 0,
            bytes: 0,
        }
    }
}

impl RawBatchBuilder {
    pub fn len(&self) -> usize {
        self.rows
    }

    /// String bytes appended since the last [`RawBatchBuilder::finish`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

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
        self.bytes += event.payload.len()
            + event.event_uuid.len()
            + 2 * event.event_name.len()
            + rec.source.len()
            + rec.position.len();
    }

    /// Takes the rows appended so far as a batch and starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
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
            raw: BinaryBuilder::new(),
            error: StringBuilder::new(),
            source: StringBuilder::new(),
            source_position: StringBuilder::new(),
            ingest_seq: Int64Builder::new(),
            ingested_at: TimestampMicrosecondBuilder::new().with_timezone(UTC),
            ingest_date: Date32Builder::new(),
            rows: 0,
            bytes: 0,
        }
    }
}

impl QuarantineBatchBuilder {
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Variable-length bytes appended since the last [`QuarantineBatchBuilder::finish`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a rejected record, byte for byte, with the reason.
    pub fn append(&mut self, rec: &SourceRecord, error: &str, ctx: RowContext) {
        self.raw.append_value(rec.data);
        self.error.append_value(error);
        self.source.append_value(rec.source);
        self.source_position.append_value(rec.position);
        self.ingest_seq.append_value(ctx.ingest_seq);
        self.ingested_at.append_value(ctx.ingested_at_micros);
        self.ingest_date
            .append_value(ctx.ingested_at_micros.div_euclid(86_400_000_000) as i32);
        self.rows += 1;
        self.bytes += rec.data.len() + error.len() + rec.source.len() + rec.position.len();
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
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
