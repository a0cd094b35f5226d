//! What `raw` gained between two versions, read from the commits themselves: the files
//! added with `dataChange=true`. Bin-packing rewrites (`dataChange=false`) carry no new
//! rows and are skipped, as Delta's own streaming readers do.

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add};
use lakehouse_lake::log::commit_actions;

use crate::error::{CompactError, Result};

/// A data file that `raw` gained, and the version that added it.
#[derive(Debug, Clone)]
pub struct RawFile {
    pub version: u64,
    pub add: Add,
}

impl RawFile {
    /// Rows in the file according to its statistics, when it has them.
    pub fn num_records(&self) -> Option<i64> {
        Some(self.add.get_stats().ok()??.num_records)
    }
}

/// The files added to `raw` by the commits `from..=to`, in commit order.
pub async fn raw_files_between(raw: &DeltaTable, from: u64, to: u64) -> Result<Vec<Vec<RawFile>>> {
    let log_store = raw.log_store();
    let mut per_version = Vec::new();
    for version in from..=to {
        let files = commit_actions(log_store.as_ref(), version)
            .await?
            .ok_or(CompactError::MissingRawCommit { version })?
            .into_iter()
            .filter_map(|action| match action {
                Action::Add(add) if add.data_change => Some(RawFile { version, add }),
                _ => None,
            })
            .collect();
        per_version.push(files);
    }
    Ok(per_version)
}
