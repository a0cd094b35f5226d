//! Writing a merge's rows into staging: one file per partition, each encoded on a task of
//! its own (the lake's [`FileWriter`]), so a merge's writing uses every core.

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::arrow::array::{AsArray, RecordBatch};
use deltalake::arrow::compute::interleave_record_batch;
use deltalake::arrow::datatypes::Date32Type;
use deltalake::kernel::Add;
use lakehouse_lake::LakeError;
use lakehouse_lake::schema::{EVENT_DATE, EVENT_TYPE};
use lakehouse_lake::write::{FileWriter, PartitionKey};
use tokio::task::JoinSet;

use crate::error::Result;
use crate::resolve::RowRef;

/// Files written at once: each holds its partition's rows, copied, until written.
const WRITERS: usize = 4;

/// Writes `rows` of `sources` (rows of staging's schema) as one file per staging partition
/// (`event_date`, `event_type`), rows in the order given; returns the files in partition
/// order.
pub async fn write_by_partition(
    writer: &Arc<FileWriter>,
    sources: &[RecordBatch],
    rows: &[RowRef],
) -> Result<Vec<Add>> {
    let columns = sources
        .iter()
        .map(|batch| {
            let date = batch
                .column_by_name(EVENT_DATE)?
                .as_primitive_opt::<Date32Type>()?;
            let name = batch.column_by_name(EVENT_TYPE)?.as_string_opt::<i32>()?;
            Some((date, name))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| LakeError::BadRows("staging rows lack event_date or event_type".into()))?;
    let mut groups: BTreeMap<(i32, &str), Vec<RowRef>> = BTreeMap::new();
    for &(batch, row) in rows {
        let (date, name) = &columns[batch];
        groups
            .entry((date.value(row), name.value(row)))
            .or_default()
            .push((batch, row));
    }
    let mut tasks = JoinSet::new();
    let mut written: Vec<(usize, Vec<Add>)> = Vec::new();
    for (i, ((date, name), mut refs)) in groups.into_iter().enumerate() {
        while tasks.len() >= WRITERS {
            written.push(joined(tasks.join_next().await)?);
        }
        // Only the batches this partition draws from: `interleave` checks every batch it
        // is given, which across every partition would be partitions × batches.
        let used = renumber_batches(&mut refs);
        let own: Vec<RecordBatch> = used.iter().map(|&b| sources[b].clone()).collect();
        let key = PartitionKey {
            date,
            name: name.into(),
        };
        let writer = writer.clone();
        tasks.spawn(async move {
            let own: Vec<&RecordBatch> = own.iter().collect();
            let batch = interleave_record_batch(&own, &refs)?;
            Ok::<_, LakeError>((i, writer.write(&key, batch).await?))
        });
    }
    while !tasks.is_empty() {
        written.push(joined(tasks.join_next().await)?);
    }
    written.sort_by_key(|(i, _)| *i);
    Ok(written.into_iter().flat_map(|(_, adds)| adds).collect())
}

/// Renumbers the batches `refs` point into as 0, 1, … in order of first use; returns the
/// original index of each.
fn renumber_batches(refs: &mut [RowRef]) -> Vec<usize> {
    let mut used: Vec<usize> = Vec::new();
    let mut last: Option<(usize, usize)> = None;
    let mut index: foldhash::HashMap<usize, usize> = foldhash::HashMap::default();
    for (batch, _) in refs.iter_mut() {
        let local = match last {
            Some((original, local)) if original == *batch => local,
            _ => *index.entry(*batch).or_insert_with(|| {
                used.push(*batch);
                used.len() - 1
            }),
        };
        last = Some((*batch, local));
        *batch = local;
    }
    used
}

type Written = std::result::Result<(usize, Vec<Add>), LakeError>;

fn joined(
    done: Option<std::result::Result<Written, tokio::task::JoinError>>,
) -> Result<(usize, Vec<Add>)> {
    match done {
        Some(Ok(written)) => Ok(written?),
        Some(Err(e)) => Err(LakeError::BadRows(format!("a file writer stopped: {e}")).into()),
        None => Err(LakeError::BadRows("no file writer to wait for".into()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::renumber_batches;

    #[test]
    fn renumbers_batches_in_order_of_first_use() {
        let mut refs = vec![(5, 0), (5, 1), (2, 7), (5, 2), (9, 0), (2, 3)];
        let used = renumber_batches(&mut refs);
        assert_eq!(used, vec![5, 2, 9]);
        assert_eq!(refs, vec![(0, 0), (0, 1), (1, 7), (0, 2), (2, 0), (1, 3)]);
    }
}
