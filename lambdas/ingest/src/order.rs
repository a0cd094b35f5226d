//! Records a batch brings at or below its shard's checkpoint: were they committed (a
//! redelivery, or a replay of the stream from an older position), or do they arrive out of
//! order and were never committed (`ParallelizationFactor` above 1, or any other
//! misconfiguration)? The second must fail the batch, never be skipped as done.
//!
//! Records from the first record of the last commit's batch up to the checkpoint are a
//! redelivery of that batch. Older ones must lie within the span (first to last sequence
//! number) of an earlier commit of this shard, as recorded in the table's log; where the
//! log no longer reaches back that far, they are taken as committed.
//!
//! In grouped mode the spans are the committer's lineage (`commitInfo.lakehouse.batches`),
//! and the last batch is the writer's latest manifest. A batch handed over but not yet
//! committed has no span in the log yet: a replay of its records fails as out of order
//! until the committer lands it, and its retry then succeeds.

use deltalake::DeltaTable;
use lakehouse_lake::CommitMetadata;
use lakehouse_lake::log::commit_actions;

use crate::checkpoint::Checkpoint;
use crate::error::StreamError;
use crate::sequence::SequenceNumber;

/// The sequence spans of this app id's commits found reading the log back from its head,
/// until one starts at or before `oldest` (with `None`, until the first commit holding a
/// span); and whether the log reached its first version.
async fn committed_spans(
    table: &DeltaTable,
    app_id: &str,
    oldest: Option<&SequenceNumber>,
) -> Result<(Vec<(SequenceNumber, SequenceNumber)>, bool), StreamError> {
    let log_store = table.log_store();
    let mut spans = Vec::new();
    for version in (0..=table.version().unwrap_or(0)).rev() {
        let actions = commit_actions(log_store.as_ref(), version)
            .await
            .map_err(lakehouse_ingest::IngestError::from)?;
        let Some(actions) = actions else {
            return Ok((spans, false));
        };
        let Some(m) = CommitMetadata::from_actions(&actions) else {
            continue;
        };
        // A direct commit is the shard's own; a grouped one lists each writer's batch.
        let mut ranges = Vec::new();
        if m.source.as_deref() == Some(app_id) {
            ranges.push((m.first_sequence_number, m.last_sequence_number));
        }
        for batch in m.batches.unwrap_or_default() {
            if batch.source == app_id {
                ranges.push((batch.first_sequence_number, batch.last_sequence_number));
            }
        }
        let mut reached = false;
        for range in ranges {
            let (Some(first), Some(last)) = range else {
                continue;
            };
            let (Ok(first), Ok(last)) =
                (SequenceNumber::parse(&first), SequenceNumber::parse(&last))
            else {
                continue;
            };
            reached |= oldest.is_none_or(|oldest| first <= *oldest);
            spans.push((first, last));
        }
        if reached {
            break;
        }
    }
    Ok((spans, true))
}

/// The sequence span of this app id's latest commit in `table`, reading the log back from
/// its head: where a shard switching to grouped mode, with no manifest yet, resumes.
pub async fn last_span(
    table: &DeltaTable,
    app_id: &str,
) -> Result<Option<(SequenceNumber, SequenceNumber)>, StreamError> {
    // The newest commit holding a span of the app id: a grouped one may hold several, and
    // the latest wins.
    let (spans, _) = committed_spans(table, app_id, None).await?;
    Ok(spans.into_iter().max_by(|a, b| a.1.cmp(&b.1)))
}

/// Fails when a record of `sequences` at or below the checkpoint was never committed to
/// `table` under `app_id`.
pub async fn check_order(
    table: &DeltaTable,
    app_id: &str,
    checkpoint: &Checkpoint,
    sequences: impl Iterator<Item = &SequenceNumber>,
) -> Result<(), StreamError> {
    let Some(done) = &checkpoint.sequence else {
        return Ok(());
    };
    let mut older: Vec<&SequenceNumber> = sequences
        .filter(|s| *s <= done)
        .filter(|s| checkpoint.first.as_ref().is_none_or(|first| *s < first))
        .collect();
    let Some(oldest) = older.iter().min().copied() else {
        return Ok(());
    };
    let (spans, whole_log) = committed_spans(table, app_id, Some(oldest)).await?;
    let before_log = |s: &SequenceNumber| !whole_log && spans.iter().all(|(first, _)| s < first);
    older.retain(|s| !before_log(s) && !spans.iter().any(|(f, l)| f <= *s && *s <= l));
    match older.first() {
        None => Ok(()),
        Some(record) => Err(StreamError::OutOfOrder {
            app_id: app_id.to_string(),
            record: record.to_string(),
            checkpoint: done.to_string(),
        }),
    }
}
