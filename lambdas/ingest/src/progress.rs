//! Where a shard stands in each table, and how its next batch lands there: behind one
//! interface, [`ShardProgress`], the two ways ([`crate::direct`], [`crate::grouped`]).

use async_trait::async_trait;
use deltalake::DeltaTable;
use lakehouse_ingest::PreparedAppend;
use lakehouse_lake::Table;

use crate::checkpoint::Checkpoint;
use crate::error::StreamError;
use crate::sequence::SequenceNumber;

/// What one invocation did, for logs and metrics.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BatchReport {
    pub records: u64,
    pub user_records: u64,
    pub bytes: u64,
    pub appended: u64,
    pub quarantined: u64,
    pub already_committed: u64,
    pub commits: u64,
    /// Grouped mode: manifests handed over to the tables' committers.
    pub handed_over: u64,
    pub commit_millis: f64,
    pub commit_retries: u64,
    pub repaired_checkpoints: u64,
    pub failed_shards: u64,
}

/// One table's side of a shard: its checkpoint key, Delta app id and checkpoint.
pub struct TableState {
    pub table: Table,
    pub key: String,
    pub app_id: String,
    pub checkpoint: Checkpoint,
}

/// A shard's progress in a table: where it stands, and landing its next batch.
#[async_trait]
pub trait ShardProgress: Send + Sync {
    /// Where the shard (`app_id`, its checkpoint `key`) stands in `table`, repaired from
    /// the Delta log `delta` when a crash left it behind.
    async fn load(
        &self,
        table: Table,
        delta: &DeltaTable,
        key: String,
        app_id: String,
        report: &mut BatchReport,
    ) -> Result<TableState, StreamError>;

    /// Lands the table's files of the batch `first..=last` as the shard's next version and
    /// moves `state` on. Called only when the batch has rows for the table.
    async fn land(
        &self,
        state: &mut TableState,
        append: &PreparedAppend,
        first: &SequenceNumber,
        last: &SequenceNumber,
        report: &mut BatchReport,
    ) -> Result<(), StreamError>;
}
