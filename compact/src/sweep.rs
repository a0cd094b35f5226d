//! The sweep: every `event_uuid` staged more than once, resolved to its winning copy,
//! over all of staging, whatever the rounds searched.
//!
//! Rounds keep staging at one row per uuid when they search the key index in full. A
//! round that searched less leaves copies: the date search (`--horizon-days`), the two
//! ranges of a fan-out that each staged a copy in their own types (the documented "one
//! row per range"), and, once rounds probe a hot window only, copies older than it. A
//! whole sweep finds them in staging itself; [`Scope::ByIndex`] in the rows staged since
//! the last sweep and the partitions the key index names for their keys
//! ([`crate::arrived`]). It removes every copy but the winner ([`crate::resolve`]'s rule:
//! the greatest instant, then the later ingest) by rewriting the files that hold them.
//!
//! Its commit records the staging version it swept in the `txn`
//! `lakehouse-sweep:<staging id>`, and removes files that must still be live: a concurrent
//! rewrite of one of them fails it, and it plans again. A crash before the commit leaves
//! staging as it was; a rerun finds the same copies, or none once one landed.
//!
//! Memory: a pass holds ~24 bytes per staged row of its share of the keys; a staging
//! larger than [`ROWS_PER_PASS`] is swept in several passes, each reading staging's uuid
//! column again.
//!
//! At scale the search is an engine's ([`Scope::Found`]): Athena (or DataFusion, through
//! the query stage) runs `sql/queries/duplicated_events.sql`, and the sweep reads only the
//! files of the partitions it names, holding only the keys it names. What it records as
//! swept is the version the query read at least ([`Candidates::as_of`]).

use std::collections::{HashMap, HashSet};

use deltalake::DeltaTable;
use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::DeltaOperation;
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::app_ids::sweep_app_id;
use lakehouse_lake::files::{live_files_by_path, read_file_on_task, remove_of, rows_of};
use lakehouse_lake::keys::Key;
use lakehouse_lake::log::{commits_in, discard_files};
use lakehouse_lake::schema::{CREATED_DATETIME, EVENT_UUID, INGEST_SEQ, RAW_VERSION};
use lakehouse_lake::write::FileWriter;
use lakehouse_lake::{Commit, CommitMetadata, Lake, Table};
use serde::Serialize;

use crate::candidates::Candidates;
use crate::error::lost_race;
use crate::error::{CompactError, Result};
use crate::keys::{KeysUpdate, update_keys};
use crate::merge::rewrite_without;
use crate::resolve::{Precedence, value_or_min};
use lakehouse_lake::progress::last_sweep;

/// Staged rows one pass holds (~24 bytes each: ~770 MB).
pub const ROWS_PER_PASS: u64 = 32_000_000;

/// Staging files read at once.
const READS_AT_ONCE: usize = 8;

/// Rewritten files read and written at once.
const REWRITES_AT_ONCE: usize = 4;

/// Sweeps that lose to a concurrent commit before one gives up.
const MAX_TRIES: u32 = 10;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// The staging version swept: after the commit, no uuid of it is staged twice.
    pub swept: u64,
    /// The version the sweep committed (`None`: staging did not exist).
    pub committed: Option<u64>,
    pub passes: u64,
    pub files_read: u64,
    pub rows_read: u64,
    /// Uuids staged more than once, and the rows removed to leave one each.
    pub duplicated_events: u64,
    pub rows_removed: u64,
    pub files_rewritten: u64,
    pub bytes_rewritten: u64,
    /// Attempts lost to concurrent commits before this one landed.
    pub retries: u64,
    /// The key index brought up to staging after the commit, as a compaction does.
    pub keys: KeysUpdate,
}

/// What a sweep searches.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every staged row, `rows_per_pass` of them at a time (memory).
    All { rows_per_pass: u64 },
    /// Only the files of the partitions where an engine found copies (Athena, or DataFusion
    /// through the query stage, running `sql/queries/duplicated_events.sql`).
    Found(Candidates),
    /// The rows staged since the last sweep, and the partitions the key index names for
    /// their keys: a cost that follows what arrived ([`crate::arrived`]).
    ByIndex,
}

/// Sweeps staging to one row per `event_uuid` (all of it, or the copies found), then
/// brings the key index up to it (a rebuild, if needed, commits `index_rows_per_commit`
/// rows' entries at a time).
pub async fn sweep(lake: &Lake, scope: &Scope, index_rows_per_commit: u64) -> Result<SweepReport> {
    let by_index;
    let (found, rows_per_pass) = match scope {
        Scope::All { rows_per_pass } => (None, *rows_per_pass),
        Scope::Found(found) => (Some(found), u64::MAX),
        // Without staging there is nothing to look up (the loop below says so).
        Scope::ByIndex if lake.open_existing(Table::Staging).await?.is_none() => {
            return Ok(SweepReport::default());
        }
        Scope::ByIndex => {
            by_index = crate::arrived::arrived(lake, index_rows_per_commit).await?;
            (Some(&by_index), u64::MAX)
        }
    };
    let mut tries = 0;
    loop {
        let Some(staging) = lake.open_existing(Table::Staging).await? else {
            return Ok(SweepReport::default());
        };
        match sweep_once(&staging, found, rows_per_pass).await {
            Err(e) if tries + 1 < MAX_TRIES && lost_race(&e) => {
                tries += 1;
                tracing::info!(error = %e, tries, "sweep lost a race; planning again");
            }
            Ok(report) => {
                let keys = update_keys(lake, index_rows_per_commit).await?;
                return Ok(SweepReport {
                    retries: tries.into(),
                    keys,
                    ..report
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sweeps the copies `found` names (`None`: every staged row, `rows_per_pass` at a time).
async fn sweep_once(
    staging: &DeltaTable,
    found: Option<&Candidates>,
    rows_per_pass: u64,
) -> Result<SweepReport> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let head = staging.version().unwrap_or(0);
    let swept = match found {
        None => head,
        Some(found) if found.as_of > head => {
            return Err(CompactError::CandidatesAhead {
                as_of: found.as_of,
                head,
            });
        }
        // A list found on an older staging proves nothing past an earlier full sweep.
        Some(found) => found.as_of.max(last_sweep(staging).await?.unwrap_or(0)),
    };
    let files = live_files_by_path(staging)?;
    let added_since = match found {
        Some(found) => files_added_after(staging, found.as_of, head).await?,
        None => HashSet::new(),
    };
    let selected: Vec<usize> = (0..files.len())
        .filter(|&i| {
            found.is_none_or(|c| {
                c.names_partition_of(&files[i]) || added_since.contains(files[i].path.as_str())
            })
        })
        .collect();
    let rows: u64 = selected
        .iter()
        .map(|&i| rows_of(&files[i]).unwrap_or(files[i].size.max(0) as u64 / 16))
        .sum();
    let mut report = SweepReport {
        swept,
        passes: rows.div_ceil(rows_per_pass.max(1)).max(1),
        ..SweepReport::default()
    };
    // Rows to remove, per file index.
    let mut losers: HashMap<usize, Vec<usize>> = HashMap::new();
    let passes = report.passes;
    for pass in 0..passes {
        let wanted =
            |key: &Key| (key.hi as u64) % passes == pass && found.is_none_or(|c| c.holds(key));
        let duplicated = duplicated_keys(staging, &files, &selected, wanted, &mut report).await?;
        if duplicated.keys.is_empty() {
            continue;
        }
        let copies = copies_of(staging, &files, &duplicated).await?;
        report.duplicated_events += copies.len() as u64;
        for mut rows in copies.into_values() {
            // The winner last: the greatest precedence, then the first file and row.
            rows.sort_by(|a, b| a.0.cmp(&b.0).then((b.1, b.2).cmp(&(a.1, a.2))));
            rows.pop();
            for (_, file, row) in rows {
                losers.entry(file).or_default().push(row);
            }
        }
    }
    let writer = FileWriter::for_table(Table::Staging, staging)?;
    let store = staging.object_store();
    let mut rewritten: Vec<(usize, Vec<usize>)> = losers.into_iter().collect();
    rewritten.sort_unstable();
    report.files_rewritten = rewritten.len() as u64;
    report.bytes_rewritten = rewritten
        .iter()
        .map(|(f, _)| files[*f].size.max(0) as u64)
        .sum();
    report.rows_removed = rewritten.iter().map(|(_, rows)| rows.len() as u64).sum();
    let mut actions: Vec<Action> = rewritten
        .iter()
        .map(|(f, _)| Action::Remove(remove_of(&files[*f], true)))
        .collect();
    let mut written: Vec<Add> = Vec::new();
    let rewrites = futures::stream::iter(&rewritten)
        .map(|(file, rows)| rewrite_without(store.clone(), &writer, &files[*file], rows))
        .buffered(REWRITES_AT_ONCE)
        .try_for_each(|(_, adds)| {
            written.extend(adds);
            futures::future::ready(Ok(()))
        })
        .await;
    if let Err(e) = rewrites {
        discard_files(staging, &written).await;
        return Err(e);
    }
    actions.extend(written.iter().cloned().map(Action::Add));
    let metadata = CommitMetadata {
        source: Some(sweep_app_id(&staging_id)),
        rows_removed: Some(report.rows_removed),
        ..CommitMetadata::default()
    };
    let operation = DeltaOperation::Delete {
        predicate: Some("every copy of a duplicated event_uuid but the winner".into()),
    };
    // Plans on the rows of the files it removes only: those must still be live (the commit
    // path's rule); another commit recording a sweep makes this plan stale.
    let commit = Commit::new(operation, actions)
        .with_transaction(Transaction::new(sweep_app_id(&staging_id), swept as i64))
        .with_metadata(metadata);
    match commit.execute(staging).await {
        Ok(committed) => {
            report.committed = Some(committed.version);
            Ok(report)
        }
        Err(e) => Err(e.into()),
    }
}

/// The paths of the files commits `after + 1 ..= head` added: a copy staged after the
/// engine's search (a later round moving a found event to another date) lies in one.
async fn files_added_after(staging: &DeltaTable, after: u64, head: u64) -> Result<HashSet<String>> {
    let mut commits = std::pin::pin!(commits_in(staging.log_store(), after + 1..=head, 16));
    let mut added = HashSet::new();
    while let Some((version, actions)) = commits.try_next().await? {
        let Some(actions) = actions else {
            return Err(CompactError::Candidates(format!(
                "staging's commit {version}, after the version they were found at (v{after}), \
                 is gone from the Delta log: run the query again"
            )));
        };
        added.extend(actions.into_iter().filter_map(|action| match action {
            Action::Add(add) => Some(add.path),
            _ => None,
        }));
    }
    Ok(added)
}

/// The keys of this pass staged more than once, and the files holding them.
struct Duplicated {
    keys: HashSet<Key>,
    files: Vec<usize>,
}

/// Reads the uuids of the `selected` staging files and keeps the `wanted` keys that occur
/// more than once.
async fn duplicated_keys(
    staging: &DeltaTable,
    files: &[Add],
    selected: &[usize],
    wanted: impl Fn(&Key) -> bool,
    report: &mut SweepReport,
) -> Result<Duplicated> {
    const COLUMNS: &[&str] = &[EVENT_UUID];
    let store = staging.object_store();
    let mut reads = futures::stream::iter(selected.iter().copied())
        .map(|i| {
            let (store, add) = (store.clone(), files[i].clone());
            async move {
                let batches = read_file_on_task(store, Table::Staging, add, Some(COLUMNS)).await?;
                Ok::<_, lakehouse_lake::LakeError>((i, batches))
            }
        })
        .buffer_unordered(READS_AT_ONCE);
    let mut seen: Vec<(Key, u32)> = Vec::new();
    while let Some((file, batches)) = reads.try_next().await? {
        report.files_read += 1;
        for batch in &batches {
            report.rows_read += batch.num_rows() as u64;
            let uuids = batch.column(0).as_string::<i32>();
            for row in 0..batch.num_rows() {
                let key = Key::of(uuids.value(row));
                if wanted(&key) {
                    seen.push((key, file as u32));
                }
            }
        }
    }
    seen.sort_unstable();
    let mut duplicated = Duplicated {
        keys: HashSet::new(),
        files: Vec::new(),
    };
    for same in seen.chunk_by(|a, b| a.0 == b.0).filter(|s| s.len() > 1) {
        duplicated.keys.insert(same[0].0);
        duplicated
            .files
            .extend(same.iter().map(|(_, f)| *f as usize));
    }
    duplicated.files.sort_unstable();
    duplicated.files.dedup();
    Ok(duplicated)
}

/// A staged copy: its precedence, file index and row.
type Copy = (Precedence, usize, usize);

/// Every staged copy of the uuids whose keys are `duplicated`, by uuid: the uuid strings
/// decide, so two uuids sharing a key are two events.
async fn copies_of(
    staging: &DeltaTable,
    files: &[Add],
    duplicated: &Duplicated,
) -> Result<HashMap<String, Vec<Copy>>> {
    const COLUMNS: &[&str] = &[EVENT_UUID, CREATED_DATETIME, RAW_VERSION, INGEST_SEQ];
    let store = staging.object_store();
    let mut reads = futures::stream::iter(duplicated.files.iter().copied())
        .map(|i| {
            let (store, add) = (store.clone(), files[i].clone());
            async move {
                let batches = read_file_on_task(store, Table::Staging, add, Some(COLUMNS)).await?;
                Ok::<_, lakehouse_lake::LakeError>((i, batches))
            }
        })
        .buffer_unordered(READS_AT_ONCE);
    let mut copies: HashMap<String, Vec<Copy>> = HashMap::new();
    while let Some((file, batches)) = reads.try_next().await? {
        let mut offset = 0;
        for batch in &batches {
            // Columns come in table order, whatever order they were asked in.
            let column = |name: &str| {
                batch.column_by_name(name).cloned().ok_or_else(|| {
                    lakehouse_lake::LakeError::ReadFile {
                        path: files[file].path.clone(),
                        error: format!("no column {name}"),
                    }
                })
            };
            let (uuids, created, version, seq) = (
                column(EVENT_UUID)?,
                column(CREATED_DATETIME)?,
                column(RAW_VERSION)?,
                column(INGEST_SEQ)?,
            );
            let uuids = uuids.as_string::<i32>();
            let created = created.as_primitive::<TimestampMicrosecondType>();
            let (version, seq) = (
                version.as_primitive::<Int64Type>(),
                seq.as_primitive::<Int64Type>(),
            );
            for row in 0..batch.num_rows() {
                let uuid = uuids.value(row);
                if !duplicated.keys.contains(&Key::of(uuid)) {
                    continue;
                }
                let precedence = Precedence {
                    created_micros: value_or_min(created, row),
                    raw_version: value_or_min(version, row),
                    ingest_seq: value_or_min(seq, row),
                };
                copies
                    .entry(uuid.to_string())
                    .or_default()
                    .push((precedence, file, offset + row));
            }
            offset += batch.num_rows();
        }
    }
    copies.retain(|_, rows| rows.len() > 1);
    Ok(copies)
}
