//! The receipt of a request, one row of `erasures`, written once (`txn`
//! `lakehouse-erase:<request id>` in its commit). It holds no personal data: the subjects
//! appear as keyed hashes only. `details` is the whole receipt as JSON.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use deltalake::kernel::Transaction;
use lakehouse_lake::app_ids::erasure_app_id;
use lakehouse_lake::files::{live_files, read_file};
use lakehouse_lake::log::txn_version;
use lakehouse_lake::schema::{REQUEST_ID, UTC};
use lakehouse_lake::write::{FileWriter, PartitionKey};
use lakehouse_lake::{Commit, CommitMetadata, Lake, Table};
use serde::{Deserialize, Serialize};

use crate::error::{EraseError, Result};
use crate::index::IndexErasure;
use crate::residue::Residue;
use crate::subjects::Subjects;
use crate::table::TableErasure;
use crate::typed::TypedErasure;

/// Copies of events the lake does not control, and when each expires.
pub const NOT_CONTROLLED: &[(&str, &str)] = &[
    (
        "Kinesis stream",
        "records stay readable on the stream until its retention ends (24 h by default, \
         up to 365 days); ingest will not load them again (each shard's progress is in raw)",
    ),
    (
        "input archives (files given to `lakehouse ingest`)",
        "kept until you delete them; a load already recorded is skipped, but `--force` \
         would load the subject again",
    ),
    (
        "Athena query results",
        "kept in the workgroup's output location until its lifecycle rule expires them",
    ),
    (
        "object versions and backups",
        "a versioned bucket keeps deleted files as noncurrent versions until its lifecycle \
         rule expires them; backups until their own expiry",
    ),
];

/// What an erasure did, for the caller and the `erasures` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub request_id: String,
    pub subject_hashes: Vec<String>,
    pub requested_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub tables: Vec<TableErasure>,
    /// The key index's entries of the events erased from staging.
    #[serde(default)]
    pub index: IndexErasure,
    /// The typed tables brought to the erased staging.
    #[serde(default)]
    pub typed: TypedErasure,
    pub residue: Residue,
    pub files_rewritten: u64,
    pub rows_removed: u64,
    pub files_purged: u64,
    pub residue_rows: u64,
    pub not_controlled: Vec<(String, String)>,
    pub dry_run: bool,
    /// Read back from `erasures`: the request had completed before.
    #[serde(default)]
    pub recorded_before: bool,
}

impl Receipt {
    pub fn new(
        subjects: &Subjects,
        requested_at: DateTime<Utc>,
        tables: Vec<TableErasure>,
        residue: Residue,
        dry_run: bool,
    ) -> Receipt {
        let sum = |f: fn(&TableErasure) -> u64| tables.iter().map(f).sum();
        Receipt {
            request_id: subjects.request_id().to_string(),
            subject_hashes: subjects.hashes().to_vec(),
            requested_at,
            completed_at: Utc::now(),
            files_rewritten: sum(|t| t.files_rewritten),
            rows_removed: sum(|t| t.rows_removed),
            files_purged: sum(|t| t.files_purged),
            residue_rows: residue.rows,
            residue,
            tables,
            index: IndexErasure::default(),
            typed: TypedErasure::default(),
            not_controlled: NOT_CONTROLLED
                .iter()
                .map(|(what, expiry)| (what.to_string(), expiry.to_string()))
                .collect(),
            dry_run,
            recorded_before: false,
        }
    }

    fn row(&self) -> Result<RecordBatch> {
        let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let long = |v: u64| Arc::new(Int64Array::from(vec![v as i64])) as ArrayRef;
        let time = |t: DateTime<Utc>| {
            Arc::new(TimestampMicrosecondArray::from(vec![t.timestamp_micros()]).with_timezone(UTC))
                as ArrayRef
        };
        let details =
            serde_json::to_string(self).map_err(|e| EraseError::InvalidRequest(e.to_string()))?;
        let columns = vec![
            text(&self.request_id),
            text(&self.subject_hashes.join(",")),
            long(self.subject_hashes.len() as u64),
            time(self.requested_at),
            time(self.completed_at),
            long(self.files_rewritten),
            long(self.rows_removed),
            long(self.files_purged),
            long(self.residue.versions_checked),
            long(self.residue_rows),
            text(&details),
        ];
        Ok(RecordBatch::try_new(
            Table::Erasures.arrow_schema(),
            columns,
        )?)
    }
}

/// The receipt of `request_id`, if the request completed before.
pub async fn find(lake: &Lake, request_id: &str) -> Result<Option<Receipt>> {
    let Some(erasures) = lake.open_existing(Table::Erasures).await? else {
        return Ok(None);
    };
    let app_id = erasure_app_id(request_id);
    if txn_version(&erasures, &app_id).await?.is_none() {
        return Ok(None);
    }
    let store = erasures.object_store();
    for add in live_files(&erasures)? {
        for batch in read_file(store.clone(), Table::Erasures, &add, None).await? {
            let (Some(ids), Some(details)) = (
                batch
                    .column_by_name(REQUEST_ID)
                    .and_then(|c| c.as_string_opt::<i32>()),
                batch
                    .column_by_name("details")
                    .and_then(|c| c.as_string_opt::<i32>()),
            ) else {
                continue;
            };
            for row in 0..batch.num_rows() {
                if ids.is_valid(row) && ids.value(row) == request_id {
                    let mut receipt: Receipt = serde_json::from_str(details.value(row))
                        .map_err(|e| EraseError::InvalidRequest(format!("a receipt: {e}")))?;
                    receipt.recorded_before = true;
                    return Ok(Some(receipt));
                }
            }
        }
    }
    Ok(None)
}

/// Appends the receipt, once per request.
pub async fn record(lake: &Lake, receipt: &Receipt) -> Result<()> {
    let erasures = lake.open(Table::Erasures).await?;
    let app_id = erasure_app_id(&receipt.request_id);
    if txn_version(&erasures, &app_id).await?.is_some() {
        return Ok(());
    }
    let writer = FileWriter::for_table(Table::Erasures, &erasures)?;
    let key = PartitionKey {
        date: 0,
        name: "".into(),
    };
    let adds = writer.write(&key, receipt.row()?).await?;
    let commit = Commit::append(&erasures, adds)?
        .with_transaction(Transaction::new(app_id, 1))
        .with_metadata(CommitMetadata::records(1));
    match commit.execute(&erasures).await {
        Ok(_) => Ok(()),
        // Another run of the same request recorded it first.
        Err(e) if e.committed_nothing() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
