//! The typed tables follow staging's erasure: the mirror brings each to the staging just
//! rewritten (the files of the subjects' rows are removed from the table), then every
//! typed file stored that still holds one of the erased events (a file older versions
//! read, kept for time travel) is deleted, as staging's are. A row is the subjects' when
//! its `subject_id` is one of them or its event is one staging's erasure removed (rows
//! older than `subject_id` have none). The same search over every stored file afterwards
//! is the typed tables' part of the residue check.

use std::collections::HashSet;

use bytes::Bytes;
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::TryStreamExt;
use lakehouse_lake::files::live_files;
use lakehouse_lake::keys::Key;
use lakehouse_lake::schema::{EVENT_UUID, SUBJECT_ID};
use lakehouse_lake::typed::{MirrorOptions, TypedTable, mirror};
use lakehouse_lake::{Lake, Table};
use serde::{Deserialize, Serialize};

use crate::error::{EraseError, Result};
use crate::subjects::Subjects;

/// What an erasure did to the typed tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedErasure {
    /// Typed tables brought to the erased staging, and their files removed.
    pub commits: u64,
    pub files_removed: u64,
    /// Stored files that held the erased events, deleted.
    pub files_purged: u64,
}

/// The rows sought: the subjects' ids and the events staging's erasure removed.
pub struct Sought<'a> {
    pub subjects: &'a Subjects,
    pub keys: HashSet<Key>,
}

/// Mirrors staging into the typed tables, then deletes every stored typed file outside
/// the latest versions that holds a sought row.
pub async fn erase_typed(lake: &Lake, sought: &Sought<'_>) -> Result<TypedErasure> {
    let mut done = TypedErasure::default();
    if let Some(staging) = lake.open_existing(Table::Staging).await? {
        let report = mirror(lake, &staging, MirrorOptions::default()).await?;
        done.commits = report.commits;
        done.files_removed = report.files_removed;
    }
    for table in lake.typed_tables().await? {
        let live: HashSet<String> = live_files(&table.delta)?
            .into_iter()
            .map(|a| a.path)
            .collect();
        let store = table.delta.object_store();
        for (path, rows) in holding(&table, sought).await? {
            if live.contains(path.as_ref()) {
                // The mirror just removed every file of an erased staging file: a live
                // one holding a sought row is residue, which the check reports.
                tracing::warn!(path = %path, rows, "a live typed file holds erased events");
                continue;
            }
            match store.delete(&path).await {
                Ok(()) | Err(deltalake::ObjectStoreError::NotFound { .. }) => {
                    done.files_purged += 1
                }
                Err(e) => {
                    return Err(EraseError::from(lakehouse_lake::LakeError::from(
                        deltalake::DeltaTableError::from(e),
                    )));
                }
            }
        }
    }
    Ok(done)
}

/// Sought rows in every stored typed file, and a few of the files holding them.
pub async fn residue(lake: &Lake, sought: &Sought<'_>) -> Result<(u64, u64, Vec<String>)> {
    let (mut checked, mut rows, mut files) = (0, 0, Vec::new());
    for table in lake.typed_tables().await? {
        checked += stored(&table).await?.len() as u64;
        for (path, n) in holding(&table, sought).await? {
            rows += n;
            if files.len() < 5 {
                files.push(format!("typed/{}", path));
            }
        }
    }
    Ok((checked, rows, files))
}

type ObjectPath = deltalake::logstore::object_store::path::Path;

/// The data files stored under a typed table (its log aside).
async fn stored(table: &TypedTable) -> Result<Vec<ObjectPath>> {
    let objects: Vec<_> = table
        .delta
        .object_store()
        .list(None)
        .try_collect()
        .await
        .map_err(|e| lakehouse_lake::LakeError::from(deltalake::DeltaTableError::from(e)))?;
    Ok(objects
        .into_iter()
        .map(|o| o.location)
        .filter(|p| !p.as_ref().starts_with("_delta_log/") && p.as_ref().ends_with(".parquet"))
        .collect())
}

/// Stored files of `table` holding sought rows, with how many.
async fn holding(table: &TypedTable, sought: &Sought<'_>) -> Result<Vec<(ObjectPath, u64)>> {
    let store = table.delta.object_store();
    let mut found = Vec::new();
    for path in stored(table).await? {
        let bytes = match store.get(&path).await {
            Ok(got) => got.bytes().await,
            Err(deltalake::ObjectStoreError::NotFound { .. }) => continue,
            Err(e) => Err(e),
        }
        .map_err(|e| lakehouse_lake::LakeError::from(deltalake::DeltaTableError::from(e)))?;
        let n =
            sought_rows(bytes, sought).map_err(|error| lakehouse_lake::LakeError::ReadFile {
                path: path.to_string(),
                error,
            })?;
        if n > 0 {
            found.push((path, n));
        }
    }
    Ok(found)
}

fn sought_rows(bytes: Bytes, sought: &Sought<'_>) -> std::result::Result<u64, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), [EVENT_UUID, SUBJECT_ID]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = |name: &str| -> std::result::Result<_, String> {
            let array = batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column {name}"))?;
            cast(array, &DataType::Utf8).map_err(|e| e.to_string())
        };
        let (uuids, subjects) = (column(EVENT_UUID)?, column(SUBJECT_ID)?);
        let (uuids, subjects) = (uuids.as_string::<i32>(), subjects.as_string::<i32>());
        for row in 0..batch.num_rows() {
            let by_subject =
                subjects.is_valid(row) && sought.subjects.contains(subjects.value(row));
            let by_event = uuids.is_valid(row) && sought.keys.contains(&Key::of(uuids.value(row)));
            n += u64::from(by_subject || by_event);
        }
    }
    Ok(n)
}
