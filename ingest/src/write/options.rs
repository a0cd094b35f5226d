//! How an ingest writes: its memory budget, file size and record limit, with their
//! defaults; and the ones a user sets, each once as a flag of `lakehouse ingest` and a
//! `LAKEHOUSE_*` variable the ingest Lambda reads ([`IngestFlags`]).

use clap::Args;

use crate::rules::event::{MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT};

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

/// The ingest options a user sets: flags of `lakehouse ingest` and, with the same names,
/// the ingest Lambda's `LAKEHOUSE_*` variables.
#[derive(Args, Debug, Clone)]
pub struct IngestFlags {
    /// A record longer than this is quarantined as too large, with its first 4 KiB.
    #[arg(
        long,
        env = "LAKEHOUSE_MAX_RECORD_BYTES",
        default_value_t = MAX_RECORD_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1..=MAX_RECORD_BYTES_LIMIT as u64)
    )]
    pub max_record_bytes: u64,
    /// MiB of rows each table holds before writing files: the ingest's memory. Less
    /// makes more, smaller files when an input spans many partitions.
    #[arg(
        long,
        env = "LAKEHOUSE_BUFFER_MB",
        default_value_t = (DEFAULT_BUFFER_BYTES >> 20) as u64,
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    pub buffer_mb: u64,
}

impl IngestFlags {
    /// The options these flags set (what no flag sets at its default).
    pub fn options(&self) -> IngestOptions {
        IngestOptions {
            // Bounded by the flags' parsers to 1 GiB and 64 GiB.
            max_record_bytes: usize::try_from(self.max_record_bytes).unwrap_or(usize::MAX),
            buffer_bytes: usize::try_from(self.buffer_mb << 20).unwrap_or(usize::MAX),
            ..IngestOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        flags: IngestFlags,
    }

    #[test]
    fn the_flags_unset_are_the_options_defaults() {
        let options = Flags::try_parse_from(["ingest"])
            .expect("parse")
            .flags
            .options();
        let defaults = IngestOptions::default();
        assert_eq!(options.max_record_bytes, defaults.max_record_bytes);
        assert_eq!(options.buffer_bytes, defaults.buffer_bytes);
        assert_eq!(options.file_rows, defaults.file_rows);
    }
}
