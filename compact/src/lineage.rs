//! Which `raw` table `staging` was built from. Each staging merge records the Delta table id
//! of the `raw` it consumed; a `raw` recreated under `staging` has another id, and consuming
//! it from the version staging recorded would silently skip its first versions.

use lakehouse_lake::CommitMetadata;

use crate::error::{CompactError, Result};

/// Fails when `raw` (table id `found`, at version `head`) is not the table staging consumed
/// up to version `consumed`, by what its `last_merge` recorded: another table id, or (where
/// no id was recorded) fewer versions than staging consumed.
pub fn check_same_raw(
    last_merge: Option<&CommitMetadata>,
    (found, head): (&str, u64),
    consumed: u64,
) -> Result<()> {
    let expected = last_merge.and_then(|m| m.raw_table_id.clone());
    let replaced = match &expected {
        Some(id) => id != found,
        None => consumed > head,
    };
    if !replaced {
        return Ok(());
    }
    Err(CompactError::RawReplaced {
        consumed,
        expected: expected.unwrap_or_else(|| "(not recorded)".into()),
        found: found.to_string(),
        head,
    })
}
