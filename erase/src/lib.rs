//! The erasure stage: every event of the subjects of a request gone from `raw`, `staging`
//! and `quarantine`, and from every version of them still readable, with a receipt in
//! `erasures` (`docs/erasure.md`).
//!
//! - [`subjects`]: the subjects sought, their keyed hashes and the request's id.
//! - [`find`]: which files hold them, from the `subject_id` column's bloom filters, and
//!   which rows, by the column or (files older than it, quarantine) the subject paths.
//! - [`table`]: one table's erasure: its files rewritten without those rows in one commit
//!   recording the request, then the files it replaced deleted at once.
//! - [`index`]: the erased events' entries out of the key index.
//! - [`typed`]: the typed tables brought to the erased staging, and their older files
//!   holding the erased events deleted.
//! - [`residue`]: every data file still stored under each table searched again.
//! - [`receipt`]: the receipt, written once per request.
//! - [`requests`]: requests waiting in the lake for the scheduled run.

pub mod error;
pub mod find;
pub mod index;
pub mod receipt;
pub mod requests;
pub mod residue;
pub mod subjects;
pub mod table;
pub mod typed;

use chrono::Utc;
use lakehouse_lake::{Lake, Table};

pub use error::{EraseError, Result};
pub use receipt::{NOT_CONTROLLED, Receipt};
pub use subjects::Subjects;
pub use table::TableErasure;

/// The tables an erasure rewrites, in this order: raw first, so a compaction that read
/// the subject's rows from raw before finds staging changed under it (see [`table`]).
pub const ERASED_TABLES: [Table; 3] = [Table::Raw, Table::Staging, Table::Quarantine];

/// How to run an erasure.
#[derive(Debug, Clone, Default)]
pub struct EraseOptions {
    /// Find and report, change nothing.
    pub dry_run: bool,
    /// When the request was made (a waiting request's time); now when `None`.
    pub requested_at: Option<chrono::DateTime<Utc>>,
}

/// Erases `subjects` from the lake, once per request id: a request already receipted
/// returns its receipt; one that stopped half way goes on where it stopped.
pub async fn erase(lake: &Lake, subjects: &Subjects, options: &EraseOptions) -> Result<Receipt> {
    let requested_at = options.requested_at.unwrap_or_else(Utc::now);
    if let Some(done) = receipt::find(lake, subjects.request_id()).await? {
        return Ok(done);
    }
    let paths = table::subject_paths(lake).await?;
    let mut tables = Vec::new();
    let mut index = index::IndexErasure::default();
    for which in ERASED_TABLES {
        let erased = table::erase_table(lake, which, subjects, &paths, options.dry_run).await?;
        if which == Table::Staging && !options.dry_run {
            index = index::erase_keys(lake, subjects, &erased.erased_keys).await?;
        }
        tables.push(erased);
    }
    let sought = typed::Sought {
        subjects,
        keys: tables
            .iter()
            .flat_map(|t| t.erased_keys.iter().copied())
            .collect(),
    };
    let (typed, residue) = if options.dry_run {
        (typed::TypedErasure::default(), residue::Residue::default())
    } else {
        let typed = typed::erase_typed(lake, &sought).await?;
        let mut residue = residue::check(lake, subjects, &paths).await?;
        let (checked, rows, files) = typed::residue(lake, &sought).await?;
        residue.files_checked += checked;
        residue.rows += rows;
        residue.files.extend(files);
        (typed, residue)
    };
    let mut receipt = Receipt::new(subjects, requested_at, tables, residue, options.dry_run);
    receipt.index = index;
    receipt.typed = typed;
    if !options.dry_run && receipt.residue_rows == 0 {
        receipt::record(lake, &receipt).await?;
    }
    Ok(receipt)
}
