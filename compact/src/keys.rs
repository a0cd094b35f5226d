//! The key index (`staging_keys`): every key staging holds, with the staged row's
//! `created_datetime` and `event_type`, kept by compaction under its own exactly-once
//! progress (`docs/dedup.md`).
//!
//! The index follows staging: its commits carry the `txn` `lakehouse-keys:staging:<staging
//! id>` = the staging version it holds every key of. An update indexes the files added
//! since that version that are still live, but for files of carried rows (a merge's
//! rewrites, tagged so, and optimize's bin-packs) of files it held already. Where it cannot
//! tell, it indexes the file: an entry repeated is harmless (the latest instant per key
//! decides), a key missed would not be. An index with no record for this staging
//! (never built, deleted, or built for a staging since recreated) or whose record is past
//! the log's retention is rebuilt from staging's live files, a chunk per commit, resumably
//! ([`crate::key_build`]). A crash anywhere leaves the records where they were: the next
//! update redoes what did not land.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, ObjectStore};
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::app_ids::keys_app_id;
use lakehouse_lake::files::{live_files, read_file_on_task};
use lakehouse_lake::keys::{
    Key, KeyEntry, bucket_name, indexed_at, is_carried, keys_batch, tag_entries_per_date,
    tag_indexed_at,
};
use lakehouse_lake::log::{commits_in, discard_files, txn_version};
use lakehouse_lake::point_read::{PointReadStats, read_keyed};
use lakehouse_lake::schema::{CREATED_DATETIME, EVENT_TYPE, EVENT_UUID, KEY_BUCKET, KEY_HI};
use lakehouse_lake::write::{FileWriter, PartitionKey};
use lakehouse_lake::{Commit, CommitMetadata, Lake, LakeError, RunRange, Table};
use serde::Serialize;

use crate::error::Result;
use crate::key_build::{self, build_progress, build_version};

/// Entries held before they are written out as one file per bucket: bounds memory
/// (~40 bytes an entry) on a rebuild or a long lag.
const ENTRIES_PER_FLUSH: usize = 2_000_000;

/// Staging files read at once.
const READS_AT_ONCE: usize = 8;

/// Updates that lose to a concurrent one before one gives up.
pub(crate) const MAX_TRIES: u32 = 10;

/// What one update of the index did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeysUpdate {
    /// The staging version the index held before (`None`: nothing for this staging).
    pub indexed_before: Option<u64>,
    /// The staging version it holds now.
    pub indexed: u64,
    /// Built from all of staging's live files, replacing what the table held.
    pub rebuilt: bool,
    pub staging_files_read: u64,
    /// A rebuild's files (staging's live files at the version it builds), the commits it
    /// made in this update, and how many files an earlier, interrupted update had indexed.
    pub build_files: u64,
    pub build_commits: u64,
    pub build_resumed_after: Option<u64>,
    pub entries_added: u64,
    pub files_added: u64,
    pub files_removed: u64,
}

impl KeysUpdate {
    /// This update followed by `later`: one report of both.
    pub fn then(self, later: KeysUpdate) -> KeysUpdate {
        KeysUpdate {
            indexed_before: self.indexed_before,
            rebuilt: self.rebuilt || later.rebuilt,
            staging_files_read: self.staging_files_read + later.staging_files_read,
            build_files: self.build_files.max(later.build_files),
            build_commits: self.build_commits + later.build_commits,
            build_resumed_after: self.build_resumed_after.or(later.build_resumed_after),
            entries_added: self.entries_added + later.entries_added,
            files_added: self.files_added + later.files_added,
            files_removed: self.files_removed + later.files_removed,
            ..later
        }
    }
}

/// Brings the index up to staging's latest version; a rebuild commits about
/// `rows_per_commit` staging rows' entries at a time ([`crate::key_build`]). Concurrent
/// updates are safe: the loser of the race to record a version reads the tables again and
/// finds less (or nothing) to do.
pub async fn update_keys(lake: &Lake, rows_per_commit: u64) -> Result<KeysUpdate> {
    let mut tries = 0;
    loop {
        let (staging, keys) = tokio::try_join!(lake.open(Table::Staging), lake.open(Table::Keys))?;
        match update_to(lake, &staging, &keys, rows_per_commit).await {
            Err(e) if tries + 1 < MAX_TRIES && lost_race(&e) => {
                tries += 1;
                tracing::info!(error = %e, tries, "key index update lost a race; again");
            }
            done => return done,
        }
    }
}

pub(crate) fn lost_race(e: &crate::CompactError) -> bool {
    matches!(
        e,
        crate::CompactError::Lake(
            LakeError::Conflict { .. } | LakeError::Contended { .. } | LakeError::Vanished { .. }
        )
    )
}

/// The staging version `keys` holds every key of, for the staging table `staging_id`;
/// none while a rebuild is under way (it removed what the index held).
pub async fn indexed_version(keys: &DeltaTable, staging_id: &str) -> Result<Option<u64>> {
    let version = txn_version(keys, &keys_app_id(staging_id))
        .await?
        .and_then(|v| u64::try_from(v).ok());
    match build_version(keys, staging_id, version).await? {
        Some(_) => Ok(None),
        None => Ok(version),
    }
}

/// Whether the index holds every key of some version of `staging` (it may lag, which an
/// update completes); false while it is missing, being built, or built for another
/// staging. Reads the index's `txn`s only.
pub async fn index_trusted(lake: &Lake, staging: &DeltaTable) -> Result<bool> {
    let Some(keys) = lake.open_existing(Table::Keys).await? else {
        return Ok(false);
    };
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    Ok(indexed_version(&keys, &staging_id).await?.is_some())
}

async fn update_to(
    lake: &Lake,
    staging: &DeltaTable,
    keys: &DeltaTable,
    rows_per_commit: u64,
) -> Result<KeysUpdate> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let head = staging.version().unwrap_or(0);
    let before = indexed_version(keys, &staging_id).await?;
    let mut update = KeysUpdate {
        indexed_before: before,
        indexed: before.unwrap_or(head),
        ..KeysUpdate::default()
    };
    let mut from = before;
    let mut keys = keys.clone();
    loop {
        if from.is_some_and(|v| v >= head) {
            return Ok(update);
        }
        let live = live_files(staging)?;
        let added = match from {
            Some(v) => added_since(staging, v + 1..=head, &live).await?,
            None => None,
        };
        let Some(files) = added else {
            if update.rebuilt {
                // Built at an older version whose later commits the log no longer holds:
                // the next update builds anew at the head.
                return Ok(update);
            }
            update.rebuilt = true;
            update.indexed =
                key_build::build(lake, staging, &keys, rows_per_commit, &mut update).await?;
            from = Some(update.indexed);
            keys.update_incremental(None).await?;
            continue;
        };
        append(staging, &keys, &files, &staging_id, head, &mut update).await?;
        update.indexed = head;
        return Ok(update);
    }
}

/// Indexes `files` (what staging added since the index's version) in one commit that
/// records `head`.
async fn append(
    staging: &DeltaTable,
    keys: &DeltaTable,
    files: &[Add],
    staging_id: &str,
    head: u64,
    update: &mut KeysUpdate,
) -> Result<()> {
    update.staging_files_read += files.len() as u64;
    let mut entries = 0;
    let adds = index_files(staging, keys, files, &mut entries).await?;
    update.entries_added += entries;
    update.files_added += adds.len() as u64;
    let actions = adds.iter().cloned().map(Action::Add).collect();
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(vec![KEY_BUCKET.to_string()]),
        predicate: None,
    };
    let metadata = CommitMetadata {
        source: Some(keys_app_id(staging_id)),
        records: Some(entries),
        ..CommitMetadata::default()
    };
    let commit = Commit::new(operation, actions)
        .with_transaction(Transaction::new(keys_app_id(staging_id), head as i64))
        .with_metadata(metadata);
    match commit.execute(keys).await {
        Ok(_) => Ok(()),
        Err(e) => {
            if e.committed_nothing() {
                discard_files(keys, &adds).await;
            }
            Err(e.into())
        }
    }
}

/// The files added to staging in `versions` that are still live; `None` when the log no
/// longer holds one of those commits (then only a rebuild is exact).
pub(crate) async fn added_since(
    staging: &DeltaTable,
    versions: std::ops::RangeInclusive<u64>,
    live: &[Add],
) -> Result<Option<Vec<Add>>> {
    let live: HashMap<&str, &Add> = live.iter().map(|a| (a.path.as_str(), a)).collect();
    // Every file added in `versions`, live or not: a rewrite of one of them may hold keys
    // the index lacks.
    let mut added = HashSet::new();
    let mut files = Vec::new();
    let mut commits = std::pin::pin!(commits_in(staging.log_store(), versions, 16));
    while let Some((_, actions)) = commits.try_next().await? {
        let Some(actions) = actions else {
            return Ok(None);
        };
        // Files of carried rows (a merge's rewrites, optimize's bin-packs) add no key when
        // what they rewrote was indexed already: skipping them keeps rewrites from
        // repeating entries. A rewrite of a file added since the index's version may hold
        // keys the index lacks: then every file of the commit is indexed.
        let rewrites_indexed = actions.iter().all(|a| match a {
            Action::Remove(remove) => !added.contains(remove.path.as_str()),
            _ => true,
        });
        for action in actions {
            let Action::Add(add) = action else { continue };
            let skip = rewrites_indexed && is_carried(&add);
            if !skip && let Some(live) = live.get(add.path.as_str()) {
                files.push((*live).clone());
            }
            added.insert(add.path);
        }
    }
    Ok(Some(files))
}

/// Writes the entries of the rows of staging's `files` as index files, one per bucket per
/// flush; returns their adds.
pub(crate) async fn index_files(
    staging: &DeltaTable,
    keys: &DeltaTable,
    files: &[Add],
    entries_added: &mut u64,
) -> Result<Vec<Add>> {
    let writer = FileWriter::for_table(Table::Keys, keys)?;
    let store = staging.object_store();
    let mut reads = futures::stream::iter(files.iter().cloned())
        .map(|add| read_entries(store.clone(), add))
        .buffer_unordered(READS_AT_ONCE);
    let mut buckets: BTreeMap<u32, Vec<KeyEntry>> = BTreeMap::new();
    let mut held = 0;
    let mut adds = Vec::new();
    while let Some(entries) = reads.try_next().await? {
        held += entries.len();
        *entries_added += entries.len() as u64;
        for entry in entries {
            buckets.entry(entry.key.bucket()).or_default().push(entry);
        }
        if held >= ENTRIES_PER_FLUSH {
            adds.extend(flush(&writer, std::mem::take(&mut buckets)).await?);
            held = 0;
        }
    }
    adds.extend(flush(&writer, buckets).await?);
    Ok(adds)
}

async fn flush(writer: &FileWriter, buckets: BTreeMap<u32, Vec<KeyEntry>>) -> Result<Vec<Add>> {
    let mut adds = Vec::new();
    for (bucket, entries) in buckets {
        let key = PartitionKey {
            date: 0,
            name: bucket_name(bucket).into(),
        };
        adds.extend(writer.write(&key, keys_batch(bucket, &entries)?).await?);
    }
    // After the staging commit that added these rows, so a run is hot at least as long
    // after its rows were staged as the window.
    let now = chrono::Utc::now().timestamp();
    adds.iter_mut().for_each(|add| {
        tag_indexed_at(add, now);
        tag_entries_per_date(add);
    });
    Ok(adds)
}

/// The index entries of one staging file's rows.
pub(crate) async fn read_entries(store: Arc<dyn ObjectStore>, add: Add) -> Result<Vec<KeyEntry>> {
    const COLUMNS: &[&str] = &[EVENT_UUID, CREATED_DATETIME];
    let event_type: Arc<str> = add
        .partition_values
        .get(EVENT_TYPE)
        .cloned()
        .flatten()
        .map(Arc::from)
        .ok_or_else(|| LakeError::PartitionValue {
            column: EVENT_TYPE.to_string(),
            value: String::new(),
            path: add.path.clone(),
        })?;
    let batches = read_file_on_task(store, Table::Staging, add, Some(COLUMNS)).await?;
    let mut entries = Vec::new();
    for batch in &batches {
        let uuids = batch.column(0).as_string::<i32>();
        let created = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        for row in 0..batch.num_rows() {
            entries.push(KeyEntry {
                key: Key::of(uuids.value(row)),
                created_micros: created.is_valid(row).then(|| created.value(row)),
                event_type: event_type.clone(),
            });
        }
    }
    Ok(entries)
}

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

/// The index's columns a scan reads, in table order.
pub(crate) const SCAN_COLUMNS: &[&str] = &[
    KEY_HI,
    lakehouse_lake::schema::KEY_LO,
    CREATED_DATETIME,
    EVENT_TYPE,
];

/// The result of comparing the index with staging at the version the index holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeysCheck {
    /// The staging version compared (the one the index holds); `None`: no index.
    pub indexed: Option<u64>,
    /// Staging's latest version: versions after `indexed` are the index's lag.
    pub staging_version: u64,
    pub staging_rows: u64,
    pub index_entries: u64,
    pub index_keys: u64,
    /// Staged keys the index lacks.
    pub missing: u64,
    /// Keys whose latest entry is not the staged row's instant and type.
    pub wrong: u64,
    /// Keys the index holds that staging does not.
    pub extra: u64,
    /// A few of the keys that differ, for the report.
    pub examples: Vec<String>,
}

impl KeysCheck {
    pub fn is_exact(&self) -> bool {
        self.indexed.is_some() && self.missing == 0 && self.wrong == 0 && self.extra == 0
    }
}

/// Compares every key of the index with staging as of the version the index holds: reads
/// both tables whole (a check, not a step of compaction).
pub async fn check_keys(lake: &Lake) -> Result<KeysCheck> {
    let (Some(staging), Some(keys)) = tokio::try_join!(
        lake.open_existing(Table::Staging),
        lake.open_existing(Table::Keys)
    )?
    else {
        return Ok(KeysCheck::default());
    };
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let mut check = KeysCheck {
        staging_version: staging.version().unwrap_or(0),
        indexed: indexed_version(&keys, &staging_id).await?,
        ..KeysCheck::default()
    };
    let Some(indexed) = check.indexed else {
        return Ok(check);
    };
    // Staging's rows are the same at its head when no commit since changed data (only
    // optimize ran, whose removed files a vacuum may have deleted already).
    let lagging = keys_health(&staging, Some(&keys)).await?.lag_versions > 0;
    let at = if lagging {
        lake.open_version(Table::Staging, indexed).await?
    } else {
        staging
    };
    let index = read_index(&keys, &mut check.index_entries).await?;
    check.index_keys = index.len() as u64;
    // Staging reduced the same way: per key, its latest instant and the types at it.
    let mut staged: IndexView = HashMap::new();
    let store = at.object_store();
    let mut reads = futures::stream::iter(live_files(&at)?)
        .map(|add| read_entries(store.clone(), add))
        .buffer_unordered(READS_AT_ONCE);
    while let Some(entries) = reads.try_next().await.map_err(|e| match e {
        crate::CompactError::Lake(LakeError::Vanished { .. }) if lagging => {
            crate::CompactError::IndexedVersionGone { indexed }
        }
        e => e,
    })? {
        check.staging_rows += entries.len() as u64;
        for entry in entries {
            latest(
                &mut staged,
                entry.key,
                entry.created_micros,
                &entry.event_type,
            );
        }
    }
    for (key, (created, types)) in &staged {
        match index.get(key) {
            None => {
                check.missing += 1;
                note(&mut check.examples, format!("missing {key:?}"));
            }
            Some((at, indexed)) if at != created || !same_types(indexed, types) => {
                check.wrong += 1;
                note(&mut check.examples, format!("wrong {key:?}"));
            }
            Some(_) => {}
        }
    }
    for key in index.keys().filter(|k| !staged.contains_key(k)) {
        check.extra += 1;
        note(&mut check.examples, format!("extra {key:?}"));
    }
    Ok(check)
}

fn note(examples: &mut Vec<String>, example: String) {
    if examples.len() < 5 {
        examples.push(example);
    }
}

/// Every entry of the index, reduced to the latest instant per key.
async fn read_index(keys: &DeltaTable, entries: &mut u64) -> Result<IndexView> {
    let store = keys.object_store();
    let mut reads = futures::stream::iter(live_files(keys)?)
        .map(|add| read_file_on_task(store.clone(), Table::Keys, add, Some(SCAN_COLUMNS)))
        .buffer_unordered(READS_AT_ONCE);
    let mut view: IndexView = HashMap::new();
    while let Some(batches) = reads.try_next().await? {
        *entries += absorb(&mut view, &batches, |_, _| true);
    }
    Ok(view)
}

/// Adds the entries of `batches` (the index's [`SCAN_COLUMNS`]) that `keep` takes to the
/// view; returns how many entries the batches held.
fn absorb(view: &mut IndexView, batches: &[RecordBatch], keep: impl Fn(&Key, &str) -> bool) -> u64 {
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

/// The rows of `batch` (the index's [`SCAN_COLUMNS`]): key, instant and type.
pub(crate) fn index_rows(
    batch: &RecordBatch,
) -> impl Iterator<Item = (Key, Option<i64>, &str)> + '_ {
    let (hi, lo) = (
        batch.column(0).as_primitive::<Int64Type>(),
        batch.column(1).as_primitive::<Int64Type>(),
    );
    let created = batch.column(2).as_primitive::<TimestampMicrosecondType>();
    let event_types = batch.column(3).as_string::<i32>();
    (0..batch.num_rows()).map(move |row| {
        let key = Key {
            hi: hi.value(row),
            lo: lo.value(row),
        };
        let at = created.is_valid(row).then(|| created.value(row));
        (key, at, event_types.value(row))
    })
}

/// Keeps `key`'s latest instant, and every type seen at it.
fn latest(view: &mut IndexView, key: Key, at: Option<i64>, event_type: &str) {
    let slot = view.entry(key).or_insert((at, Vec::new()));
    if at > slot.0 {
        *slot = (at, Vec::new());
    }
    if at == slot.0 && !slot.1.iter().any(|t| t == event_type) {
        slot.1.push(event_type.to_string());
    }
}

fn same_types(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|t| b.contains(t))
}

/// The index's size and lag, for `status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeysHealth {
    /// The staging version the index holds; `None`: no index for this staging.
    pub indexed: Option<u64>,
    /// Staging commits after `indexed` that changed data (optimize's do not: the index
    /// need not follow them); every commit when `indexed` is `None`.
    pub lag_versions: u64,
    /// A rebuild under way: the staging version it builds and the files of it indexed.
    pub building: Option<(u64, u64)>,
    /// The staging version the last sweep swept (`None`: never swept).
    pub swept: Option<u64>,
}

/// Staging commits read at most to count the index's lag; past it each counts.
const LAG_COMMITS_READ: u64 = 1_000;

/// The index's lag behind `staging`, from the logs only.
pub async fn keys_health(staging: &DeltaTable, keys: Option<&DeltaTable>) -> Result<KeysHealth> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let head = staging.version().unwrap_or(0);
    let indexed = match keys {
        Some(keys) => indexed_version(keys, &staging_id).await?,
        None => None,
    };
    let swept = crate::sweep::last_sweep(staging).await?;
    let Some(from) = indexed.map(|v| v + 1) else {
        let building = match keys {
            Some(keys) => match build_progress(keys, &staging_id, None).await {
                Ok(progress) => progress.map(|p| (p.version, p.files_done())),
                // The build's log is gone: the next update starts it over.
                Err(e) if key_build::gone(&e) => build_version(keys, &staging_id, None)
                    .await?
                    .map(|v| (v, 0)),
                Err(e) => return Err(e),
            },
            None => None,
        };
        return Ok(KeysHealth {
            indexed,
            lag_versions: head + 1,
            building,
            swept,
        });
    };
    let read_to = head.min(from.saturating_add(LAG_COMMITS_READ - 1));
    let mut lag = head.saturating_sub(read_to);
    let mut commits = std::pin::pin!(commits_in(staging.log_store(), from..=read_to, 16));
    while let Some((_, actions)) = commits.try_next().await? {
        let changes_data = actions.is_none_or(|actions| {
            actions
                .iter()
                .any(|a| matches!(a, Action::Add(add) if add.data_change))
        });
        lag += u64::from(changes_data);
    }
    Ok(KeysHealth {
        indexed,
        lag_versions: lag,
        building: None,
        swept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_instant_per_key_decides_and_ties_keep_every_type() {
        let key = Key::of("a");
        let mut view = IndexView::new();
        for (at, t) in [(5, "x"), (9, "y"), (9, "z"), (7, "w"), (9, "y")] {
            latest(&mut view, key, Some(at), t);
        }
        assert_eq!(
            view.get(&key),
            Some(&(Some(9), vec!["y".to_string(), "z".to_string()]))
        );
        assert!(same_types(&view[&key].1, &["z".into(), "y".into()]));
        assert!(!same_types(&view[&key].1, &["z".into()]));
    }
}
