//! One table's erasure: the files holding the subjects' rows rewritten without them, in
//! one commit through the lake's commit path that records the request (`txn`
//! `lakehouse-erase:<request id>`, so it lands once), then the files it replaced deleted
//! at once, whatever the table's retention: no version still readable holds the rows.
//!
//! Conflicts, by the commit path's rules:
//! - a file removed meanwhile by another writer (optimize, a merge) fails the commit and
//!   the erasure plans again;
//! - staging's erasure commit reads the table (a merge landing meanwhile fails it) and
//!   changes the table's metadata (`lakehouse.lastErasure`), which fails every commit
//!   planned before it: a compaction that read the subject's rows from raw before raw's
//!   erasure plans again, from raw without them.
//!
//! Raw's surviving rows land in files added with `dataChange = true`: compaction merges
//! them again, finding the same rows staged (no change), and skips the files replaced,
//! which are no longer live.

use std::collections::HashSet;

use chrono::Utc;

use deltalake::DeltaTable;
use deltalake::arrow::array::AsArray;
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::compute::{concat_batches, filter, filter_record_batch, not};
use deltalake::kernel::{Action, Add, MetadataExt as _, Transaction};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt;
use lakehouse_lake::commit::UNREFERENCED_FILE_FLOOR_HOURS;
use lakehouse_lake::files::{live_files, object_path, read_file, remove_of};
use lakehouse_lake::keys::{Key, mark_carried};
use lakehouse_lake::log::{commits_in, discard_files, txn_version};
use lakehouse_lake::schema::EVENT_UUID;
use lakehouse_lake::subject::SubjectPaths;
use lakehouse_lake::write::FileWriter;
use lakehouse_lake::{Commit, CommitMetadata, Lake, Table};
use serde::{Deserialize, Serialize};

use crate::error::{EraseError, Result};
use crate::find::{FileMatch, matching_rows, scan_files};
use crate::residue::stored_files;
use crate::subjects::Subjects;

/// Staging's property naming the last erasure: changing it is the barrier (module docs).
pub const LAST_ERASURE_PROPERTY: &str = "lakehouse.lastErasure";

/// Plans of one table's erasure lost to concurrent writers before it gives up.
pub(crate) const ATTEMPTS: u32 = 8;

/// What an erasure did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableErasure {
    pub table: String,
    /// The version its commit made (`None`: dry run, or no such table).
    pub version: Option<u64>,
    /// The commit had landed before this run (a rerun after a crash): only purged now.
    pub resumed: bool,
    pub files: u64,
    /// Files read because a bloom filter may hold a subject, and those read by payload.
    pub files_read: u64,
    pub files_by_payload: u64,
    pub files_rewritten: u64,
    pub rows_removed: u64,
    /// Replaced files deleted from storage (time travel to before the erasure fails on them).
    pub files_purged: u64,
    /// Files older versions read (removed by earlier commits, kept for time travel) that
    /// held the subjects, deleted as well.
    pub history_files_purged: u64,
    pub filter_bytes: u64,
    pub bytes_read: u64,
    /// Bytes of the table's live files: what a search without filters would read.
    pub table_bytes: u64,
    /// Staging's only: the keys of the events removed, for the key index.
    #[serde(skip)]
    pub erased_keys: Vec<Key>,
}

/// The lake's subject paths (raw's properties; the default when raw does not exist).
pub async fn subject_paths(lake: &Lake) -> Result<SubjectPaths> {
    Ok(match lake.open_existing(Table::Raw).await? {
        Some(raw) => SubjectPaths::of_table(&raw)?,
        None => SubjectPaths::default(),
    })
}

/// Erases the subjects from `which` (see the module docs).
pub async fn erase_table(
    lake: &Lake,
    which: Table,
    subjects: &Subjects,
    paths: &SubjectPaths,
    dry_run: bool,
) -> Result<TableErasure> {
    let mut report = TableErasure {
        table: which.name().to_string(),
        ..TableErasure::default()
    };
    let Some(mut delta) = lake.open_existing(which).await? else {
        return Ok(report);
    };
    if !dry_run {
        // As a writer opens it: an older table gains `subject_id` first.
        delta = lake.add_missing_columns(which, delta).await?;
    }
    let app_id = subjects.app_id();
    for _ in 0..ATTEMPTS {
        if txn_version(&delta, &app_id).await?.is_some() {
            report.resumed = true;
            let landed = landed(&delta, &app_id).await?;
            // What that commit did, as its own log says.
            report.version = Some(landed.version);
            report.rows_removed = landed.rows_removed;
            report.files_rewritten = landed.removed.len() as u64;
            report.erased_keys = landed.keys;
            let removed = landed.removed;
            report.files_purged = purge(&delta, &removed).await?;
            report.history_files_purged = purge_history(&delta, which, subjects, paths).await?;
            return Ok(report);
        }
        let affected = plan(&delta, which, subjects, paths, &mut report).await?;
        if dry_run {
            return Ok(report);
        }
        let (actions, keys) = rewrite(&delta, which, &affected, subjects, paths).await?;
        let removed: Vec<Add> = affected.iter().map(|(add, _)| add.clone()).collect();
        if which == Table::Staging {
            report.erased_keys = keys;
        }
        let mut commit = commit_of(&delta, which, subjects, actions, &report)?;
        if which == Table::Staging {
            commit = commit.reading_table();
        }
        match commit.execute(&delta).await {
            Ok(committed) => {
                report.version = Some(committed.version);
                report.files_rewritten = removed.len() as u64;
                report.files_purged = purge(&delta, &removed).await?;
                delta.update_incremental(None).await?;
                report.history_files_purged = purge_history(&delta, which, subjects, paths).await?;
                return Ok(report);
            }
            Err(e) if e.committed_nothing() => {
                tracing::info!(table = which.name(), error = %e, "erasure lost a race; planning again");
                delta.update_incremental(None).await?;
                report = TableErasure {
                    table: which.name().to_string(),
                    ..TableErasure::default()
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(EraseError::Contended {
        table: which.name(),
        attempts: ATTEMPTS,
    })
}

/// The live files holding the subjects' rows, with how many each holds.
async fn plan(
    delta: &DeltaTable,
    which: Table,
    subjects: &Subjects,
    paths: &SubjectPaths,
    report: &mut TableErasure,
) -> Result<Vec<(Add, u64)>> {
    let files = live_files(delta)?;
    report.files = files.len() as u64;
    report.table_bytes = files.iter().map(|a| a.size.max(0) as u64).sum();
    let mut scans = std::pin::pin!(scan_files(
        delta.object_store(),
        which,
        files,
        subjects,
        paths
    ));
    let mut affected = Vec::new();
    while let Some((add, found)) = scans.try_next().await? {
        let FileMatch {
            matched,
            filter_bytes,
            bytes_read,
            by_payload,
        } = found;
        report.filter_bytes += filter_bytes;
        report.bytes_read += bytes_read;
        report.files_read += u64::from(bytes_read > 0);
        report.files_by_payload += u64::from(by_payload);
        report.rows_removed += matched;
        if matched > 0 {
            affected.push((add, matched));
        }
    }
    Ok(affected)
}

/// The affected files written again without the subjects' rows: the commit's actions and
/// the keys of the events removed. A failure part way deletes the files written so far
/// (the commit deletes them if it does not land).
async fn rewrite(
    delta: &DeltaTable,
    which: Table,
    affected: &[(Add, u64)],
    subjects: &Subjects,
    paths: &SubjectPaths,
) -> Result<(Vec<Action>, Vec<Key>)> {
    let store = delta.object_store();
    let writer = FileWriter::for_table(which, delta)?;
    let mut actions = Vec::new();
    let mut written = Vec::new();
    let mut keys = Vec::new();
    for (add, _) in affected {
        let kept = match kept_rows(store.clone(), which, add, subjects, paths, &mut keys).await {
            Ok(kept) => kept,
            Err(e) => {
                discard_files(delta, &written).await;
                return Err(e);
            }
        };
        actions.push(Action::Remove(remove_of(add, true)));
        if kept.num_rows() == 0 {
            continue;
        }
        let key = writer.key_of(add)?;
        let adds = match writer.write(&key, kept).await {
            Ok(adds) => adds,
            Err(e) => {
                discard_files(delta, &written).await;
                return Err(e.into());
            }
        };
        for mut new in adds {
            if which == Table::Staging {
                // Rows staging held before: the key index has them already.
                mark_carried(&mut new);
            }
            written.push(new.clone());
            actions.push(Action::Add(new));
        }
    }
    Ok((actions, keys))
}

/// Every row of `add` but the subjects'; the keys of the rows left out go to `keys`.
async fn kept_rows(
    store: std::sync::Arc<dyn deltalake::ObjectStore>,
    which: Table,
    add: &Add,
    subjects: &Subjects,
    paths: &SubjectPaths,
    keys: &mut Vec<Key>,
) -> Result<RecordBatch> {
    let batches = read_file(store, which, add, None).await?;
    let mut kept = Vec::with_capacity(batches.len());
    for batch in batches {
        let hits = matching_rows(which, &batch, subjects, paths)?;
        if let Some(uuids) = batch
            .column_by_name(EVENT_UUID)
            .and_then(|c| c.as_string_opt::<i32>())
        {
            let erased = filter(uuids, &hits)?;
            keys.extend(erased.as_string::<i32>().iter().flatten().map(Key::of));
        }
        kept.push(filter_record_batch(&batch, &not(&hits)?)?);
    }
    Ok(concat_batches(&which.arrow_schema(), &kept)?)
}

fn commit_of(
    delta: &DeltaTable,
    which: Table,
    subjects: &Subjects,
    mut actions: Vec<Action>,
    report: &TableErasure,
) -> Result<Commit> {
    if which == Table::Staging {
        let metadata = delta
            .snapshot()?
            .metadata()
            .clone()
            .add_config_key(
                LAST_ERASURE_PROPERTY.to_string(),
                subjects.request_id().to_string(),
            )
            .map_err(|e| EraseError::InvalidRequest(format!("staging's metadata: {e}")))?;
        actions.push(Action::Metadata(metadata));
    }
    let operation = DeltaOperation::Delete {
        predicate: Some(format!("erasure {}", subjects.request_id())),
    };
    let erased_keys = (which == Table::Staging)
        .then(|| report.erased_keys.iter().map(|k| [k.hi, k.lo]).collect());
    let metadata = CommitMetadata {
        source: Some(subjects.app_id()),
        rows_removed: Some(report.rows_removed),
        erased_keys,
        ..CommitMetadata::default()
    };
    Ok(Commit::new(operation, actions)
        .with_transaction(Transaction::new(subjects.app_id(), 1))
        .with_metadata(metadata))
}

/// An erasure's commit, read back from the log (a rerun after a crash between the
/// commit and the purge).
struct Landed {
    version: u64,
    removed: Vec<Add>,
    rows_removed: u64,
    keys: Vec<Key>,
}

/// The commit that recorded `app_id`, newest first.
async fn landed(delta: &DeltaTable, app_id: &str) -> Result<Landed> {
    let head = delta.version().unwrap_or(0);
    let mut commits = std::pin::pin!(commits_in(delta.log_store(), (0..=head).rev(), 16));
    while let Some((version, actions)) = commits.try_next().await? {
        let actions = actions.unwrap_or_default();
        let ours = actions
            .iter()
            .any(|a| matches!(a, Action::Txn(t) if t.app_id == app_id));
        if !ours {
            continue;
        }
        let metadata = CommitMetadata::from_actions(&actions).unwrap_or_default();
        let removed = actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Remove(r) => Some(Add {
                    path: r.path,
                    ..Add::default()
                }),
                _ => None,
            })
            .collect();
        return Ok(Landed {
            version,
            removed,
            rows_removed: metadata.rows_removed.unwrap_or(0),
            keys: (metadata.erased_keys.unwrap_or_default().into_iter())
                .map(|[hi, lo]| Key { hi, lo })
                .collect(),
        });
    }
    Err(EraseError::InvalidRequest(format!(
        "{app_id} is recorded but its commit is no longer in the log: nothing left to purge"
    )))
}

/// Deletes the stored files holding the subjects that are not live: those older versions
/// read (an earlier commit removed them; vacuum would delete them after the retention), and
/// those no commit names that are older than any writer could still commit. A younger file
/// no commit names may be a writer's about to commit: it is left, and the receipt reports
/// it apart (no version reads it).
async fn purge_history(
    delta: &DeltaTable,
    which: Table,
    subjects: &Subjects,
    paths: &SubjectPaths,
) -> Result<u64> {
    let floor = Utc::now() - chrono::Duration::hours(UNREFERENCED_FILE_FLOOR_HOURS);
    let (stored, _) = stored_files(delta).await?;
    let candidates: Vec<Add> = stored
        .into_iter()
        .filter(|f| !f.live && (f.referenced || f.written < floor))
        .map(|f| f.add)
        .collect();
    let mut scans = std::pin::pin!(scan_files(
        delta.object_store(),
        which,
        candidates,
        subjects,
        paths
    ));
    let mut holding = Vec::new();
    while let Some((add, found)) = scans.try_next().await? {
        if found.matched > 0 {
            holding.push(add);
        }
    }
    purge(delta, &holding).await
}

/// Deletes the replaced files now; a file already gone counts as deleted.
pub(crate) async fn purge(delta: &DeltaTable, removed: &[Add]) -> Result<u64> {
    let store = delta.object_store();
    let mut purged = 0;
    let mut seen = HashSet::new();
    for add in removed {
        if !seen.insert(add.path.as_str()) {
            continue;
        }
        match store.delete(&object_path(&add.path)).await {
            Ok(()) | Err(deltalake::ObjectStoreError::NotFound { .. }) => purged += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(purged)
}
