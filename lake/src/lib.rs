//! The table contract every stage builds on.
//!
//! - [`app_ids`]: every `txn` app id a writer records progress under.
//! - [`schema`]: the lake's tables, their columns, partitioning and Parquet writer
//!   properties: the one definition used everywhere.
//! - [`Lake`]: a lake location (local folder or `s3://`), opening and creating its tables.
//! - [`files`]: reading a table's data files back with their partition values.
//! - [`keys`]: the key index's keys and buckets; [`index_progress`]: the staging version it
//!   holds, and a build under way.
//! - [`clustered`]: raw's files in key-bucket order, and reading one range of buckets.
//! - [`write`]: writing a partition's rows as a data file, the same way for every stage.
//! - [`commit`]: the one path by which every writer commits: actions, application
//!   transactions and typed commit metadata in a single Delta commit, checked against
//!   concurrent commits by the lake's own conflict rules.
//! - [`ranges`]: the ranges of fanned-out compaction, by type or by key.
//! - [`point_read`]: reading only the pages of a key-sorted file that may hold given keys.
//! - [`log`]: reading a table's log one commit at a time.
//! - [`progress`]: how far compaction has consumed raw, read from the `txn`s every kind of
//!   run records, and staging's last merge and sweep.
//! - [`manifest`], [`manifest_log`]: grouped commits: the manifests writers hand over, where
//!   they wait, and the one commit that lands many of them.
//! - [`read`]: the tables in DataFusion, read-only: no SQL writes past the commit path.
//! - [`redrive`]: how a quarantined record re-driven into raw names its origin.
//!
//! `read` and `redrive` need the `datafusion` feature: the stages that query enable it,
//! and the ingest and commit Lambdas, which only write, link no SQL engine.
//! - [`subject`]: who an event belongs to (the subject paths), for erasure.
//! - [`typed`]: one table per event type with a typed column per payload field, kept
//!   equal to staging.
//!
//! Nothing here knows of Lambda, Kinesis, DynamoDB or Glue.

pub mod app_ids;
pub mod clustered;
pub mod commit;
mod conflict;
mod error;
pub mod files;
pub mod index_progress;
pub mod keys;
pub mod lake;
pub mod log;
pub mod manifest;
pub mod manifest_log;
mod object_reader;
pub mod point_read;
pub mod progress;
pub mod ranges;
#[cfg(feature = "datafusion")]
pub mod read;
#[cfg(feature = "datafusion")]
pub mod redrive;
pub mod schema;
pub mod subject;
pub mod typed;
pub mod write;

pub use commit::{BatchLineage, Commit, CommitMetadata, Committed};
pub use error::{LakeError, Result};
pub use lake::{DEFAULT_RETENTION_DAYS, DEFAULT_TARGET_FILE_SIZE, Lake};
pub use ranges::{KEY_RANGE_TAG, RunRange, SplitBy};
pub use schema::{RawLayout, Table};
