//! The lake's health at a glance, read from the Delta logs only (no data file is read, so
//! it stays fast on S3): per table its version, last commit, files, small files and
//! partitions, and how far back time travel still reaches; how far staging is behind raw;
//! and what quarantine took lately, by reason (each ingest commit records its counts).

use std::collections::{BTreeMap, HashSet};
use std::pin::pin;

use chrono::{DateTime, Duration, Utc};
use deltalake::DeltaTable;
use deltalake::Path;
use deltalake::kernel::Action;
use futures::TryStreamExt;
use lakehouse_lake::app_ids::VACUUMED_BEFORE_APP_ID;
use lakehouse_lake::files::{live_files, rows_of};
use lakehouse_lake::log::{commit_actions, commits_in, txn_version};
use lakehouse_lake::{CommitMetadata, Lake, LakeError, Table};
use serde::Serialize;

use lakehouse_lake::DEFAULT_TARGET_FILE_SIZE;
use lakehouse_lake::index_progress::{
    build_progress, build_version, indexed_version, lag_versions,
};
use lakehouse_lake::lake::deleted_file_retention;
use lakehouse_lake::progress::{consumed_everywhere, last_merge, last_sweep, ranges_consumed};

use crate::error::Result;

/// Raw commits read at most to count the rows staging has not taken yet; past it the count
/// is extrapolated from those read.
const LAG_COMMITS_READ: u64 = 1_000;
/// Quarantine commits read at most, newest first, to count the window's rejections.
const QUARANTINE_COMMITS_READ: u64 = 10_000;
const CONCURRENT_READS: usize = 16;

#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Files below this size count as small: optimize's target.
    pub small_file_bytes: u64,
    /// How far back quarantine is counted.
    pub quarantine_window: Duration,
    pub now: DateTime<Utc>,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            small_file_bytes: DEFAULT_TARGET_FILE_SIZE,
            quarantine_window: Duration::hours(24),
            now: Utc::now(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LakeStatus {
    pub location: String,
    pub at: DateTime<Utc>,
    pub tables: Vec<TableStatus>,
    /// `None` when raw or staging does not exist yet.
    pub compaction: Option<CompactionLag>,
    /// `None` when quarantine does not exist yet.
    pub quarantine: Option<QuarantineWindow>,
    /// The key index's lag behind staging; `None` when staging does not exist yet.
    pub keys: Option<KeysHealth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub table: &'static str,
    /// `None`: the table has never been written.
    pub version: Option<u64>,
    pub last_commit_at: Option<DateTime<Utc>>,
    pub last_operation: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub small_files: u64,
    pub partitions: u64,
    /// The oldest version its log can still be read at.
    pub oldest_version: Option<u64>,
    pub oldest_version_at: Option<DateTime<Utc>>,
    /// How long vacuum keeps removed files (`delta.deletedFileRetentionDuration`).
    pub retention_hours: Option<i64>,
    /// Time travel reaches back to here: the latest of the oldest version, the retention,
    /// and what a vacuum with a shorter retention recorded.
    pub time_travel_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompactionLag {
    pub raw_version: u64,
    /// The raw version every kind of compaction run has consumed up to (with fan-out, the
    /// slowest range's); `None` before the first merge.
    pub consumed: Option<u64>,
    /// Raw commits that added data staging has not consumed (maintenance commits, such as
    /// optimize's, add none).
    pub commits_behind: u64,
    /// Rows of those commits, from what each recorded. Past the first 1,000 commits read,
    /// both are extrapolated (`rows_behind_exact` false).
    pub rows_behind: u64,
    pub rows_behind_exact: bool,
    /// When the oldest raw commit staging has not consumed was made.
    pub oldest_unconsumed_at: Option<DateTime<Utc>>,
    /// Seconds since then: 0 when staging is up to date.
    pub lag_seconds: i64,
    /// Set when the raw under staging is not the raw staging consumed (recreated).
    pub problem: Option<String>,
    /// With fan-out: each range of the kind that merged last (`keys 2/4`) and the raw
    /// version it consumed, so the one that lags is named.
    pub ranges: Vec<RangeConsumed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RangeConsumed {
    pub range: String,
    pub consumed: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineWindow {
    pub hours: i64,
    pub rows: u64,
    pub by_reason: BTreeMap<String, u64>,
    /// Rows of commits that recorded no reasons (made before reasons were recorded).
    pub unrecorded: u64,
}

/// The thresholds a cron check gives (`lakehouse status --max-…`).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_lag: Option<Duration>,
    pub max_quarantined: Option<u64>,
    pub max_small_files: Option<u64>,
}

/// A threshold a status crosses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crossed {
    /// The oldest raw commit staging has not consumed is older than the limit.
    Lag { lag_seconds: i64, max_seconds: i64 },
    /// Compaction cannot go on (see [`CompactionLag::problem`]).
    Stuck(String),
    /// Quarantine took more rows in its window than the limit.
    Quarantined { rows: u64, hours: i64, max: u64 },
    /// A table has more small files than the limit.
    SmallFiles {
        table: &'static str,
        files: u64,
        max: u64,
    },
}

impl LakeStatus {
    /// The thresholds of `limits` this status crosses.
    pub fn crossed(&self, limits: &Limits) -> Vec<Crossed> {
        let mut crossed = Vec::new();
        if let (Some(max), Some(lag)) = (limits.max_lag, &self.compaction) {
            if lag.lag_seconds > max.num_seconds() {
                crossed.push(Crossed::Lag {
                    lag_seconds: lag.lag_seconds,
                    max_seconds: max.num_seconds(),
                });
            }
            if let Some(problem) = &lag.problem {
                crossed.push(Crossed::Stuck(problem.clone()));
            }
        }
        if let (Some(max), Some(q)) = (limits.max_quarantined, &self.quarantine)
            && q.rows > max
        {
            crossed.push(Crossed::Quarantined {
                rows: q.rows,
                hours: q.hours,
                max,
            });
        }
        if let Some(max) = limits.max_small_files {
            for t in self.tables.iter().filter(|t| t.small_files > max) {
                crossed.push(Crossed::SmallFiles {
                    table: t.table,
                    files: t.small_files,
                    max,
                });
            }
        }
        crossed
    }
}

/// The status of `lake`, reading only its logs.
pub async fn lake_status(lake: &Lake, options: &StatusOptions) -> Result<LakeStatus> {
    let (raw, staging, quarantine, keys) = tokio::try_join!(
        lake.open_existing(Table::Raw),
        lake.open_existing(Table::Staging),
        lake.open_existing(Table::Quarantine),
        lake.open_existing(Table::Keys)
    )?;
    if raw.is_none() && staging.is_none() && quarantine.is_none() {
        return Err(LakeError::EmptyLake {
            location: lake.root().to_string(),
        }
        .into());
    }
    let mut tables = Vec::new();
    for (table, delta) in [
        (Table::Raw, &raw),
        (Table::Staging, &staging),
        (Table::Quarantine, &quarantine),
        (Table::Keys, &keys),
    ] {
        tables.push(table_status(table, delta.as_ref(), options).await?);
    }
    let compaction = match (&raw, &staging) {
        (Some(raw), Some(staging)) => Some(compaction_lag(raw, staging, options.now).await?),
        (Some(raw), None) => Some(lag_after(raw, None, options.now).await?),
        _ => None,
    };
    let quarantine = match &quarantine {
        Some(q) => Some(quarantine_window(q, options).await?),
        None => None,
    };
    let keys = match &staging {
        Some(staging) => Some(keys_health(staging, keys.as_ref()).await?),
        None => None,
    };
    Ok(LakeStatus {
        location: lake.root().to_string(),
        at: options.now,
        tables,
        compaction,
        quarantine,
        keys,
    })
}

async fn table_status(
    table: Table,
    delta: Option<&DeltaTable>,
    options: &StatusOptions,
) -> Result<TableStatus> {
    let mut status = TableStatus {
        table: table.name(),
        version: None,
        last_commit_at: None,
        last_operation: None,
        files: 0,
        bytes: 0,
        small_files: 0,
        partitions: 0,
        oldest_version: None,
        oldest_version_at: None,
        retention_hours: None,
        time_travel_from: None,
    };
    let Some(delta) = delta else {
        return Ok(status);
    };
    let version = delta.version();
    status.version = version;
    if let Some(version) = version
        && let Some(actions) = commit_actions(delta.log_store().as_ref(), version).await?
    {
        status.last_commit_at = committed_at(&actions);
        status.last_operation = commit_info(&actions).and_then(|i| i.operation.clone());
    }
    let files = live_files(delta)?;
    let mut partitions = HashSet::new();
    for add in &files {
        let size = u64::try_from(add.size).unwrap_or(0);
        status.files += 1;
        status.bytes += size;
        status.small_files += u64::from(size < options.small_file_bytes);
        let mut key: Vec<(&String, &Option<String>)> = add.partition_values.iter().collect();
        key.sort();
        partitions.insert(format!("{key:?}"));
    }
    status.partitions = partitions.len() as u64;

    let retention = deleted_file_retention(delta)?;
    status.retention_hours = Some(retention.num_hours());
    // A vacuum that ran with a shorter retention recorded from when versions are whole.
    let vacuumed_before = txn_version(delta, VACUUMED_BEFORE_APP_ID)
        .await?
        .and_then(DateTime::from_timestamp_millis);
    if let Some((oldest, at)) = oldest_version(delta).await? {
        status.oldest_version = Some(oldest);
        status.oldest_version_at = at;
        let kept_from = (options.now - retention).max(vacuumed_before.unwrap_or_default());
        status.time_travel_from = Some(at.map_or(kept_from, |at| at.max(kept_from)));
    }
    Ok(status)
}

/// The oldest version the log can be read at, and when it was made: version 0 while its
/// commit is there, else the oldest checkpoint. Log files list in version order, so this
/// reads the first page of the listing only.
async fn oldest_version(delta: &DeltaTable) -> Result<Option<(u64, Option<DateTime<Utc>>)>> {
    let store = delta.log_store().object_store(None);
    let mut listing = store.list(Some(&Path::from("_delta_log")));
    let unreadable = |e: deltalake::ObjectStoreError| LakeError::ReadFile {
        path: format!("{}_delta_log/", delta.table_url()),
        error: e.to_string(),
    };
    while let Some(meta) = listing.try_next().await.map_err(unreadable)? {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        let Some((digits, rest)) = name.split_once('.') else {
            continue;
        };
        let Ok(version) = digits.parse::<u64>() else {
            continue;
        };
        let readable_from = (version == 0 && rest == "json") || rest.starts_with("checkpoint.");
        if readable_from {
            let at = match commit_actions(delta.log_store().as_ref(), version).await? {
                Some(actions) => committed_at(&actions),
                None => Some(meta.last_modified),
            };
            return Ok(Some((version, at)));
        }
    }
    Ok(None)
}

async fn compaction_lag(
    raw: &DeltaTable,
    staging: &DeltaTable,
    now: DateTime<Utc>,
) -> Result<CompactionLag> {
    // What every kind of run has consumed: a range that lags, or a kind given up, shows.
    let consumed = consumed_everywhere(raw, staging, None).await?;
    let mut lag = lag_after(raw, consumed, now).await?;
    lag.ranges = ranges_consumed(staging)
        .await?
        .into_iter()
        .map(|(range, consumed)| RangeConsumed {
            range: range.to_string(),
            consumed,
        })
        .collect();
    let raw_id = raw.snapshot()?.metadata().id().to_string();
    let recorded = last_merge(staging, None)
        .await?
        .and_then(|m| m.raw_table_id);
    if let Some(recorded) = recorded
        && recorded != raw_id
    {
        lag.problem = Some(format!(
            "staging was built from raw table {recorded} but raw is now table {raw_id} \
             (recreated): compaction refuses to run until one of them is rebuilt"
        ));
    }
    Ok(lag)
}

async fn lag_after(
    raw: &DeltaTable,
    consumed: Option<u64>,
    now: DateTime<Utc>,
) -> Result<CompactionLag> {
    let head = raw.version().unwrap_or(0);
    let from = consumed.map_or(0, |c| c + 1);
    let mut lag = CompactionLag {
        raw_version: head,
        consumed,
        commits_behind: 0,
        rows_behind: 0,
        rows_behind_exact: true,
        oldest_unconsumed_at: None,
        lag_seconds: 0,
        problem: None,
        ranges: Vec::new(),
    };
    if from > head {
        return Ok(lag);
    }
    let read_to = head.min(from + LAG_COMMITS_READ - 1);
    let commits: Vec<(u64, Option<Vec<Action>>)> =
        commits_in(raw.log_store(), from..=read_to, CONCURRENT_READS)
            .try_collect()
            .await?;
    let (mut rows, mut data_commits) = (0u64, 0u64);
    for (_, actions) in &commits {
        // A commit gone from the log: compaction fails on it (MissingRawCommit) anyway.
        let Some(actions) = actions else { continue };
        let added = rows_added(actions);
        if added == 0 {
            continue;
        }
        rows += added;
        data_commits += 1;
        if lag.oldest_unconsumed_at.is_none() {
            lag.oldest_unconsumed_at = committed_at(actions);
        }
    }
    let (read, total) = (commits.len() as u64, head + 1 - from);
    lag.rows_behind_exact = read == total;
    if lag.rows_behind_exact {
        lag.commits_behind = data_commits;
        lag.rows_behind = rows;
    } else {
        // Unread commits are taken as data commits of the read ones' average size.
        lag.commits_behind = data_commits + (total - read);
        lag.rows_behind = rows + rows / data_commits.max(1) * (total - read);
    }
    lag.lag_seconds = lag
        .oldest_unconsumed_at
        .map_or(0, |at| (now - at).num_seconds().max(0));
    Ok(lag)
}

/// Rows a commit added as new data: what it recorded, else its files' statistics. An
/// optimize's rewrites (`dataChange: false`) add none.
fn rows_added(actions: &[Action]) -> u64 {
    let adds_data = actions
        .iter()
        .any(|a| matches!(a, Action::Add(add) if add.data_change));
    if !adds_data {
        return 0;
    }
    if let Some(records) = CommitMetadata::from_actions(actions).and_then(|m| m.records) {
        return records;
    }
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Add(add) => rows_of(add),
            _ => None,
        })
        .sum()
}

async fn quarantine_window(
    quarantine: &DeltaTable,
    options: &StatusOptions,
) -> Result<QuarantineWindow> {
    let since = options.now - options.quarantine_window;
    let mut window = QuarantineWindow {
        hours: options.quarantine_window.num_hours(),
        rows: 0,
        by_reason: BTreeMap::new(),
        unrecorded: 0,
    };
    let head = quarantine.version().unwrap_or(0);
    let oldest = head.saturating_sub(QUARANTINE_COMMITS_READ - 1);
    let mut commits = pin!(commits_in(
        quarantine.log_store(),
        (oldest..=head).rev(),
        CONCURRENT_READS
    ));
    while let Some((_, actions)) = commits.try_next().await? {
        let Some(actions) = actions else { break };
        if committed_at(&actions).is_some_and(|at| at < since) {
            break;
        }
        let rows = rows_added(&actions);
        let metadata = CommitMetadata::from_actions(&actions);
        match metadata.as_ref().and_then(|m| m.reasons.as_ref()) {
            Some(reasons) if rows > 0 => {
                for (kind, n) in reasons {
                    *window.by_reason.entry(kind.clone()).or_default() += n;
                    window.rows += n;
                }
            }
            _ => {
                window.rows += rows;
                window.unrecorded += rows;
            }
        }
    }
    Ok(window)
}

fn commit_info(actions: &[Action]) -> Option<&deltalake::kernel::CommitInfo> {
    actions.iter().find_map(|a| match a {
        Action::CommitInfo(info) => Some(info),
        _ => None,
    })
}

/// When a commit was made, by its `commitInfo`.
fn committed_at(actions: &[Action]) -> Option<DateTime<Utc>> {
    commit_info(actions)
        .and_then(|i| i.timestamp)
        .and_then(DateTime::from_timestamp_millis)
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

/// The index's lag behind `staging`, its build under way and the last sweep, from the logs
/// only.
pub async fn keys_health(staging: &DeltaTable, keys: Option<&DeltaTable>) -> Result<KeysHealth> {
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let indexed = match keys {
        Some(keys) => indexed_version(keys, &staging_id).await?,
        None => None,
    };
    let building = match (keys, indexed) {
        (Some(keys), None) => match build_progress(keys, &staging_id, None).await {
            Ok(progress) => progress.map(|p| (p.version, p.files_done())),
            // The build's log is gone: the next update starts it over.
            Err(e) if e.is_gone() => build_version(keys, &staging_id, None)
                .await?
                .map(|v| (v, 0)),
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    Ok(KeysHealth {
        indexed,
        lag_versions: lag_versions(staging, indexed).await?,
        building,
        swept: last_sweep(staging).await?,
    })
}
