//! The erased events' entries out of the key index (`staging_keys`): the index holds every
//! key staging holds, and after an erasure staging no longer holds those. Their keys are
//! in staging's erasure commit (`erasedKeys` in its commit metadata), so a rerun after a
//! crash between the two commits finds them there. Left in, they would cost a merge a
//! read (it compares the uuids themselves) and make `keys check` report them as extra.

use std::collections::HashSet;

use deltalake::DeltaTable;
use deltalake::arrow::array::{AsArray, BooleanArray};
use deltalake::arrow::compute::{concat_batches, filter_record_batch};
use deltalake::arrow::datatypes::Int64Type;
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::DeltaOperation;
use lakehouse_lake::files::{live_files, read_file, remove_of};
use lakehouse_lake::keys::{Key, bucket_name};
use lakehouse_lake::log::discard_files;
use lakehouse_lake::point_read::read_keyed;
use lakehouse_lake::schema::{KEY_BUCKET, KEY_HI, KEY_LO};
use lakehouse_lake::write::FileWriter;
use lakehouse_lake::{Commit, CommitMetadata, Lake, Table};

use crate::error::{EraseError, Result};
use crate::subjects::Subjects;
use crate::table::{ATTEMPTS, purge};

/// What the index's erasure did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexErasure {
    pub version: Option<u64>,
    pub entries_removed: u64,
    pub files_rewritten: u64,
}

/// Removes `keys`' entries from the index, once per request.
pub async fn erase_keys(lake: &Lake, subjects: &Subjects, keys: &[Key]) -> Result<IndexErasure> {
    let mut report = IndexErasure::default();
    let Some(mut index) = lake.open_existing(Table::Keys).await? else {
        return Ok(report);
    };
    if keys.is_empty() {
        return Ok(report);
    }
    let app_id = subjects.app_id();
    let erased: HashSet<Key> = keys.iter().copied().collect();
    for _ in 0..ATTEMPTS {
        if lakehouse_lake::log::txn_version(&index, &app_id)
            .await?
            .is_some()
        {
            return Ok(report);
        }
        let affected = files_holding(&index, &erased).await?;
        let (actions, removed) = rewrite(&index, &affected, &erased).await?;
        report.files_rewritten = affected.len() as u64;
        report.entries_removed = removed;
        let operation = DeltaOperation::Delete {
            predicate: Some(format!("erasure {}", subjects.request_id())),
        };
        let commit = Commit::new(operation, actions)
            .with_transaction(Transaction::new(app_id.clone(), 1))
            .with_metadata(CommitMetadata {
                source: Some(app_id.clone()),
                rows_removed: Some(removed),
                ..CommitMetadata::default()
            });
        match commit.execute(&index).await {
            Ok(committed) => {
                report.version = Some(committed.version);
                purge(&index, &affected).await?;
                return Ok(report);
            }
            Err(e) if e.committed_nothing() => {
                index.update_incremental(None).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(EraseError::Contended {
        table: Table::Keys.name(),
        attempts: ATTEMPTS,
    })
}

/// The index files of the keys' buckets that hold one of them.
async fn files_holding(index: &DeltaTable, keys: &HashSet<Key>) -> Result<Vec<Add>> {
    let buckets: HashSet<String> = keys.iter().map(|k| bucket_name(k.bucket())).collect();
    let mut his: Vec<i64> = keys.iter().map(|k| k.hi).collect();
    his.sort_unstable();
    his.dedup();
    let store = index.object_store();
    let mut affected = Vec::new();
    for add in live_files(index)? {
        let in_bucket = add
            .partition_values
            .get(KEY_BUCKET)
            .and_then(|v| v.as_deref())
            .is_some_and(|b| buckets.contains(b));
        if !in_bucket {
            continue;
        }
        let (rows, _) = read_keyed(
            store.clone(),
            Table::Keys,
            &add,
            &[KEY_HI, KEY_LO],
            KEY_HI,
            &his,
        )
        .await?;
        if rows.iter().any(|b| erased_rows(b, keys).true_count() > 0) {
            affected.push(add);
        }
    }
    Ok(affected)
}

/// Which rows of an index batch are entries of `keys`.
fn erased_rows(batch: &deltalake::arrow::array::RecordBatch, keys: &HashSet<Key>) -> BooleanArray {
    let column = |name| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
    };
    let (Some(hi), Some(lo)) = (column(KEY_HI), column(KEY_LO)) else {
        return BooleanArray::from(vec![false; batch.num_rows()]);
    };
    hi.iter()
        .zip(lo.iter())
        .map(|(h, l)| {
            Some(matches!((h, l), (Some(hi), Some(lo)) if keys.contains(&Key { hi, lo })))
        })
        .collect()
}

/// The affected files written again without the keys: actions and entries removed. Each
/// new file keeps its original's tags (the kind of run it is). A failure part way deletes
/// the files written so far (the commit deletes them if it does not land).
async fn rewrite(
    index: &DeltaTable,
    affected: &[Add],
    keys: &HashSet<Key>,
) -> Result<(Vec<Action>, u64)> {
    let store = index.object_store();
    let writer = FileWriter::for_table(Table::Keys, index)?;
    let (mut actions, mut written, mut removed) = (Vec::new(), Vec::new(), 0);
    for add in affected {
        let mut kept = Vec::new();
        for batch in read_file(store.clone(), Table::Keys, add, None).await? {
            let erased = erased_rows(&batch, keys);
            removed += erased.true_count() as u64;
            let keep = deltalake::arrow::compute::not(&erased)?;
            kept.push(filter_record_batch(&batch, &keep)?);
        }
        let kept = concat_batches(&Table::Keys.arrow_schema(), &kept)?;
        actions.push(Action::Remove(remove_of(add, true)));
        if kept.num_rows() == 0 {
            continue;
        }
        let adds = match writer.write(&writer.key_of(add)?, kept).await {
            Ok(adds) => adds,
            Err(e) => {
                discard_files(index, &written).await;
                return Err(e.into());
            }
        };
        for mut new in adds {
            new.tags = add.tags.clone();
            written.push(new.clone());
            actions.push(Action::Add(new));
        }
    }
    Ok((actions, removed))
}
