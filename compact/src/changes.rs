//! What `raw` gained between two versions, read from the commits themselves: the files
//! added with `dataChange=true`. Bin-packing rewrites (`dataChange=false`) carry no new
//! rows and are skipped, as Delta's own streaming readers do. A file an erasure removed
//! since is listed (progress counts a commit's files by position) but not read: its other
//! rows are in the files the erasure added (`docs/erasure.md`).

use std::collections::HashSet;

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add};
use futures::TryStreamExt;
use lakehouse_lake::files::live_files;
use lakehouse_lake::log::{commit_actions, commits_in, erasure_in};

use crate::error::{CompactError, Result};

/// A data file that `raw` gained, and the version that added it.
#[derive(Debug, Clone)]
pub struct RawFile {
    pub version: u64,
    pub add: Add,
    /// Removed by an erasure since: nothing to read (its other rows are in the files the
    /// erasure added).
    pub erased: bool,
}

/// The files added to `raw` by the commits `from..=to`, in commit order.
pub async fn raw_files_between(raw: &DeltaTable, from: u64, to: u64) -> Result<Vec<Vec<RawFile>>> {
    let log_store = raw.log_store();
    let live: HashSet<String> = live_files(raw)?.into_iter().map(|a| a.path).collect();
    let mut per_version = Vec::new();
    let mut erased = HashSet::new();
    for version in from..=to {
        let actions = commit_actions(log_store.as_ref(), version)
            .await?
            .ok_or(CompactError::MissingRawCommit { version })?;
        note_erased(&actions, &mut erased);
        let files: Vec<RawFile> = actions
            .into_iter()
            .filter_map(|action| match action {
                Action::Add(add) if add.data_change => Some(RawFile {
                    version,
                    erased: false,
                    add,
                }),
                _ => None,
            })
            .collect();
        per_version.push(files);
    }
    // Files no longer live were removed by optimize (rows kept elsewhere, read here as
    // before) or by an erasure: only the latter are left out, found in the commits since.
    let gone = |f: &RawFile| !live.contains(&f.add.path);
    if per_version.iter().flatten().any(gone) {
        let head = raw.version().unwrap_or(to);
        let mut commits = std::pin::pin!(commits_in(raw.log_store(), to + 1..=head, 16));
        while let Some((_, actions)) = commits.try_next().await? {
            note_erased(&actions.unwrap_or_default(), &mut erased);
        }
        for file in per_version.iter_mut().flatten() {
            file.erased = erased.contains(&file.add.path);
        }
    }
    Ok(per_version)
}

/// The files an erasure's commit among `actions` removed.
fn note_erased(actions: &[Action], erased: &mut HashSet<String>) {
    if erasure_in(actions).is_some() {
        erased.extend(actions.iter().filter_map(|a| match a {
            Action::Remove(r) => Some(r.path.clone()),
            _ => None,
        }));
    }
}
