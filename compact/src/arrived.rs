//! The sweep's search by the key index (issue 23): the rows staged since the last sweep,
//! and every index entry of their keys. A copy a round left has a row among them, and
//! every row of its key lies in a partition the index names for the key (two copies of
//! one type and date share an entry, which names their partition). So the sweep reads
//! those partitions only: a cost that follows what arrived and the partitions its keys
//! touch, not the lake's age, where the search over staging's whole `event_uuid` column
//! (Athena's, or a whole sweep's) grows with every day staging holds.
//!
//! It relies on the index keeping an entry per key, type and date: merges that kept one
//! per key and type (before `lakehouse.entries = perDate`) may have dropped an older
//! copy's entry, so an index holding such a file is refused.

use std::collections::{HashMap, HashSet};

use deltalake::DeltaTable;
use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::files::live_files;
use lakehouse_lake::keys::{Key, has_entries_per_date};
use lakehouse_lake::{Lake, Table};

use crate::candidates::Candidates;
use crate::error::{CompactError, Result};
use crate::keys::{added_since, all_entries, indexed_version, read_entries, update_keys};
use lakehouse_lake::progress::last_sweep;

/// Staging files read at once.
const READS_AT_ONCE: usize = 8;

/// The candidates of a sweep by the index: the keys of the rows staged since the last
/// sweep, and the partitions of every row of theirs (the index's entries of their keys).
/// Found as of the staging version the index holds after bringing it up to staging.
pub(crate) async fn arrived(lake: &Lake, index_rows_per_commit: u64) -> Result<Candidates> {
    update_keys(lake, index_rows_per_commit).await?;
    let (staging, keys) = tokio::try_join!(lake.open(Table::Staging), lake.open(Table::Keys))?;
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let Some(indexed) = indexed_version(&keys, &staging_id).await? else {
        return Err(refused(
            "the key index does not hold this staging yet (a build is under way): let it finish, or sweep whole",
        ));
    };
    let Some(swept) = last_sweep(&staging).await? else {
        return Err(refused(
            "no sweep is recorded yet: run one whole sweep (`lakehouse keys sweep`) first; later ones can go by the index",
        ));
    };
    if live_files(&keys)?
        .iter()
        .any(|add| !has_entries_per_date(add))
    {
        return Err(refused(
            "the key index holds runs merged before it kept an entry per key, type and date: sweep whole, or rebuild the index (remove staging_keys/, then `lakehouse keys update`)",
        ));
    }
    // Staging as the index holds it: a row moved by a later round is still in its file.
    let at = if Some(indexed) == staging.version() {
        staging
    } else {
        lake.open_version(Table::Staging, indexed).await?
    };
    let live = live_files(&at)?;
    let files = if swept < indexed {
        added_since(&at, swept + 1..=indexed, &live)
            .await?
            .ok_or_else(|| refused("staging's log since the last sweep is gone: sweep whole"))?
    } else {
        Vec::new()
    };
    new_rows_and_their_partitions(&at, &keys, files, indexed).await
}

async fn new_rows_and_their_partitions(
    at: &DeltaTable,
    keys: &DeltaTable,
    files: Vec<Add>,
    as_of: u64,
) -> Result<Candidates> {
    let mut partitions: HashSet<(String, String)> = HashSet::new();
    let mut wanted: HashSet<Key> = HashSet::new();
    let mut rows = 0;
    let store = at.object_store();
    let mut reads = futures::stream::iter(files)
        .map(|add| read_entries(store.clone(), add))
        .buffer_unordered(READS_AT_ONCE);
    while let Some(entries) = reads.try_next().await? {
        rows += entries.len() as u64;
        wanted.extend(entries.iter().map(|e| e.key));
    }
    let found: HashMap<Key, Vec<(Option<i64>, String)>> = all_entries(keys, &wanted).await?;
    for (at, event_type) in found.into_values().flatten() {
        let Some(date) = at.and_then(date_of) else {
            return Err(refused(
                "an index entry without an instant names no partition: rebuild the index",
            ));
        };
        partitions.insert((date, event_type));
    }
    Ok(Candidates::of(as_of, rows, wanted, partitions))
}

/// The `event_date` partition of an instant (Unix microseconds, UTC).
fn date_of(micros: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.date_naive().to_string())
}

fn refused(reason: &str) -> CompactError {
    CompactError::SweepByIndex(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_names_its_utc_date() {
        assert_eq!(
            date_of(1_700_000_000_000_000).as_deref(),
            Some("2023-11-14")
        );
        assert_eq!(date_of(-1).as_deref(), Some("1969-12-31"));
        assert_eq!(date_of(i64::MAX), None);
    }
}
