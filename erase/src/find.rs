//! Which files and rows hold a request's subjects.
//!
//! Raw and staging files carry a bloom filter on `subject_id` per row group: a file is read
//! only when a filter may hold a subject (then its `subject_id` column alone, to be sure).
//! Ingest writes `""` where the paths name no subject, so a null is a row written before
//! the column existed (or copied since by a rewrite). Files with such rows, or without the
//! column, are read by payload and the subject paths resolved, a cost the report counts
//! apart (the footer's null counts say which files). Quarantine holds records that
//! may not parse: each is read, matched by the paths when it parses, by its bytes (the
//! subject's text anywhere in it) when it does not.

use std::borrow::Borrow;
use std::sync::Arc;

use deltalake::ObjectStore;
use deltalake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use deltalake::kernel::Add;
use futures::{Stream, StreamExt};
use lakehouse_lake::Table;
use lakehouse_lake::files::read_file;
use lakehouse_lake::point_read::{Filtered, may_hold_strings};
use lakehouse_lake::schema::{EVENT_TYPE, PAYLOAD, RAW, SUBJECT_ID};
use lakehouse_lake::subject::{RecordMatch, SubjectPaths};

use crate::error::{EraseError, Result};
use crate::subjects::Subjects;

/// What a search of one file found and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileMatch {
    /// Rows of the subjects in it.
    pub matched: u64,
    /// Bytes of bloom filters read, and of files read (whole, as an upper bound).
    pub filter_bytes: u64,
    pub bytes_read: u64,
    /// Read by payload: written before `subject_id` existed.
    pub by_payload: bool,
}

/// Files searched at once.
const SCANS_AT_ONCE: usize = 16;

/// [`scan_file`] over `files` of `table`, [`SCANS_AT_ONCE`] at a time: each file with what
/// was found in it, in no particular order.
pub fn scan_files<'a, T: Borrow<Add> + Send + 'a>(
    store: Arc<dyn ObjectStore>,
    table: Table,
    files: Vec<T>,
    subjects: &'a Subjects,
    paths: &'a SubjectPaths,
) -> impl Stream<Item = Result<(T, FileMatch)>> + 'a {
    futures::stream::iter(files)
        .map(move |file| {
            let store = store.clone();
            async move {
                let add: &Add = file.borrow();
                let found = scan_file(store, table, add, subjects, paths).await?;
                Ok((file, found))
            }
        })
        .buffer_unordered(SCANS_AT_ONCE)
}

/// Searches one file of `table` for the subjects.
pub async fn scan_file(
    store: Arc<dyn ObjectStore>,
    table: Table,
    add: &Add,
    subjects: &Subjects,
    paths: &SubjectPaths,
) -> Result<FileMatch> {
    let mut found = FileMatch::default();
    let columns: &[&str] = match table {
        Table::Quarantine => &[RAW],
        _ => {
            let (filtered, filter_bytes) =
                may_hold_strings(store.clone(), add, SUBJECT_ID, &subjects.id_refs()).await?;
            found.filter_bytes = filter_bytes;
            match filtered {
                Filtered::Absent => return Ok(found),
                Filtered::Maybe => &[SUBJECT_ID],
                Filtered::NoColumn | Filtered::Nulls => {
                    found.by_payload = true;
                    &[SUBJECT_ID, EVENT_TYPE, PAYLOAD]
                }
            }
        }
    };
    found.bytes_read = add.size.max(0) as u64;
    for batch in read_file(store, table, add, Some(columns)).await? {
        let hits = matching_rows(table, &batch, subjects, paths)?;
        found.matched += hits.true_count() as u64;
    }
    Ok(found)
}

/// Which rows of `batch` (rows of `table`, with the columns the search needs) belong to one
/// of the subjects. Raw and staging: by `subject_id` (`""`: none), or where it is null (rows
/// written before it existed) by the subject paths on the payload, when the batch holds it.
pub fn matching_rows(
    table: Table,
    batch: &RecordBatch,
    subjects: &Subjects,
    paths: &SubjectPaths,
) -> Result<BooleanArray> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| EraseError::InvalidRequest(format!("rows without {name}")))
    };
    if table == Table::Quarantine {
        let records = column(RAW)?.as_binary_opt::<i32>().ok_or_else(not_binary)?;
        let needles: Vec<memchr::memmem::Finder> = subjects
            .ids()
            .iter()
            .map(|s| memchr::memmem::Finder::new(s.as_bytes()))
            .collect();
        let is_subject = |s: &str| subjects.contains(s);
        return Ok(records
            .iter()
            .map(|record| {
                Some(
                    record.is_some_and(|r| match paths.record_names(r, &is_subject) {
                        RecordMatch::Named => true,
                        RecordMatch::NotNamed => false,
                        RecordMatch::Unparsed => needles.iter().any(|n| n.find(r).is_some()),
                    }),
                )
            })
            .collect());
    }
    let subject = column(SUBJECT_ID)?
        .as_string_opt::<i32>()
        .ok_or_else(not_text)?;
    let payloads = match (
        batch.column_by_name(EVENT_TYPE),
        batch.column_by_name(PAYLOAD),
    ) {
        (Some(t), Some(p)) => Some((
            t.as_string_opt::<i32>().ok_or_else(not_text)?,
            p.as_string_opt::<i32>().ok_or_else(not_text)?,
        )),
        _ => None,
    };
    Ok((0..batch.num_rows())
        .map(|row| {
            Some(if subject.is_valid(row) {
                subjects.contains(subject.value(row))
            } else {
                payloads.is_some_and(|(types, payload)| {
                    payload.is_valid(row)
                        && paths
                            .resolve(types.value(row), payload.value(row))
                            .is_some_and(|s| subjects.contains(&s))
                })
            })
        })
        .collect())
}

fn not_text() -> EraseError {
    EraseError::InvalidRequest("a text column is not text".into())
}

fn not_binary() -> EraseError {
    EraseError::InvalidRequest("quarantine's raw column is not binary".into())
}
