//! Applies newly ingested rows to `staging` so it keeps exactly one row per `event_uuid`.
//!
//! Which staging files are searched for older copies: by default those of the partitions
//! the key index (`staging_keys`) places a new row's uuid in, so a new event reads no
//! staging file at all and a copy of any age is found; or, with a horizon, every file
//! whose `event_date` lies within it of a new row's date. Of those files only the
//! `event_uuid` and `created_datetime` columns are read (`payload` too where a tie on the
//! instant needs it), and the uuids themselves decide. A file is rewritten only when one of
//! its rows is replaced; a redelivered duplicate (same uuid, same `created_datetime`, same
//! payload) changes nothing.

use foldhash::{HashMap, HashMapExt};
use std::collections::HashSet;
use std::num::NonZeroU64;
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::{concat_batches, filter_record_batch};
use deltalake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::{DeltaOperation, MergePredicate};
use deltalake::{DeltaTable, ObjectStore};
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::files::{
    live_files, parse_partition_date, read_file, read_file_on_task, remove_of,
};
use lakehouse_lake::keys::{Key, mark_carried};
use lakehouse_lake::point_read::PointReadStats;
use lakehouse_lake::ranges::{file_key_range, tag_file_key_range};
use lakehouse_lake::schema::{
    CREATED_DATETIME, EVENT_DATE, EVENT_TYPE, EVENT_UUID, INGEST_SEQ, PAYLOAD, RAW_VERSION,
};
use lakehouse_lake::write::FileWriter;
use lakehouse_lake::{Commit, CommitMetadata, RunRange, Table};
use serde::Serialize;

use crate::error::Result;
use crate::keys::{Runs, lookup};
use crate::resolve::{
    MERGE_PREDICATE, Precedence, RowRef, Winners, by_instant, latest_per_uuid, on_same_instant,
    value_or_min,
};
use crate::write::write_by_partition;

/// How a merge finds the staging files that may hold older copies of its new rows.
#[derive(Clone, Copy)]
pub enum Search<'a> {
    /// The key index, current at least up to the staging version merged into, and which
    /// of its runs to read (all, or a hot window's).
    Index(&'a DeltaTable, Runs),
    /// Files whose `event_date` lies within this many days of a new row's; 0: every file.
    Horizon(u32),
}

#[derive(Debug, Clone)]
pub struct MergeOptions {
    pub writer_properties: WriterProperties,
    /// Files read at once.
    pub read_concurrency: usize,
    /// A fanned-out run's range: of event types, whose staging partitions only are searched
    /// and rewritten, or of keys.
    pub range: Option<RunRange>,
    /// New rows roll into another file of their partition past about this size.
    pub file_size: NonZeroU64,
}

/// What one merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeMetrics {
    /// New rows read from `raw`: this run's (or range's).
    pub source_rows: u64,
    /// Rows decoded from `raw`'s files: a range's and other ranges' (a key range decodes
    /// its buckets' rows of a clustered file, and one either side).
    pub raw_rows_scanned: u64,
    /// Events seen for the first time.
    pub inserted: u64,
    /// Events whose staging row was replaced by a newer copy.
    pub updated: u64,
    /// Copies that lost: older, or identical redeliveries.
    pub discarded: u64,
    pub files_scanned: u64,
    /// Pages of the key index read by the lookup, of those in the files it opened.
    pub index_pages_read: u64,
    pub index_pages: u64,
    pub files_rewritten: u64,
    /// Bytes of the staging files rewritten: what replacing rows cost.
    pub bytes_rewritten: u64,
    pub files_added: u64,
    /// Rows in the files this merge removed: the replaced rows plus those carried over
    /// into new files.
    pub rows_removed: u64,
    /// The key index was being built: this merge searched staging by date instead, this
    /// many days either side of each new row (a hot window's hours, in whole days).
    pub searched_while_building: Option<u32>,
}

/// A merge whose files are written but not yet committed.
pub struct PreparedMerge {
    /// `staging` as the merge read it: the commit is checked for conflicts against it.
    pub staging: DeltaTable,
    pub actions: Vec<Action>,
    pub metrics: MergeMetrics,
    /// The last `raw` version these rows come from, and that table's id; recorded with
    /// the commit.
    pub raw_version: u64,
    pub raw_table_id: String,
    /// Set when only the first this-many files (path order) of `raw_version` are in.
    pub raw_files_consumed: Option<u64>,
}

/// What staging holds of a new event, for the few it holds at all.
#[derive(Default)]
struct Found {
    /// A newer copy, or an identical one, is already in staging.
    lost: bool,
    /// Staging rows the new copy replaces: `(file index, row)`.
    replaces: Vec<(usize, usize)>,
}

/// Plans the merge of `new_rows` (rows of the `staging` schema) into `staging` and writes its
/// files. Nothing is visible until [`commit_merge`].
pub async fn prepare_merge(
    staging: DeltaTable,
    new_rows: &[RecordBatch],
    (raw_version, raw_table_id): (u64, String),
    options: &MergeOptions,
    search: Search<'_>,
) -> Result<PreparedMerge> {
    let mut metrics = MergeMetrics {
        source_rows: new_rows.iter().map(|b| b.num_rows() as u64).sum(),
        ..Default::default()
    };
    let candidates = latest_per_uuid(new_rows)?;
    let files = match search {
        Search::Index(keys, runs) => {
            let (files, read) =
                files_of_staged_copies(&staging, keys, runs, &candidates, options).await?;
            metrics.index_pages_read = read.pages_read;
            metrics.index_pages = read.pages;
            files
        }
        Search::Horizon(days) => files_in_horizon(&staging, &candidates, days, options)?,
    };
    metrics.files_scanned = files.len() as u64;
    let store = staging.object_store();
    let found = find_older_copies(&store, &files, new_rows, &candidates, options).await?;
    // Rows to drop from existing files: those replaced by a candidate that won.
    let mut dropped: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut winners: Vec<RowRef> = Vec::new();
    for (uuid, &(_, at)) in candidates.iter() {
        let found = found.get(uuid);
        if found.is_some_and(|f| f.lost) {
            continue;
        }
        winners.push(at);
        match found.filter(|f| !f.replaces.is_empty()) {
            None => metrics.inserted += 1,
            Some(f) => {
                metrics.updated += 1;
                for &(file, row) in &f.replaces {
                    dropped.entry(file).or_default().push(row);
                }
            }
        }
    }
    metrics.discarded = metrics.source_rows - winners.len() as u64;

    let writer = Arc::new(
        FileWriter::with_properties(Table::Staging, &staging, options.writer_properties.clone())?
            .with_file_size(options.file_size),
    );
    // A rewritten file's kept rows become a file of their own, a few files at a time:
    // holding them all until the end would hold every file an update touches, which grows
    // with staging. Then the winners, in input order (deterministic output for a given
    // input), each partition's into one new file.
    let mut rewritten: Vec<(usize, &Vec<usize>)> = dropped.iter().map(|(f, r)| (*f, r)).collect();
    rewritten.sort_unstable();
    let removes: Vec<Action> = rewritten
        .iter()
        .map(|&(f, _)| Action::Remove(remove_of(&files[f], true)))
        .collect();
    let mut actions = Vec::new();
    let mut rewrites = futures::stream::iter(rewritten)
        .map(|(file, dropped_rows)| {
            let (store, writer, add) = (store.clone(), writer.clone(), &files[file]);
            async move { rewrite_without(store, &writer, add, dropped_rows).await }
        })
        .buffered(REWRITES_AT_ONCE);
    while let Some((removed_rows, adds)) = rewrites.try_next().await? {
        metrics.rows_removed += removed_rows;
        metrics.files_added += adds.len() as u64;
        actions.extend(adds.into_iter().map(Action::Add));
    }
    actions.extend(removes);
    metrics.files_rewritten = dropped.len() as u64;
    metrics.bytes_rewritten = dropped.keys().map(|&f| files[f].size.max(0) as u64).sum();
    winners.sort_unstable();
    let adds = write_by_partition(&writer, new_rows, &winners).await?;
    metrics.files_added += adds.len() as u64;
    actions.extend(adds.into_iter().map(Action::Add));
    Ok(PreparedMerge {
        staging,
        actions,
        metrics,
        raw_version,
        raw_table_id,
        raw_files_consumed: None,
    })
}

/// Rewritten staging files read and written at once.
const REWRITES_AT_ONCE: usize = 4;

/// Writes the rows of staging file `add` but those at `dropped` as a new file of its
/// partition (none when no row is left); returns the rows the file had and the new file.
pub(crate) async fn rewrite_without(
    store: Arc<dyn ObjectStore>,
    writer: &FileWriter,
    add: &Add,
    dropped: &[usize],
) -> Result<(u64, Vec<Add>)> {
    let existing = read_file(store, Table::Staging, add, None).await?;
    let rows = existing.iter().map(|b| b.num_rows() as u64).sum();
    let kept = rows_without(existing, dropped)?;
    let kept = concat_batches(&Table::Staging.arrow_schema(), &kept)?;
    if kept.num_rows() == 0 {
        return Ok((rows, Vec::new()));
    }
    let key = writer.key_of(add)?;
    let mut adds = writer.write(&key, kept).await?;
    // Kept rows: the key index holds them already, and they are a key range's if the
    // file's were.
    for new in &mut adds {
        mark_carried(new);
        if let Some(range) = file_key_range(add) {
            tag_file_key_range(new, range);
        }
    }
    Ok((rows, adds))
}

/// Commits a prepared merge with the `raw` version it consumed, as a Delta `txn` action in
/// the same commit: the data and the progress land together or not at all.
pub async fn commit_merge(
    prepared: PreparedMerge,
    app_id: &str,
    range: Option<RunRange>,
) -> Result<u64> {
    let metadata = CommitMetadata {
        source: Some(app_id.to_string()),
        raw_version: Some(prepared.raw_version),
        raw_table_id: Some(prepared.raw_table_id.clone()),
        raw_files_consumed: prepared.raw_files_consumed,
        rows_removed: Some(prepared.metrics.rows_removed),
        merge: serde_json::to_value(&prepared.metrics).ok(),
        ..CommitMetadata::default()
    };
    let operation = DeltaOperation::Merge {
        predicate: None,
        merge_predicate: Some("target.event_uuid = source.event_uuid".into()),
        matched_predicates: vec![MergePredicate {
            action_type: "update".into(),
            predicate: Some(MERGE_PREDICATE.into()),
        }],
        not_matched_predicates: vec![MergePredicate {
            action_type: "insert".into(),
            predicate: None,
        }],
        not_matched_by_source_predicates: vec![],
    };
    // The txn names the last raw version consumed whole: a partial merge leaves it where
    // it was (none yet for version 0) and says how far it got in its metadata.
    let consumed_whole = match prepared.raw_files_consumed {
        None => Some(prepared.raw_version as i64),
        Some(_) => prepared.raw_version.checked_sub(1).map(|v| v as i64),
    };
    let mut commit = Commit::new(operation, prepared.actions).with_metadata(metadata);
    if let Some(version) = consumed_whole {
        commit = commit.with_transaction(Transaction::new(app_id, version));
    }
    let commit = match range {
        Some(range) => commit.reading_range(range),
        None => commit.reading_table(),
    };
    Ok(commit.execute(&prepared.staging).await?.version)
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Staging files whose `event_date` lies within `horizon_days` of some candidate's date.
/// The window is per date: one stray event dated 1970 reads the files around 1970, not
/// every file between 1970 and today.
fn files_in_horizon(
    staging: &DeltaTable,
    candidates: &Winners,
    horizon_days: u32,
    options: &MergeOptions,
) -> Result<Vec<Add>> {
    let mut days: Vec<i64> = candidates
        .iter()
        .map(|(_, (precedence, _))| precedence.created_micros.div_euclid(MICROS_PER_DAY))
        .collect();
    if days.is_empty() {
        return Ok(Vec::new());
    }
    days.sort_unstable();
    days.dedup();
    let horizon = i64::from(horizon_days);
    // The candidate day nearest `d` from above or below decides.
    let near_a_candidate = |d: i64| {
        let i = days.partition_point(|&c| c < d - horizon);
        days.get(i).is_some_and(|&c| c <= d + horizon)
    };
    let mut files = Vec::new();
    for add in live_files(staging)? {
        if options.range.is_some_and(|r| !r.may_hold_file(&add)) {
            continue;
        }
        let date = parse_partition_date(&add, EVENT_DATE)?.map(i64::from);
        let within = match date {
            Some(d) if horizon > 0 => near_a_candidate(d),
            _ => true,
        };
        if within {
            files.push(add);
        }
    }
    Ok(files)
}

/// Staging files of the partitions where the key index holds a candidate's latest row:
/// the date of the row's instant and its type (of this run's range). A candidate the index
/// lacks has no staged row, and no file is read for it.
async fn files_of_staged_copies(
    staging: &DeltaTable,
    keys: &DeltaTable,
    runs: Runs,
    candidates: &Winners<'_>,
    options: &MergeOptions,
) -> Result<(Vec<Add>, PointReadStats)> {
    let wanted: HashSet<Key> = candidates.iter().map(|(uuid, _)| Key::of(uuid)).collect();
    let (staged, read) = lookup(keys, &wanted, options.range, runs).await?;
    // (date, type); a date of `None` (a row without an instant) stands for every date.
    let mut partitions: HashSet<(Option<i32>, &str)> = HashSet::new();
    for (created, types) in staged.values() {
        let date = created.map(|c| c.div_euclid(MICROS_PER_DAY) as i32);
        partitions.extend(types.iter().map(|t| (date, t.as_str())));
    }
    if partitions.is_empty() {
        return Ok((Vec::new(), read));
    }
    let mut files = Vec::new();
    for add in live_files(staging)? {
        let Some(event_type) = add.partition_values.get(EVENT_TYPE).cloned().flatten() else {
            continue;
        };
        // Another key range's file holds none of this range's events.
        if options.range.is_some_and(|r| !r.may_hold_file(&add)) {
            continue;
        }
        let date = parse_partition_date(&add, EVENT_DATE)?;
        if partitions.contains(&(date, event_type.as_str()))
            || partitions.contains(&(None, event_type.as_str()))
        {
            files.push(add);
        }
    }
    Ok((files, read))
}

/// Compares each candidate with the staging rows of the same uuid in `files`; returns
/// what was found of those staging holds.
async fn find_older_copies<'a>(
    store: &Arc<dyn ObjectStore>,
    files: &[Add],
    new_rows: &[RecordBatch],
    candidates: &Winners<'a>,
    options: &MergeOptions,
) -> Result<HashMap<&'a str, Found>> {
    let mut found: HashMap<&'a str, Found> = HashMap::new();
    const KEY_COLUMNS: &[&str] = &[EVENT_UUID, CREATED_DATETIME];
    let mut reads = futures::stream::iter(files.iter().enumerate())
        .map(|(i, add)| {
            let store = store.clone();
            async move {
                Ok::<_, lakehouse_lake::LakeError>((
                    i,
                    read_file_on_task(store, Table::Staging, add.clone(), Some(KEY_COLUMNS))
                        .await?,
                ))
            }
        })
        .buffer_unordered(options.read_concurrency.max(1));
    // Ties on the instant, to settle by payload: file → [(row, uuid)].
    let mut ties: HashMap<usize, Vec<(usize, String)>> = HashMap::new();
    while let Some((file, batches)) = reads.try_next().await? {
        let mut offset = 0;
        for batch in &batches {
            let uuids = batch.column(0).as_string::<i32>();
            let created = batch.column(1).as_primitive::<TimestampMicrosecondType>();
            for row in 0..batch.num_rows() {
                let Some((uuid, (precedence, _))) = candidates.get_key_value(uuids.value(row))
                else {
                    continue;
                };
                let existing = value_or_min(created, row);
                let c = found.entry(uuid).or_default();
                match by_instant(precedence.created_micros, existing) {
                    Some(false) => c.lost = true,
                    Some(true) => c.replaces.push((file, offset + row)),
                    None => ties
                        .entry(file)
                        .or_default()
                        .push((offset + row, uuids.value(row).to_string())),
                }
            }
            offset += batch.num_rows();
        }
    }
    for (file, rows) in ties {
        const TIE_COLUMNS: &[&str] = &[RAW_VERSION, INGEST_SEQ, PAYLOAD];
        let batches = read_file(
            store.clone(),
            Table::Staging,
            &files[file],
            Some(TIE_COLUMNS),
        )
        .await?;
        // (raw_version, ingest_seq) and payload of a row of the file.
        let at = |row: usize| -> Option<((i64, i64), Option<String>)> {
            let mut offset = 0;
            for b in &batches {
                if row < offset + b.num_rows() {
                    let r = row - offset;
                    // Columns come in table order, whatever order they were asked in.
                    let column = |name| b.column_by_name(name).cloned();
                    let (Some(version), Some(seq), Some(payload)) =
                        (column(RAW_VERSION), column(INGEST_SEQ), column(PAYLOAD))
                    else {
                        return None;
                    };
                    let version = version.as_primitive::<Int64Type>();
                    let seq = seq.as_primitive::<Int64Type>();
                    let payload = payload.as_string::<i32>();
                    let order = (value_or_min(version, r), value_or_min(seq, r));
                    let text = payload.is_valid(r).then(|| payload.value(r).to_string());
                    return Some((order, text));
                }
                offset += b.num_rows();
            }
            None
        };
        for (row, uuid) in rows {
            let Some((uuid, &(precedence, (b, r)))) = candidates.get_key_value(uuid.as_str())
            else {
                continue;
            };
            // The file read twice must agree: left out, the tie would stage a second row.
            let Some((staged_order, staged_payload)) = at(row) else {
                return Err(lakehouse_lake::LakeError::BadRows(format!(
                    "staging file {} has no row {row} with {RAW_VERSION}, {INGEST_SEQ} and \
                     {PAYLOAD} on a second read",
                    files[file].path
                ))
                .into());
            };
            let c = found.entry(uuid).or_default();
            let new_payload = new_rows[b]
                .column_by_name(PAYLOAD)
                .map(|col| col.as_string::<i32>())
                .filter(|col| col.is_valid(r))
                .map(|col| col.value(r).to_string());
            let staged = Precedence {
                created_micros: precedence.created_micros,
                raw_version: staged_order.0,
                ingest_seq: staged_order.1,
            };
            if on_same_instant(
                precedence,
                new_payload.as_deref(),
                staged,
                staged_payload.as_deref(),
            ) {
                c.replaces.push((file, row));
            } else {
                c.lost = true;
            }
        }
    }
    Ok(found)
}

/// `batches` (one file, in order) without the rows at the given file positions.
fn rows_without(batches: Vec<RecordBatch>, rows: &[usize]) -> Result<Vec<RecordBatch>> {
    let rows: HashSet<usize> = rows.iter().copied().collect();
    let mut out = Vec::with_capacity(batches.len());
    let mut offset = 0;
    for batch in batches {
        let n = batch.num_rows();
        let keep: BooleanArray = (0..n)
            .map(|r| Some(!rows.contains(&(offset + r))))
            .collect();
        out.push(filter_record_batch(&batch, &keep)?);
        offset += n;
    }
    Ok(out)
}
