//! The ingest stage and the table contract every other stage builds on.
//!
//! - [`event`]: the event rules (what is valid, how an event is transformed).
//! - [`schema`]: the one definition of the `raw`, `staging` and `quarantine` tables.
//! - [`lake`]: opening a lake (local folder or `s3://`) and its tables.
//! - [`source`]: reading records from JSON Lines or Lambda Kinesis event documents.
//! - [`Ingestor`]: turns records into one Delta commit on `raw` and `quarantine`.

pub mod batch;
pub mod error;
pub mod event;
pub mod lake;
pub mod schema;
mod sink;
pub mod source;
mod writer;

pub use error::IngestError;
pub use lake::Lake;
pub use schema::Table;
pub use source::SourceRecord;
pub use writer::{IngestOptions, IngestSummary, Ingestor};
