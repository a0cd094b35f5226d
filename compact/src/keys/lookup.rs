//! Point reads of the index: what it holds of a set of keys, by the buckets they fall in.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::files::live_files;
use lakehouse_lake::keys::{Key, bucket_name, indexed_at};
use lakehouse_lake::point_read::{PointReadStats, read_keyed};
use lakehouse_lake::schema::{KEY_BUCKET, KEY_HI};
use lakehouse_lake::{LakeError, RunRange, Table};

use crate::error::Result;

use super::entries::{READS_AT_ONCE, SCAN_COLUMNS, index_rows};

/// What the index says of each key it holds: the latest instant and the types staged at it.
pub type IndexView = HashMap<Key, (Option<i64>, Vec<String>)>;

/// Which of the index's runs a lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// Every run: a key is found whenever staging holds it.
    All,
    /// Runs indexed after this instant (Unix seconds) only: a hot window. A key whose
    /// entries are all older is not found, and its copy is left to the sweep.
    IndexedAfter(i64),
}

impl Runs {
    /// The runs of a window of `hours` before `now` (Unix seconds); `None`: every run.
    pub fn window(hours: Option<u32>, now: i64) -> Runs {
        match hours {
            None => Runs::All,
            Some(h) => Runs::IndexedAfter(now.saturating_sub(i64::from(h) * 3_600)),
        }
    }

    pub fn includes(self, add: &Add) -> bool {
        match self {
            Runs::All => true,
            Runs::IndexedAfter(at) => indexed_at(add).is_some_and(|t| t > at),
        }
    }
}

/// What the index holds of `keys`, among entries of `range`'s types only (a run over a
/// range of types keeps one row per key in its own types) and in `runs`. Reads the files
/// of the buckets the keys fall in: a key range's own.
///
/// Absent means staging holds no row of the key (the index is complete at the version it
/// records), or, with a hot window, none staged within it; present is checked against
/// staging's own uuids before anything is replaced, so even two uuids sharing a key cannot
/// make a wrong replacement.
pub async fn lookup(
    keys: &DeltaTable,
    wanted: &HashSet<Key>,
    range: Option<RunRange>,
    runs: Runs,
) -> Result<(IndexView, PointReadStats)> {
    let mut view: IndexView = HashMap::new();
    let stats = point_reads(keys, wanted, runs, |batches| {
        absorb(&mut view, batches, |key, event_type| {
            wanted.contains(key) && range.is_none_or(|range| range.holds_type(event_type))
        });
    })
    .await?;
    Ok((view, stats))
}

/// Every entry the index holds of `keys`: instant and type (a sweep by the index wants
/// all, not the latest).
pub(crate) async fn all_entries(
    keys: &DeltaTable,
    wanted: &HashSet<Key>,
) -> Result<HashMap<Key, Vec<(Option<i64>, String)>>> {
    let mut found: HashMap<Key, Vec<(Option<i64>, String)>> = HashMap::new();
    point_reads(keys, wanted, Runs::All, |batches| {
        for batch in batches {
            for (key, at, event_type) in index_rows(batch) {
                if wanted.contains(&key) {
                    found
                        .entry(key)
                        .or_default()
                        .push((at, event_type.to_string()));
                }
            }
        }
    })
    .await?;
    Ok(found)
}

/// Point reads of `wanted` in the index files of `runs` whose buckets they fall in, each
/// file's matching rows handed to `each`.
async fn point_reads(
    keys: &DeltaTable,
    wanted: &HashSet<Key>,
    runs: Runs,
    mut each: impl FnMut(&[RecordBatch]),
) -> Result<PointReadStats> {
    // Per bucket, the high halves sought, sorted: what a point read takes.
    let mut sought: HashMap<String, Vec<i64>> = HashMap::new();
    for key in wanted {
        sought
            .entry(bucket_name(key.bucket()))
            .or_default()
            .push(key.hi);
    }
    for his in sought.values_mut() {
        his.sort_unstable();
        his.dedup();
    }
    let sought = Arc::new(sought);
    let files: Vec<Add> = live_files(keys)?
        .into_iter()
        .filter(|add| runs.includes(add) && bucket_of(add).is_some_and(|b| sought.contains_key(&b)))
        .collect();
    let store = keys.object_store();
    let mut reads = futures::stream::iter(files)
        .map(|add| {
            let (store, sought) = (store.clone(), sought.clone());
            let path = add.path.clone();
            async move {
                tokio::spawn(async move {
                    let his = bucket_of(&add)
                        .and_then(|b| sought.get(&b))
                        .map_or(&[][..], Vec::as_slice);
                    read_keyed(store, Table::Keys, &add, SCAN_COLUMNS, KEY_HI, his).await
                })
                .await
                .map_err(|e| LakeError::ReadFile {
                    path,
                    error: e.to_string(),
                })?
            }
        })
        .buffer_unordered(READS_AT_ONCE);
    let mut stats = PointReadStats::default();
    while let Some((batches, read)) = reads.try_next().await? {
        stats.row_groups += read.row_groups;
        stats.row_groups_read += read.row_groups_read;
        stats.pages += read.pages;
        stats.pages_read += read.pages_read;
        each(&batches);
    }
    Ok(stats)
}

fn bucket_of(add: &Add) -> Option<String> {
    add.partition_values.get(KEY_BUCKET).cloned().flatten()
}

/// Adds the entries of `batches` (the index's [`SCAN_COLUMNS`]) that `keep` takes to the
/// view; returns how many entries the batches held.
pub(super) fn absorb(
    view: &mut IndexView,
    batches: &[RecordBatch],
    keep: impl Fn(&Key, &str) -> bool,
) -> u64 {
    let mut entries = 0;
    for batch in batches {
        entries += batch.num_rows() as u64;
        for (key, at, event_type) in index_rows(batch) {
            if keep(&key, event_type) {
                latest(view, key, at, event_type);
            }
        }
    }
    entries
}

/// Keeps `key`'s latest instant, and every type seen at it.
pub(super) fn latest(view: &mut IndexView, key: Key, at: Option<i64>, event_type: &str) {
    let slot = view.entry(key).or_insert((at, Vec::new()));
    if at > slot.0 {
        *slot = (at, Vec::new());
    }
    if at == slot.0 && !slot.1.iter().any(|t| t == event_type) {
        slot.1.push(event_type.to_string());
    }
}
