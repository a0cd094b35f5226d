//! Every application id (`txn` app id) under which the lake's writers record progress,
//! minted and parsed here only: a writer and a reader of one progress never spell it two
//! ways, and `docs/guarantees.md` can name them all from one place.
//!
//! | app id | table | version recorded |
//! |---|---|---|
//! | `lakehouse-ingest:<stream>/<shard>` | raw, quarantine | the shard's batches committed |
//! | `lakehouse-load:<format>:<sha256>` | raw, quarantine | an input file loaded |
//! | `lakehouse-redrive` | raw | re-drives committed |
//! | `lakehouse-compact:raw[:<range>]` | staging | the raw version a kind of run consumed |
//! | `lakehouse-compact:raw:everywhere:<staging id>` | raw | consumed by every kind |
//! | `lakehouse-keys:staging:<staging id>` | staging_keys | the staging version indexed |
//! | `lakehouse-keys-build:<staging id>[:v<V>[:f<from>│:rows]]` | staging_keys | a build's version, chunks and chunk size |
//! | `lakehouse-sweep:<staging id>` | staging | the staging version swept |
//! | `lakehouse-vacuum:removed-before` | every table | when a short-retention vacuum ran |
//! | `lakehouse-typed:staging:<staging id>` | each typed table | the staging version it mirrors |
//! | `lakehouse-erase:<request id>` | raw, staging, quarantine, staging_keys, erasures | an erasure request done |

use crate::ranges::RunRange;

/// A Kinesis shard's progress: `source` is `<stream>/<shard id>`.
pub fn ingest_app_id(source: &str) -> String {
    format!("lakehouse-ingest:{source}")
}

/// An input of `format` whose bytes hash to `digest`, loaded.
pub fn load_app_id(format: &str, digest: &str) -> String {
    format!("lakehouse-load:{format}:{digest}")
}

/// What every re-drive commit to raw advances: two re-drives planned on the same raw cannot
/// both commit (the commit path refuses the second), so neither takes a row the other took.
pub const REDRIVE_APP_ID: &str = "lakehouse-redrive";

/// Under which `staging` records the last `raw` version the whole-table run consumed.
pub const STAGING_APP_ID: &str = "lakehouse-compact:raw";

/// The progress of a compaction over `range` (`None`: the whole table).
pub fn staging_app_id(range: Option<RunRange>) -> String {
    match range {
        None => STAGING_APP_ID.to_string(),
        Some(r) => format!("{STAGING_APP_ID}:{}", r.name()),
    }
}

/// The range a run's app id names: the inverse of [`staging_app_id`]; `None` for the
/// whole-table run's and for app ids that are not a run's.
pub fn range_of_app_id(app_id: &str) -> Option<RunRange> {
    RunRange::of_name(app_id.strip_prefix(STAGING_APP_ID)?.strip_prefix(':')?)
}

/// Under which **raw** records the version up to which every kind of run has consumed it
/// into the staging table with id `staging_id` (another staging, built anew, has consumed
/// nothing of it).
pub fn everywhere_app_id(staging_id: &str) -> String {
    format!("{STAGING_APP_ID}:everywhere:{staging_id}")
}

/// Under which a typed table records the version of the staging table with id
/// `staging_id` it mirrors: another staging, built anew, has been mirrored by none.
pub fn typed_app_id(staging_id: &str) -> String {
    format!("lakehouse-typed:staging:{staging_id}")
}

/// The prefix of the key index's record of the staging version it holds; the staging
/// table's id follows.
pub const KEYS_APP_PREFIX: &str = "lakehouse-keys:staging:";

/// The key index's record for the staging table with id `staging_id`.
pub fn keys_app_id(staging_id: &str) -> String {
    format!("{KEYS_APP_PREFIX}{staging_id}")
}

/// The prefix of a key index build's app ids; the staging table's id follows.
pub const KEYS_BUILD_PREFIX: &str = "lakehouse-keys-build:";

/// The staging version a build of the index for `staging_id` builds.
pub fn build_app_id(staging_id: &str) -> String {
    format!("{KEYS_BUILD_PREFIX}{staging_id}")
}

/// A build's progress at `version`; `:f<from>` follows for each chunk. (Builds before
/// chunks ran in parallel recorded here alone how many files, from the first, were done.)
pub fn build_progress_app_id(staging_id: &str, version: u64) -> String {
    format!("{KEYS_BUILD_PREFIX}{staging_id}:v{version}")
}

/// The chunk of a build starting at file `from`.
pub fn build_chunk_app_id(staging_id: &str, version: u64, from: u64) -> String {
    format!("{}:f{from}", build_progress_app_id(staging_id, version))
}

/// The rows a build's chunks hold, recorded when it begins.
pub fn build_rows_app_id(staging_id: &str, version: u64) -> String {
    format!("{}:rows", build_progress_app_id(staging_id, version))
}

/// The prefix of the sweep's record of the staging version swept; the staging id follows.
pub const SWEEP_APP_PREFIX: &str = "lakehouse-sweep:";

/// The sweep's record for the staging table with id `staging_id`.
pub fn sweep_app_id(staging_id: &str) -> String {
    format!("{SWEEP_APP_PREFIX}{staging_id}")
}

/// When a vacuum with a retention shorter than the table's removed files: versions before
/// it may miss files.
pub const VACUUMED_BEFORE_APP_ID: &str = "lakehouse-vacuum:removed-before";

/// The prefix of an erasure's app id; the request's id follows.
pub const ERASURE_APP_PREFIX: &str = "lakehouse-erase:";

/// An erasure request's record.
pub fn erasure_app_id(request_id: &str) -> String {
    format!("{ERASURE_APP_PREFIX}{request_id}")
}

/// The request an erasure's app id names: the inverse of [`erasure_app_id`].
pub fn erasure_request(app_id: &str) -> Option<&str> {
    app_id.strip_prefix(ERASURE_APP_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_app_id_gives_its_range_back() {
        for range in [RunRange::types(2, 4), RunRange::keys(2, 4)] {
            assert_eq!(range_of_app_id(&staging_app_id(range)), range);
        }
        assert_eq!(
            staging_app_id(RunRange::keys(2, 4)),
            "lakehouse-compact:raw:keys-2-of-4"
        );
        assert_eq!(range_of_app_id(STAGING_APP_ID), None);
        assert_eq!(range_of_app_id("someone-else:types-1-of-3"), None);
        assert_eq!(range_of_app_id(&everywhere_app_id("abc")), None);
    }

    #[test]
    fn build_app_ids_nest_under_the_build() {
        assert_eq!(
            build_chunk_app_id("s", 3, 10),
            "lakehouse-keys-build:s:v3:f10"
        );
        assert_eq!(build_rows_app_id("s", 3), "lakehouse-keys-build:s:v3:rows");
        assert_eq!(load_app_id("jsonl", "ab"), "lakehouse-load:jsonl:ab");
    }
}
