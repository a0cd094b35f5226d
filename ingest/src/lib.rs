//! The ingest stage: records in, one Delta commit on `raw` (valid events) and one on
//! `quarantine` (everything else, byte for byte, with the reason) out.
//!
//! - [`rules`]: the event rules and the verdict on a record.
//! - [`decode`]: records out of JSON Lines, Kinesis event documents (the one decoder, KPL
//!   included) and archives.
//! - [`write`]: the [`Ingestor`]: records into Parquet files within a memory budget, one
//!   commit per table through the lake's one commit path.
//! - [`loading`]: inputs by path or glob, their identity, the backfill that loads each once.
//! - [`grouped`]: the committer of grouped mode.
//! - [`redrive`]: quarantined records through the current rules into raw, once each.
//!
//! What other crates use is re-exported here; the rest stays inside.

mod decode;
pub mod error;
mod grouped;
mod loading;
#[cfg(feature = "redrive")]
pub mod redrive;
mod rules;
mod write;

mod fuzz;

pub use decode::{kinesis, kpl, source};
pub use grouped::committer;
// Grouped commits belong to the lake's one commit path; ingest's committer drives them.
pub use lakehouse_lake::{manifest, manifest_log};
pub use loading::{backfill, inputs, load};
pub use rules::event;

pub use decode::source::SourceRecord;
pub use error::IngestError;
pub use write::options::{DEFAULT_BUFFER_BYTES, IngestFlags, IngestOptions};
pub use write::sink::PreparedAppend;
pub use write::writer::{Destinations, IngestSummary, Ingestor, PreparedIngest};
