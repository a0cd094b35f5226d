//! The check that nothing of the subjects is left: every data file still stored under each
//! erased table (live or not, referenced by any version or by none: a superset of what any
//! readable version can read) searched again, as [`crate::find`] searches.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::ObjectStore;

use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::Lake;
use lakehouse_lake::subject::SubjectPaths;
use serde::{Deserialize, Serialize};

use crate::ERASED_TABLES;
use crate::error::{EraseError, Result};
use crate::find::scan_file;
use crate::subjects::Subjects;

/// What the check read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Residue {
    /// Data files stored under the tables, and commits in their logs (the versions that
    /// may still be read).
    pub files_checked: u64,
    pub versions_checked: u64,
    /// Rows of the subjects found: 0 is the erasure's proof.
    pub rows: u64,
    /// A few of the files that hold them.
    pub files: Vec<String>,
}

/// Searches every stored data file of the erased tables for the subjects.
pub async fn check(lake: &Lake, subjects: &Subjects, paths: &SubjectPaths) -> Result<Residue> {
    let mut residue = Residue::default();
    for table in ERASED_TABLES {
        let Some(delta) = lake.open_existing(table).await? else {
            continue;
        };
        let store = delta.object_store();
        let logs: Vec<_> = store.list(Some(&"_delta_log".into())).try_collect().await?;
        residue.versions_checked += logs
            .iter()
            .filter(|o| o.location.as_ref().ends_with(".json"))
            .count() as u64;
        let files: Vec<Add> = stored_files(&store)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        residue.files_checked += files.len() as u64;
        let mut scans = futures::stream::iter(files)
            .map(|add| {
                let store = store.clone();
                async move {
                    let found = scan_file(store, table, &add, subjects, paths).await?;
                    Ok::<_, EraseError>((add.path, found.matched))
                }
            })
            .buffer_unordered(16);
        while let Some((path, matched)) = scans.try_next().await? {
            residue.rows += matched;
            if matched > 0 && residue.files.len() < 5 {
                residue.files.push(format!("{}/{path}", table.name()));
            }
        }
    }
    Ok(residue)
}

/// Every data file stored under a table (its log aside), as an `add` (see [`stored_file`]),
/// with when it was written.
pub(crate) async fn stored_files(
    store: &Arc<dyn ObjectStore>,
) -> Result<Vec<(Add, DateTime<Utc>)>> {
    let objects: Vec<_> = store.list(None).try_collect().await?;
    Ok(objects
        .into_iter()
        .filter(|o| !o.location.as_ref().starts_with("_delta_log/"))
        .filter(|o| o.location.as_ref().ends_with(".parquet"))
        .map(|o| (stored_file(o.location.as_ref(), o.size), o.last_modified))
        .collect())
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
