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
//!
//! - [`update`]: the update; [`report`]: what it did.
//! - [`entries`]: entries read from staging's files, written as the index's, read back.
//! - [`lookup`]: point reads of a set of keys; [`check`]: the index against staging.

mod check;
pub(crate) mod entries;
mod lookup;
pub(crate) mod report;
mod update;

pub use check::{KeysCheck, check_keys};
pub(crate) use entries::{SCAN_COLUMNS, index_rows, read_entries};
pub use lakehouse_lake::index_progress::indexed_version;
pub(crate) use lookup::all_entries;
pub use lookup::{IndexView, Runs, lookup};
pub use report::KeysUpdate;
pub(crate) use update::added_since;
pub use update::{index_trusted, update_keys};
