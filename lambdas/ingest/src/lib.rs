//! The ingest Lambda's exactly-once protocol, over the ingest stage.
//!
//! - [`stream`]: one invocation's Kinesis batch, shard by shard, into `raw` and
//!   `quarantine`, decoded by `lakehouse_ingest::kinesis` exactly as the CLI decodes.
//! - [`checkpoint`]: per-(table, shard) checkpoints in DynamoDB, reconciled with the
//!   Delta `txn` of each commit.
//! - [`error`]: what can fail in an invocation's batch.
//! - [`progress`]: where a shard stands in a table and how its batch lands there, one
//!   interface for [`direct`] mode (a commit per batch, checkpoints in DynamoDB) and
//!   [`grouped`] mode (manifests handed to the table's committer).
//! - [`order`]: telling a redelivered batch from one out of order.
//! - [`sequence`]: Kinesis sequence numbers, compared as numbers.

pub mod checkpoint;
pub mod direct;
pub mod error;
pub mod grouped;
pub mod order;
pub mod progress;
pub mod sequence;
pub mod stream;
