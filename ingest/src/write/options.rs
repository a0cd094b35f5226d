//! How an ingest writes: its memory budget, file size and record limit, with their defaults.

use crate::rules::event::MAX_RECORD_BYTES;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Bytes of rows each table holds before writing files, those being written included:
    /// the ingest's memory, whatever the input. When rows pass it, the largest partitions
    /// become files; an input of many partitions then makes more, smaller files.
    pub buffer_bytes: usize,
    /// Rows per file at most.
    pub file_rows: usize,
    /// A record longer than this is quarantined as too large (see
    /// [`crate::rules::event::MAX_RECORD_BYTES`]).
    pub max_record_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            file_rows: 1_000_000,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }
}

/// The default memory budget of each table's rows (see [`IngestOptions::buffer_bytes`]).
pub const DEFAULT_BUFFER_BYTES: usize = 96 << 20;
