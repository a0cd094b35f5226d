//! What `status` reports, and the thresholds a cron check gives.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use lakehouse_lake::DEFAULT_TARGET_FILE_SIZE;

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
    /// The typed tables; `None` when staging does not exist yet.
    pub typed: Option<TypedHealth>,
}

/// The typed tables, from their logs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypedHealth {
    pub tables: u64,
    /// Rows they hold, and staging's: equal once compaction mirrored staging's last change.
    pub rows: u64,
    pub staging_rows: u64,
    /// Values that did not fit their column, in the rows held now, per event type and field.
    pub rescued: BTreeMap<String, BTreeMap<String, u64>>,
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
