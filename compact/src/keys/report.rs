//! What one update of the index did: the report an update and a build add to.

use serde::Serialize;

/// What one update of the index did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeysUpdate {
    /// The staging version the index held before (`None`: nothing for this staging).
    pub indexed_before: Option<u64>,
    /// The staging version it holds now.
    pub indexed: u64,
    /// Built from all of staging's live files, replacing what the table held.
    pub rebuilt: bool,
    pub staging_files_read: u64,
    /// A rebuild's files (staging's live files at the version it builds), the commits it
    /// made in this update, and how many files an earlier, interrupted update had indexed.
    pub build_files: u64,
    pub build_commits: u64,
    pub build_resumed_after: Option<u64>,
    pub entries_added: u64,
    pub files_added: u64,
    pub files_removed: u64,
}

impl KeysUpdate {
    /// This update followed by `later`: one report of both.
    pub fn then(self, later: KeysUpdate) -> KeysUpdate {
        KeysUpdate {
            indexed_before: self.indexed_before,
            rebuilt: self.rebuilt || later.rebuilt,
            staging_files_read: self.staging_files_read + later.staging_files_read,
            build_files: self.build_files.max(later.build_files),
            build_commits: self.build_commits + later.build_commits,
            build_resumed_after: self.build_resumed_after.or(later.build_resumed_after),
            entries_added: self.entries_added + later.entries_added,
            files_added: self.files_added + later.files_added,
            files_removed: self.files_removed + later.files_removed,
            ..later
        }
    }
}
