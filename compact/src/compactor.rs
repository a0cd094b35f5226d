//! One compaction run: consume what `raw` gained since the last run into `staging`, in
//! bounded chunks, each its own exactly-once commit; then maintain all three tables.

use std::collections::HashSet;
use std::num::NonZeroU64;
use std::ops::Range;
use std::sync::Arc;

use deltalake::arrow::array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::error::ArrowError;
use deltalake::kernel::{Add, Transaction};
use deltalake::{DeltaTable, ObjectStore};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::app_ids::{everywhere_app_id, staging_app_id};
use lakehouse_lake::clustered::read_buckets;
use lakehouse_lake::files::{read_file, rows_of};
use lakehouse_lake::schema::{EVENT_TYPE, EVENT_UUID, RAW_VERSION};
use lakehouse_lake::{
    DEFAULT_RETENTION_DAYS, DEFAULT_TARGET_FILE_SIZE, Lake, LakeError, RunRange, SplitBy, Table,
};
use serde::Serialize;

use crate::changes::{RawFile, raw_files_between};
use crate::error::{CompactError, Result};
use crate::keys::{KeysUpdate, Runs, index_trusted, update_keys};
use crate::lineage::check_same_raw;
use crate::maintain::{MaintenanceMetrics, MaintenanceOptions, maintain, vacuum_typed};
use crate::merge::{
    MergeMetrics, MergeOptions, PreparedMerge, Search, commit_merge, prepare_merge,
};
use crate::optimize::RawGuard;
use crate::optimize::RecentFiles;
use lakehouse_lake::progress::last_merge;
use lakehouse_lake::progress::{consumed_everywhere, start};
use lakehouse_lake::typed::{MirrorOptions, MirrorReport, mirror};

/// Merges a run plans again after losing to a concurrent run (which consumed the same
/// `raw` versions, rewrote the staging files the merge replaces, or removed and vacuumed a
/// file it read) before it gives up.
const MAX_REPLANS: u32 = 10;

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// `None` (the default): older copies are found through the key index, whatever their
    /// age. `Some(days)`: staging files within this many days of a new row's date are
    /// searched instead (0: every file), and copies further apart may both stay.
    pub horizon_days: Option<u32>,
    /// With the key index: `None` (the default) reads every run, so a copy of any age is
    /// resolved by the round that merges it. `Some(hours)`: a hot window, reading only runs
    /// indexed within the last `hours`, so a round costs what the window holds; a copy
    /// whose staged row is older lands beside it until `keys sweep`.
    pub hot_hours: Option<u32>,
    /// Upper bound on rows read from `raw` for one staging commit; a run commits as many
    /// chunks as it needs. Bounds memory.
    pub max_rows_per_commit: u64,
    pub target_file_size: NonZeroU64,
    /// Staging partitions dated this many days before today (UTC) or later are recent:
    /// their files stay under `recent_file_size`, which bounds what replacing one row
    /// there rewrites. Optimize packs older partitions to `target_file_size`.
    pub recent_days: u32,
    pub recent_file_size: NonZeroU64,
    pub retention: chrono::Duration,
    pub vacuum_full: bool,
    /// Skip optimize and vacuum (dedup only).
    pub skip_maintenance: bool,
    /// Leave the typed tables as they are (see [`lakehouse_lake::typed`]).
    pub skip_typed: bool,
    /// Fan-out: merge only this range of event types or of keys, as one of `count` runs
    /// (each with its own `txn` and lease) that do not fail each other's commits. Only
    /// range 0 maintains the tables. `None`: the whole table in one run.
    pub range: Option<RunRange>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            horizon_days: None,
            hot_hours: None,
            max_rows_per_commit: 1_000_000,
            target_file_size: NonZeroU64::new(DEFAULT_TARGET_FILE_SIZE).unwrap_or(NonZeroU64::MIN),
            recent_days: 2,
            recent_file_size: NonZeroU64::new(16 << 20).unwrap_or(NonZeroU64::MIN),
            retention: chrono::Duration::days(i64::from(DEFAULT_RETENTION_DAYS)),
            vacuum_full: false,
            skip_maintenance: false,
            skip_typed: false,
            range: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StagingCommit {
    pub raw_from: u64,
    pub raw_to: u64,
    pub staging_version: u64,
    #[serde(flatten)]
    pub merge: MergeMetrics,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// The `raw` version staging had consumed before this run (`None`: never).
    pub raw_consumed_before: Option<u64>,
    pub raw_version: u64,
    pub commits: Vec<StagingCommit>,
    pub maintenance: Vec<(String, MaintenanceMetrics)>,
    /// Merges planned again after a concurrent commit changed what they read.
    pub replans: u32,
    /// The key index brought up to staging (`None`: not reached).
    pub keys: Option<KeysUpdate>,
    /// The typed tables brought up to staging (`None`: not maintained by this run).
    pub typed: Option<MirrorReport>,
}

impl CompactReport {
    /// Records an update of the key index: the latest version, what all added, and
    /// whether one rebuilt it.
    fn note_keys(&mut self, update: KeysUpdate) {
        self.keys = Some(match self.keys.take() {
            None => update,
            Some(before) => before.then(update),
        });
    }

    pub fn total(&self) -> MergeMetrics {
        let mut t = MergeMetrics::default();
        for c in &self.commits {
            t.source_rows += c.merge.source_rows;
            t.raw_rows_scanned += c.merge.raw_rows_scanned;
            t.inserted += c.merge.inserted;
            t.updated += c.merge.updated;
            t.discarded += c.merge.discarded;
            t.files_scanned += c.merge.files_scanned;
            t.index_pages_read += c.merge.index_pages_read;
            t.index_pages += c.merge.index_pages;
            t.files_rewritten += c.merge.files_rewritten;
            t.bytes_rewritten += c.merge.bytes_rewritten;
            t.files_added += c.merge.files_added;
            t.rows_removed += c.merge.rows_removed;
            t.searched_while_building = t
                .searched_while_building
                .max(c.merge.searched_while_building);
        }
        t
    }
}

/// Asked before every commit a run makes; an error stops the run before that commit
/// (the compaction Lambda renews its DynamoDB lease here).
pub trait CommitFence: Send + Sync {
    fn check(&self) -> BoxFuture<'_, std::result::Result<(), FenceError>>;
}

/// Why a fence stopped a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceError {
    /// Another run holds the right to commit now: stopping is the protocol working.
    Lost(String),
    /// Whether this run may commit could not be learnt (the lease store failed or
    /// throttled): a fault, to report and retry.
    Unavailable(String),
}

pub struct Compactor {
    lake: Lake,
    options: CompactOptions,
    fence: Option<Arc<dyn CommitFence>>,
}

impl Compactor {
    pub fn new(lake: Lake, options: CompactOptions) -> Compactor {
        Compactor {
            lake,
            options,
            fence: None,
        }
    }

    pub fn with_fence(mut self, fence: Arc<dyn CommitFence>) -> Compactor {
        self.fence = Some(fence);
        self
    }

    async fn before_commit(&self) -> Result<()> {
        match &self.fence {
            Some(fence) => fence.check().await.map_err(|e| match e {
                FenceError::Lost(reason) => CompactError::Fenced(reason),
                FenceError::Unavailable(reason) => CompactError::FenceUnavailable(reason),
            }),
            None => Ok(()),
        }
    }

    fn merge_options(&self) -> MergeOptions {
        MergeOptions {
            writer_properties: Table::Staging.writer_properties(),
            read_concurrency: 8,
            range: self.options.range,
            // New rows are mostly recent: files the size of a recent partition's.
            file_size: self.options.recent_file_size,
        }
    }

    /// Which staging partitions are recent today, and their file size.
    fn recent_files(&self) -> RecentFiles {
        let today = chrono::Utc::now().timestamp().div_euclid(86_400);
        let since = today - i64::from(self.options.recent_days);
        RecentFiles {
            since: i32::try_from(since).unwrap_or(i32::MIN),
            file_size: self.options.recent_file_size.get(),
        }
    }

    /// The `txn` app id under which staging records what this run's range consumed.
    pub fn app_id(&self) -> String {
        staging_app_id(self.options.range)
    }

    /// Dedups everything `raw` gained into `staging`, then maintains the tables.
    pub async fn run(&self) -> Result<CompactReport> {
        let mut report = CompactReport::default();
        // A run consumes what `raw` held when it started: with ingest appending all the
        // while, chasing the head would never end (and a Lambda has 15 minutes).
        let mut until = None;
        let mut replans = 0;
        loop {
            let next = match self.prepare_next(&mut report, until).await {
                Err(e) if stale_plan(&e) && replans < MAX_REPLANS => {
                    replans += 1;
                    report.replans = replans;
                    tracing::info!(error = %e, replans, "a file of the plan is gone; planning again");
                    continue;
                }
                next => next?,
            };
            until.get_or_insert(report.raw_version);
            let Some((prepared, from)) = next else {
                break;
            };
            let merge = prepared.metrics.clone();
            let raw_to = prepared.raw_version;
            let consumed_all =
                prepared.raw_files_consumed.is_none() && until.is_some_and(|until| raw_to >= until);
            self.before_commit().await?;
            let version = match commit_merge(prepared, &self.app_id(), self.options.range).await {
                Ok(version) => version,
                Err(e) if stale_plan(&e) && replans < MAX_REPLANS => {
                    replans += 1;
                    report.replans = replans;
                    tracing::info!(error = %e, replans, "staging merge lost to a concurrent run; planning again");
                    continue;
                }
                Err(e) => return Err(e),
            };
            tracing::info!(
                raw_from = from,
                raw_to,
                staging_version = version,
                "staging commit"
            );
            report.commits.push(StagingCommit {
                raw_from: from,
                raw_to,
                staging_version: version,
                merge,
            });
            if consumed_all {
                // Nothing left up to `until`: planning again would only reopen both logs.
                break;
            }
        }
        // Before maintenance, so that optimize repacks files the index already holds.
        self.before_commit().await?;
        let update = update_keys(&self.lake, self.options.max_rows_per_commit).await?;
        report.note_keys(update);
        // One range maintains for all: the others would only race it to the same rewrites.
        let maintains = self.options.range.is_none_or(|r| r.index() == 0);
        if !self.options.skip_maintenance && maintains {
            for table in Table::ALL {
                let options = MaintenanceOptions {
                    target_file_size: self.options.target_file_size,
                    recent: (table == Table::Staging).then(|| self.recent_files()),
                    writer_properties: table.writer_properties(),
                    retention: self.options.retention,
                    vacuum_full: self.options.vacuum_full,
                };
                let delta = self.lake.open(table).await?;
                let guard = match table {
                    Table::Raw => match self.raw_guard(&delta).await? {
                        Some(guard) => guard,
                        None => continue,
                    },
                    _ => RawGuard::default(),
                };
                self.before_commit().await?;
                let (_, metrics) = maintain(delta, table, &guard, &options).await?;
                report.maintenance.push((table.name().to_string(), metrics));
            }
        }
        // After staging's maintenance, so that the typed tables follow its repacked files
        // in the same run.
        // Ranges of types mirror their own types; of ranges of keys, the one that maintains
        // mirrors all (the others would only race it on every type's progress).
        let mirrors = match self.options.range {
            Some(r) if r.by() == SplitBy::Keys => maintains,
            _ => true,
        };
        if !self.options.skip_typed && mirrors {
            self.before_commit().await?;
            report.typed = Some(self.mirror_typed().await?);
            if !self.options.skip_maintenance && maintains {
                for table in self.lake.typed_tables().await? {
                    let vacuumed = vacuum_typed(
                        table.delta,
                        self.options.retention,
                        self.options.vacuum_full,
                    )
                    .await?;
                    if vacuumed > 0 {
                        let metrics = MaintenanceMetrics {
                            files_vacuumed: vacuumed,
                            ..MaintenanceMetrics::default()
                        };
                        report
                            .maintenance
                            .push((format!("typed {}", table.event_type), metrics));
                    }
                }
            }
        }
        Ok(report)
    }

    /// Brings the typed tables of this run's event types (all, unless it is one range of
    /// types) to the staging version now.
    async fn mirror_typed(&self) -> Result<MirrorReport> {
        let staging = self.lake.open(Table::Staging).await?;
        let range = self.options.range;
        let only = move |event_type: &str| {
            range.is_none_or(|r| r.by() != SplitBy::Types || r.holds_type(event_type))
        };
        let options = MirrorOptions {
            only: &only,
            ..MirrorOptions::default()
        };
        Ok(mirror(&self.lake, &staging, options).await?)
    }

    /// What maintenance must leave of `raw`: the files of versions after what every kind of
    /// run has consumed (a rewrite would have vacuum delete them, once the retention
    /// passes, before some run reads them), and that version, recorded in the commit that
    /// removes files (see [`lakehouse_lake::progress`]). `None` while nothing is consumed (every
    /// file is protected).
    async fn raw_guard(&self, raw: &DeltaTable) -> Result<Option<RawGuard>> {
        let staging = self.lake.open(Table::Staging).await?;
        let Some(consumed) = consumed_everywhere(raw, &staging, self.options.range).await? else {
            return Ok(None);
        };
        let staging_id = staging.snapshot()?.metadata().id().to_string();
        let record = Transaction::new(everywhere_app_id(&staging_id), consumed as i64);
        let head = raw.version().unwrap_or(0);
        let protected = if consumed >= head {
            HashSet::new()
        } else {
            raw_files_between(raw, consumed + 1, head)
                .await?
                .into_iter()
                .flatten()
                .map(|f| f.add.path)
                .collect()
        };
        Ok(Some(RawGuard {
            protected,
            record: Some(record),
        }))
    }

    /// Reads the next chunk of unconsumed `raw` commits, up to version `until` when given,
    /// and writes (without committing) its merge into `staging`. `None` when staging is up
    /// to date.
    pub async fn prepare_next(
        &self,
        report: &mut CompactReport,
        until: Option<u64>,
    ) -> Result<Option<(PreparedMerge, u64)>> {
        let (raw, staging) =
            tokio::try_join!(self.lake.open(Table::Raw), self.lake.open(Table::Staging))?;
        let progress = start(&raw, &staging, self.options.range).await?;
        let consumed = progress.as_ref().map(|p| p.version);
        let head = raw.version().unwrap_or(0);
        let raw_table_id = raw.snapshot()?.metadata().id().to_string();
        if report.commits.is_empty() {
            report.raw_consumed_before = consumed;
            if let Some(consumed) = consumed {
                // Any merge names the raw it consumed: all of staging's came from one.
                let last = last_merge(&staging, None).await?;
                check_same_raw(last.as_ref(), (&raw_table_id, head), consumed)?;
            }
        }
        let latest = until.map_or(head, |until| until.min(head));
        report.raw_version = latest;
        let from = consumed.map_or(0, |v| v + 1);
        if from > latest {
            return Ok(None);
        }
        // How far into `from` (a commit too big for one merge) the record's run got; only a
        // record that covers this run's events says anything of them.
        let done_in_from = match &progress {
            Some(p) if p.partial_applies => last_merge(&staging, Some(&p.app_id))
                .await?
                .filter(|m| m.raw_version == Some(from))
                .and_then(|m| m.raw_files_consumed)
                .unwrap_or(0) as usize,
            _ => 0,
        };
        // Take whole commits until the row budget is spent; a commit over the budget on
        // its own is taken file by file (at least one file).
        let budget = self.options.max_rows_per_commit;
        let mut files: Vec<RawFile> = Vec::new();
        let mut rows = 0u64;
        let mut to = from;
        let mut partial = None;
        // Raw gained data, even if none for this range.
        let mut gained = false;
        let range = self.options.range;
        for (version, mut added) in
            (from..=latest).zip(raw_files_between(&raw, from, latest).await?)
        {
            let skip = if version == from { done_in_from } else { 0 };
            let total = added.len();
            gained |= total > skip;
            // Partial progress counts files of the whole commit in path order, whichever
            // range took them, so every run reads it the same way.
            added.sort_by(|a, b| a.add.path.cmp(&b.add.path));
            let added: Vec<(usize, RawFile)> = added
                .into_iter()
                .enumerate()
                .skip(skip)
                .filter(|(_, f)| may_hold(range, f))
                .collect();
            let commit_rows: u64 = added.iter().map(|(_, f)| file_rows(f)).sum();
            if rows + commit_rows <= budget {
                rows += commit_rows;
                files.extend(added.into_iter().map(|(_, f)| f));
                to = version;
                continue;
            }
            if files.is_empty() {
                // Nothing taken yet: this commit alone is over the budget.
                to = version;
                let mut through = skip;
                for (index, file) in added {
                    if through > skip && rows + file_rows(&file) > budget {
                        break;
                    }
                    rows += file_rows(&file);
                    files.push(file);
                    through = index + 1;
                }
                if through < total {
                    partial = Some(through as u64);
                }
            }
            break;
        }
        if files.is_empty() && to == latest && partial.is_none() && !gained {
            // Only maintenance commits since last time: no new rows, nothing to commit.
            return Ok(None);
        }
        // A range that raw gained nothing for still records that it has read to `latest`
        // (a merge of no rows): otherwise its kind would never count as having consumed
        // anything, and its lag would grow for ever.
        let store = raw.object_store();
        let buckets = range.and_then(RunRange::buckets);
        let read: Vec<(Vec<RecordBatch>, u64)> = futures::stream::iter(files.iter())
            .map(|f| {
                let store = store.clone();
                let buckets = buckets.clone();
                async move {
                    if f.erased {
                        return Ok((Vec::new(), 0));
                    }
                    let (batches, scanned) = read_raw_file(store, f.add.clone(), buckets).await?;
                    let rows = batches
                        .into_iter()
                        .map(|b| as_staging_rows(of_range(b, range)?, f.version))
                        .collect::<Result<Vec<_>>>()?;
                    Ok::<_, CompactError>((rows, scanned))
                }
            })
            // Many files in flight: a key range's read of a clustered file is two GETs
            // in sequence, so on S3 latency, not bytes, bounds it. Every row read is kept
            // anyway, so more in flight costs no memory.
            .buffered(RAW_READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let raw_rows_scanned = read.iter().map(|(_, scanned)| scanned).sum();
        let new_rows: Vec<RecordBatch> = read.into_iter().flat_map(|(rows, _)| rows).collect();
        // With a hot window, copies outside it already wait for the sweep: while the index
        // is (re)built, merges go on, searching the window by date (whole days, at least
        // one), and the update after them goes on with the build.
        let building_days = match (self.options.horizon_days, self.options.hot_hours) {
            (None, Some(hours)) if !index_trusted(&self.lake, &staging).await? => {
                Some(hours.div_ceil(24).max(1))
            }
            _ => None,
        };
        let keys = match self.options.horizon_days.or(building_days) {
            Some(_) => None,
            None => {
                // The index must hold at least the staging version merged into.
                self.before_commit().await?;
                report.note_keys(update_keys(&self.lake, self.options.max_rows_per_commit).await?);
                Some(self.lake.open(Table::Keys).await?)
            }
        };
        let search = match (&keys, self.options.horizon_days.or(building_days)) {
            (Some(keys), _) => Search::Index(
                keys,
                Runs::window(self.options.hot_hours, chrono::Utc::now().timestamp()),
            ),
            (None, days) => Search::Horizon(days.unwrap_or(0)),
        };
        let mut prepared = prepare_merge(
            staging,
            &new_rows,
            (to, raw_table_id),
            &self.merge_options(),
            search,
        )
        .await?;
        prepared.raw_files_consumed = partial;
        prepared.metrics.raw_rows_scanned = raw_rows_scanned;
        prepared.metrics.searched_while_building = building_days;
        Ok(Some((prepared, from)))
    }
}

/// Raw files a merge reads at once.
const RAW_READS_IN_FLIGHT: usize = 32;

/// The rows of a raw file a run takes, a superset filtered by [`of_range`], and how many
/// it decoded: a key range reads only the row groups holding its buckets of a clustered
/// file.
async fn read_raw_file(
    store: Arc<dyn ObjectStore>,
    add: Add,
    buckets: Option<Range<u32>>,
) -> Result<(Vec<RecordBatch>, u64)> {
    let path = add.path.clone();
    let rows = tokio::spawn(async move {
        match buckets {
            Some(buckets) => read_buckets(store, Table::Raw, &add, buckets)
                .await
                .map(|read| read.rows),
            None => read_file(store, Table::Raw, &add, None).await,
        }
    })
    .await
    .map_err(|e| LakeError::ReadFile {
        path,
        error: e.to_string(),
    })??;
    let scanned = rows.iter().map(|b| b.num_rows() as u64).sum();
    Ok((rows, scanned))
}

/// Whether `error` says the plan went stale under a concurrent run, not that it was wrong:
/// a commit that landed first (the same raw versions consumed, the staging files the merge
/// replaces rewritten), or a file the plan reads removed and vacuumed meanwhile (a
/// maintainer of another kind moved on under a short retention). Planning again heals it.
fn stale_plan(error: &CompactError) -> bool {
    matches!(
        error,
        CompactError::Lake(LakeError::Conflict { .. } | LakeError::Vanished { .. })
    )
}

/// Whether a raw file may hold rows of `range`: by its type partition, or, in raw laid
/// out by date only or with ranges of keys, always (its rows are filtered once read).
fn may_hold(range: Option<RunRange>, file: &RawFile) -> bool {
    range.is_none_or(|r| r.may_hold_file(&file.add))
}

/// The rows of `batch` in `range`: by their event type or by their uuid's key.
fn of_range(batch: RecordBatch, range: Option<RunRange>) -> Result<RecordBatch> {
    let Some(range) = range else {
        return Ok(batch);
    };
    let (column, holds): (&str, &dyn Fn(&str) -> bool) = match range.by() {
        SplitBy::Types => (EVENT_TYPE, &|t| range.holds_type(t)),
        SplitBy::Keys => (EVENT_UUID, &|u| range.holds_uuid(u)),
    };
    // Both are non-null strings in raw's schema; anything else must not pass unfiltered.
    let values = batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| {
            ArrowError::SchemaError(format!("raw rows without a string column {column}"))
        })?;
    let keep: BooleanArray = values.iter().map(|v| Some(v.is_some_and(holds))).collect();
    Ok(filter_record_batch(&batch, &keep)?)
}

/// Rows in a raw file, by its statistics (every file we write has them).
fn file_rows(file: &RawFile) -> u64 {
    rows_of(&file.add).unwrap_or(0)
}

/// A `raw` row as a `staging` row: the same columns plus the raw version that added it.
fn as_staging_rows(raw_rows: RecordBatch, raw_version: u64) -> Result<RecordBatch> {
    let schema = Table::Staging.arrow_schema();
    let n = raw_rows.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            RAW_VERSION => {
                Ok(std::sync::Arc::new(Int64Array::from(vec![raw_version as i64; n])) as _)
            }
            name => raw_rows.column_by_name(name).cloned().ok_or_else(|| {
                deltalake::arrow::error::ArrowError::SchemaError(format!("raw rows lack {name}"))
            }),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}
