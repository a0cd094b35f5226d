//! Per-(table, shard) checkpoints in DynamoDB: the last Kinesis sequence number committed
//! to a table, and the Delta `txn` version of that commit.
//!
//! A commit is bracketed: `begin` records the intended (sequence, version) as *pending*,
//! the Delta commit carries `txn(app, version)`, `complete` moves pending to committed.
//! If the process dies between the Delta commit and `complete`, the next invocation finds
//! the pending version already in the Delta log and completes it (see [`reconcile`]).
//! Every write is conditional on what was read, so two writers of one shard cannot both
//! move it; the Delta txn conflict check backs that up at commit time.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use lakehouse_aws::{describe_sdk_error, is_condition_failure};

use crate::sequence::SequenceNumber;

const KEY: &str = "id";
const SEQUENCE: &str = "sequence_number";
const VERSION: &str = "txn_version";
const PENDING_SEQUENCE: &str = "pending_sequence_number";
const PENDING_VERSION: &str = "pending_txn_version";
/// The first record of the batch that reached `sequence_number` (and its pending twin):
/// a redelivery of that batch starts at or after it.
const FIRST: &str = "first_sequence_number";
const PENDING_FIRST: &str = "pending_first_sequence_number";
const UPDATED_AT: &str = "updated_at";
/// DynamoDB TTL attribute (epoch seconds): an item unwritten for longer than Kinesis can
/// keep a record (365 days) belongs to a shard that is gone, and no batch of it can come
/// back, so the table may drop it.
const EXPIRES_AT: &str = "expires_at";
const EXPIRY_DAYS: i64 = 400;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("DynamoDB {operation} on {table}: {message}")]
    Dynamo {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("checkpoint {key} was changed by another writer (is ParallelizationFactor > 1?)")]
    Conflict { key: String },
    #[error("checkpoint {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "checkpoint {key} says Delta txn version {checkpoint} was committed, but the table is at {table}: \
         was the table recreated? Delete the checkpoint item to start the shard afresh"
    )]
    AheadOfTable {
        key: String,
        checkpoint: i64,
        table: i64,
    },
}

/// A commit that was begun: the batch's records `first..=sequence` go in with Delta txn
/// `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub sequence: SequenceNumber,
    pub version: i64,
    /// `None` only for items written before it was recorded.
    pub first: Option<SequenceNumber>,
}

/// One (table, shard) item as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Everything up to and including this sequence number is in the table.
    pub sequence: Option<SequenceNumber>,
    /// The Delta txn version of the commit that wrote `sequence`; 0 before the first.
    pub version: i64,
    /// The first record of that commit's batch; `None` before the first commit, for items
    /// written before it was recorded, and after a lost item was adopted.
    pub first: Option<SequenceNumber>,
    pub pending: Option<Pending>,
}

/// What [`reconcile`] found when comparing a checkpoint with the Delta log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// DynamoDB and Delta agree.
    InSync,
    /// The pending commit is in the Delta log: it must be completed in DynamoDB.
    PendingCommitted(Pending),
    /// The Delta log has a txn version DynamoDB never heard of (its item was lost): the
    /// checkpoint moves to that version with its old sequence number, so records after it
    /// may land twice in `raw` (compaction removes them from `staging`).
    Lost { delta_version: i64 },
}

/// Compares a checkpoint with the Delta txn version for the same app id and returns the
/// checkpoint to work from, and what had to be repaired.
pub fn reconcile(
    key: &str,
    mut checkpoint: Checkpoint,
    delta_version: i64,
) -> Result<(Checkpoint, Reconciled), CheckpointError> {
    if let Some(pending) = checkpoint.pending.take() {
        if delta_version >= pending.version {
            checkpoint.sequence = Some(pending.sequence.clone());
            checkpoint.version = pending.version;
            checkpoint.first = pending.first.clone();
            return Ok((checkpoint, Reconciled::PendingCommitted(pending)));
        }
        // Begun but never committed: forget it. Keep it visible to the conditional write.
        checkpoint.pending = Some(pending);
    }
    match delta_version.cmp(&checkpoint.version) {
        std::cmp::Ordering::Equal => Ok((checkpoint, Reconciled::InSync)),
        std::cmp::Ordering::Greater => {
            checkpoint.version = delta_version;
            checkpoint.first = None;
            Ok((checkpoint, Reconciled::Lost { delta_version }))
        }
        std::cmp::Ordering::Less => Err(CheckpointError::AheadOfTable {
            key: key.to_string(),
            checkpoint: checkpoint.version,
            table: delta_version,
        }),
    }
}

#[derive(Clone, Debug)]
pub struct CheckpointStore {
    client: Client,
    table_name: String,
}

impl CheckpointStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        CheckpointStore {
            client,
            table_name: table_name.into(),
        }
    }

    fn dynamo_error<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> CheckpointError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        CheckpointError::Dynamo {
            operation,
            table: self.table_name.clone(),
            message: describe_sdk_error(&error),
        }
    }

    /// Reads the item with a strongly consistent read; a missing item is a fresh shard.
    pub async fn load(&self, key: &str) -> Result<Checkpoint, CheckpointError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(KEY, AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.dynamo_error("GetItem", e))?;
        match output.item() {
            None => Ok(Checkpoint::default()),
            Some(item) => parse_item(item).map_err(|reason| CheckpointError::Corrupt {
                key: key.to_string(),
                reason,
            }),
        }
    }

    /// Records `pending` before its Delta commit. Fails if anyone moved the item since
    /// `seen` was read.
    pub async fn begin(
        &self,
        key: &str,
        seen: &Checkpoint,
        pending: &Pending,
    ) -> Result<(), CheckpointError> {
        let mut condition = version_condition(seen.version);
        let mut request = self
            .update(key)
            .update_expression(format!(
                "SET {PENDING_SEQUENCE} = :ps, {PENDING_VERSION} = :pv, {PENDING_FIRST} = :pf, \
                 {UPDATED_AT} = :now, {EXPIRES_AT} = :ttl"
            ))
            .expression_attribute_values(":ps", AttributeValue::S(pending.sequence.to_string()))
            .expression_attribute_values(":pv", number(pending.version))
            .expression_attribute_values(":pf", AttributeValue::S(first_text(&pending.first)));
        match &seen.pending {
            Some(stale) => {
                condition.push_str(&format!(" AND {PENDING_SEQUENCE} = :stale"));
                request = request.expression_attribute_values(
                    ":stale",
                    AttributeValue::S(stale.sequence.to_string()),
                );
            }
            None => condition.push_str(&format!(" AND attribute_not_exists({PENDING_SEQUENCE})")),
        }
        if seen.version > 0 {
            request = request.expression_attribute_values(":v", number(seen.version));
        }
        self.conditional(key, "UpdateItem", request.condition_expression(condition))
            .await
    }

    /// Moves `pending` to committed, from committed version `from`.
    pub async fn complete(
        &self,
        key: &str,
        from: i64,
        pending: &Pending,
    ) -> Result<(), CheckpointError> {
        let mut request = self
            .update(key)
            .update_expression(format!(
                "SET {SEQUENCE} = :s, {VERSION} = :nv, {FIRST} = :f, {UPDATED_AT} = :now, \
                 {EXPIRES_AT} = :ttl REMOVE {PENDING_SEQUENCE}, {PENDING_VERSION}, {PENDING_FIRST}"
            ))
            .expression_attribute_values(":s", AttributeValue::S(pending.sequence.to_string()))
            .expression_attribute_values(":nv", number(pending.version))
            .expression_attribute_values(":f", AttributeValue::S(first_text(&pending.first)))
            .condition_expression(format!(
                "{} AND {PENDING_VERSION} = :nv",
                version_condition(from)
            ));
        if from > 0 {
            request = request.expression_attribute_values(":v", number(from));
        }
        self.conditional(key, "UpdateItem", request).await
    }

    /// Moves a checkpoint whose item was lost up to the Delta log's version.
    pub async fn adopt(&self, key: &str, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let mut set = format!("{VERSION} = :nv, {UPDATED_AT} = :now, {EXPIRES_AT} = :ttl");
        let mut request = self
            .update(key)
            .expression_attribute_values(":nv", number(checkpoint.version));
        if let Some(sequence) = &checkpoint.sequence {
            set.push_str(&format!(", {SEQUENCE} = :s"));
            request =
                request.expression_attribute_values(":s", AttributeValue::S(sequence.to_string()));
        }
        let request = request
            .update_expression(format!("SET {set}"))
            .condition_expression(format!(
                "attribute_not_exists({VERSION}) OR {VERSION} < :nv"
            ));
        self.conditional(key, "UpdateItem", request).await
    }

    /// An update of one item, stamped with `:now` for `updated_at` and `:ttl` for
    /// `expires_at`.
    fn update(
        &self,
        key: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key(KEY, AttributeValue::S(key.to_string()))
            .expression_attribute_values(":now", now())
            .expression_attribute_values(
                ":ttl",
                number(chrono::Utc::now().timestamp() + EXPIRY_DAYS * 86_400),
            )
    }

    async fn conditional(
        &self,
        key: &str,
        operation: &'static str,
        request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<(), CheckpointError> {
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(CheckpointError::Conflict {
                key: key.to_string(),
            }),
            Err(e) => Err(self.dynamo_error(operation, e)),
        }
    }
}

/// The item still holds committed version `version` (0: no commit yet).
fn version_condition(version: i64) -> String {
    if version == 0 {
        format!("attribute_not_exists({VERSION})")
    } else {
        format!("{VERSION} = :v")
    }
}

/// A first sequence number as stored: empty when unknown.
fn first_text(first: &Option<SequenceNumber>) -> String {
    first.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn now() -> AttributeValue {
    AttributeValue::S(chrono::Utc::now().to_rfc3339())
}

fn parse_item(item: &HashMap<String, AttributeValue>) -> Result<Checkpoint, String> {
    let string = |name: &str| -> Result<Option<&String>, String> {
        item.get(name)
            .map(|v| v.as_s().map_err(|_| format!("{name} is not a string")))
            .transpose()
    };
    let int = |name: &str| -> Result<Option<i64>, String> {
        item.get(name)
            .map(|v| {
                v.as_n()
                    .map_err(|_| format!("{name} is not a number"))
                    .and_then(|n| n.parse::<i64>().map_err(|e| format!("{name}: {e}")))
            })
            .transpose()
    };
    let sequence = string(SEQUENCE)?
        .map(|s| SequenceNumber::parse(s))
        .transpose()?;
    let first = |name: &str| -> Result<Option<SequenceNumber>, String> {
        match string(name)? {
            Some(s) if !s.is_empty() => SequenceNumber::parse(s).map(Some),
            _ => Ok(None),
        }
    };
    let pending = match (string(PENDING_SEQUENCE)?, int(PENDING_VERSION)?) {
        (Some(s), Some(version)) => Some(Pending {
            sequence: SequenceNumber::parse(s)?,
            version,
            first: first(PENDING_FIRST)?,
        }),
        (None, None) => None,
        _ => return Err("half a pending commit".into()),
    };
    Ok(Checkpoint {
        sequence,
        version: int(VERSION)?.unwrap_or(0),
        first: first(FIRST)?,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn a_pending_commit_found_in_delta_is_completed() {
        let checkpoint = Checkpoint {
            sequence: Some(seq("10")),
            version: 3,
            first: Some(seq("6")),
            pending: Some(Pending {
                sequence: seq("20"),
                version: 4,
                first: Some(seq("11")),
            }),
        };
        let (now, what) = reconcile("k", checkpoint.clone(), 4).unwrap();
        assert_eq!((now.sequence, now.version), (Some(seq("20")), 4));
        assert_eq!(now.first, Some(seq("11")));
        assert!(matches!(what, Reconciled::PendingCommitted(_)));
        // Not in Delta: the old checkpoint stands and the stale pending is kept for the
        // conditional overwrite.
        let (now, what) = reconcile("k", checkpoint.clone(), 3).unwrap();
        assert_eq!(now, checkpoint);
        assert_eq!(what, Reconciled::InSync);
    }

    #[test]
    fn lost_and_impossible_states_are_told_apart() {
        let (now, what) = reconcile("k", Checkpoint::default(), 7).unwrap();
        assert_eq!(now.version, 7);
        assert_eq!(what, Reconciled::Lost { delta_version: 7 });
        let ahead = Checkpoint {
            sequence: Some(seq("5")),
            version: 9,
            first: None,
            pending: None,
        };
        assert!(matches!(
            reconcile("k", ahead, 2),
            Err(CheckpointError::AheadOfTable { .. })
        ));
    }
}
