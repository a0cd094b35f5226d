//! The ingest stage: records in, one Delta commit on `raw` (valid events) and one on
//! `quarantine` (everything else, byte for byte, with the reason) out.
//!
//! - [`event`]: the event rules (what is valid, how an event is transformed).
//! - [`source`]: records read from JSON Lines; [`ahead`]: read and judged on a thread of
//!   their own.
//! - [`kinesis`]: the one Kinesis decoder, for the CLI and the ingest Lambda alike
//!   (event documents, base64, [`kpl`] de-aggregation, lineage).
//! - [`inputs`]: stdin, files and S3 objects by glob; [`archive`]: gzip and zstd.
//! - [`load`]: the identity of an input, for idempotent loads; [`backfill`]: inputs loaded
//!   once each, committed in groups (`lakehouse ingest`).
//! - [`manifest`], [`manifest_log`], [`committer`]: grouped mode, where writers hand their
//!   files over as manifests and one committer per table lands many in one commit.
//! - [`redrive`]: quarantined records through the current rules into raw, once each.
//! - [`Ingestor`]: turns records into Parquet files and commits them through the lake's
//!   one commit path.

pub mod ahead;
pub mod archive;
pub mod backfill;
pub mod batch;
pub mod committer;
pub mod error;
pub mod event;
pub mod inputs;
pub mod kinesis;
pub mod kpl;
pub mod load;
// Grouped commits belong to the lake's one commit path; ingest's committer drives them.
pub use lakehouse_lake::{manifest, manifest_log};
mod options;
pub mod redrive;
mod sink;
pub mod source;
mod writer;

mod fuzz;

pub use error::IngestError;
pub use options::{DEFAULT_BUFFER_BYTES, IngestOptions};
pub use sink::PreparedAppend;
pub use source::SourceRecord;
pub use writer::{Destinations, IngestSummary, Ingestor, PreparedIngest};
