//! The check that nothing of the subjects is left: every data file stored under each
//! erased table searched again, as [`crate::find`] searches. Files a version in the log
//! reads (live, or removed by a commit the log still holds) must hold none of them: that
//! is the proof. Files no version reads (a writer's that never committed, or is about to)
//! are reported apart: the erasure deletes them once they are older than any writer could
//! still commit, and so does `compact --vacuum-full`.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;

use deltalake::kernel::Add;
use futures::TryStreamExt;
use lakehouse_lake::Lake;
use lakehouse_lake::files::{live_files, object_path};
use lakehouse_lake::subject::SubjectPaths;
use serde::{Deserialize, Serialize};

use crate::ERASED_TABLES;
use crate::error::Result;
use crate::find::scan_files;
use crate::subjects::Subjects;

/// What the check read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Residue {
    /// Data files stored under the tables, and commits in their logs (the versions that
    /// may still be read).
    pub files_checked: u64,
    pub versions_checked: u64,
    /// Rows of the subjects in files a version reads: 0 is the erasure's proof.
    pub rows: u64,
    /// A few of the files that hold them.
    pub files: Vec<String>,
    /// Rows of the subjects in files no version reads, younger than any writer could
    /// still commit (deleted once older, by the next erasure or `compact --vacuum-full`).
    #[serde(default)]
    pub unreferenced_rows: u64,
    #[serde(default)]
    pub unreferenced_files: Vec<String>,
}

/// Searches every stored data file of the erased tables for the subjects.
pub async fn check(lake: &Lake, subjects: &Subjects, paths: &SubjectPaths) -> Result<Residue> {
    let mut residue = Residue::default();
    for table in ERASED_TABLES {
        let Some(delta) = lake.open_existing(table).await? else {
            continue;
        };
        let (files, commits) = stored_files(&delta).await?;
        residue.versions_checked += commits;
        residue.files_checked += files.len() as u64;
        let mut scans = std::pin::pin!(scan_files(
            delta.object_store(),
            table,
            files,
            subjects,
            paths
        ));
        while let Some((file, found)) = scans.try_next().await? {
            let matched = found.matched;
            if matched == 0 {
                continue;
            }
            let (rows, files) = match file.referenced {
                true => (&mut residue.rows, &mut residue.files),
                false => (
                    &mut residue.unreferenced_rows,
                    &mut residue.unreferenced_files,
                ),
            };
            *rows += matched;
            if files.len() < 5 {
                files.push(format!("{}/{}", table.name(), file.add.path));
            }
        }
    }
    Ok(residue)
}

/// A data file stored under a table.
pub(crate) struct StoredFile {
    /// As an `add` (see [`stored_file`]).
    pub add: Add,
    /// In the table's latest version.
    pub live: bool,
    /// Live, or removed by a commit the log still holds: some version reads it.
    pub referenced: bool,
    pub written: DateTime<Utc>,
}

impl Borrow<Add> for StoredFile {
    fn borrow(&self) -> &Add {
        &self.add
    }
}

/// Every data file stored under `delta`'s table (its log aside), and the commits its log
/// holds: one listing.
pub(crate) async fn stored_files(delta: &DeltaTable) -> Result<(Vec<StoredFile>, u64)> {
    let store = delta.object_store();
    let live: HashSet<String> = live_files(delta)?
        .iter()
        .map(|a| object_path(&a.path).to_string())
        .collect();
    let tombstones: HashSet<String> = delta
        .snapshot()?
        .all_tombstones(delta.log_store().as_ref())
        .map_ok(|t| object_path(&t.path()).to_string())
        .try_collect()
        .await?;
    let objects: Vec<_> = store.list(None).try_collect().await?;
    let (logs, data): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .partition(|o| o.location.as_ref().starts_with("_delta_log/"));
    let commits = logs
        .iter()
        .filter(|o| o.location.as_ref().ends_with(".json"))
        .count() as u64;
    let files = data
        .into_iter()
        .filter(|o| o.location.as_ref().ends_with(".parquet"))
        .map(|o| {
            let add = stored_file(o.location.as_ref(), o.size);
            let is_live = live.contains(&add.path);
            StoredFile {
                referenced: is_live || tombstones.contains(&add.path),
                live: is_live,
                add,
                written: o.last_modified,
            }
        })
        .collect();
    Ok((files, commits))
}

/// A stored file as an `add`: its partition values from its Hive-style path.
fn stored_file(path: &str, size: u64) -> Add {
    let partition_values: HashMap<String, Option<String>> = path
        .split('/')
        .filter_map(|segment| segment.split_once('='))
        .map(|(column, value)| {
            let value = percent_decode(value);
            let value = (value != "__HIVE_DEFAULT_PARTITION__").then_some(value);
            (column.to_string(), value)
        })
        .collect();
    Add {
        path: path.to_string(),
        size: size as i64,
        partition_values,
        ..Add::default()
    }
}

/// Undoes the escaping of a partition path segment (`%XX`).
fn percent_decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_path_gives_its_partition_values() {
        let add = stored_file(
            "event_date=2024-01-02/event_type=a%3Ab%20c/part-1.parquet",
            7,
        );
        assert_eq!(
            add.partition_values["event_date"].as_deref(),
            Some("2024-01-02")
        );
        assert_eq!(add.partition_values["event_type"].as_deref(), Some("a:b c"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
