//! The ingest stage and the table contract every other stage builds on.
//!
//! - [`event`]: the event rules (what is valid, how an event is transformed).
//! - [`schema`]: the one definition of the `raw`, `staging` and `quarantine` tables.
//! - [`lake`]: opening a lake (local folder or `s3://`) and its tables.
//! - [`source`]: reading records from JSON Lines or Lambda Kinesis event documents.
//! - [`Ingestor`]: turns records into one Delta commit on `raw` and `quarantine`.
//! - [`stream`]: the Lambda path: exactly-once Kinesis batches per shard, with
//!   [`checkpoint`]s in DynamoDB, [`kpl`] de-aggregation and [`sequence`] numbers.
//! - [`runtime`]: what both Lambdas share (environment, logs, metrics, AWS config).

pub mod batch;
pub mod checkpoint;
pub mod error;
pub mod event;
pub mod kpl;
pub mod lake;
pub mod runtime;
pub mod schema;
pub mod sequence;
mod sink;
pub mod source;
pub mod stream;
mod writer;

pub use error::IngestError;
pub use lake::Lake;
pub use schema::Table;
pub use sink::{Committed, PreparedAppend};
pub use source::SourceRecord;
pub use writer::{Destinations, IngestOptions, IngestSummary, Ingestor, PreparedIngest};
