//! The index compared with staging, key by key (`lakehouse keys check`).

use std::collections::HashMap;

use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use lakehouse_lake::files::{live_files, read_file_on_task};
use lakehouse_lake::{Lake, LakeError, Table};
use serde::Serialize;

use crate::error::Result;
use lakehouse_lake::index_progress::lag_versions;

use super::entries::{READS_AT_ONCE, SCAN_COLUMNS, read_entries};
use super::lookup::{IndexView, absorb, latest};
use lakehouse_lake::index_progress::indexed_version;

/// The result of comparing the index with staging at the version the index holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeysCheck {
    /// The staging version compared (the one the index holds); `None`: no index.
    pub indexed: Option<u64>,
    /// Staging's latest version: versions after `indexed` are the index's lag.
    pub staging_version: u64,
    pub staging_rows: u64,
    pub index_entries: u64,
    pub index_keys: u64,
    /// Staged keys the index lacks.
    pub missing: u64,
    /// Keys whose latest entry is not the staged row's instant and type.
    pub wrong: u64,
    /// Keys the index holds that staging does not.
    pub extra: u64,
    /// A few of the keys that differ, for the report.
    pub examples: Vec<String>,
}

impl KeysCheck {
    pub fn is_exact(&self) -> bool {
        self.indexed.is_some() && self.missing == 0 && self.wrong == 0 && self.extra == 0
    }
}

/// Compares every key of the index with staging as of the version the index holds: reads
/// both tables whole (a check, not a step of compaction).
pub async fn check_keys(lake: &Lake) -> Result<KeysCheck> {
    let (Some(staging), Some(keys)) = tokio::try_join!(
        lake.open_existing(Table::Staging),
        lake.open_existing(Table::Keys)
    )?
    else {
        return Ok(KeysCheck::default());
    };
    let staging_id = staging.snapshot()?.metadata().id().to_string();
    let mut check = KeysCheck {
        staging_version: staging.version().unwrap_or(0),
        indexed: indexed_version(&keys, &staging_id).await?,
        ..KeysCheck::default()
    };
    let Some(indexed) = check.indexed else {
        return Ok(check);
    };
    // Staging's rows are the same at its head when no commit since changed data (only
    // optimize ran, whose removed files a vacuum may have deleted already).
    let lagging = lag_versions(&staging, Some(indexed)).await? > 0;
    let at = if lagging {
        lake.open_version(Table::Staging, indexed).await?
    } else {
        staging
    };
    let index = read_index(&keys, &mut check.index_entries).await?;
    check.index_keys = index.len() as u64;
    // Staging reduced the same way: per key, its latest instant and the types at it.
    let mut staged: IndexView = HashMap::new();
    let store = at.object_store();
    let mut reads = futures::stream::iter(live_files(&at)?)
        .map(|add| read_entries(store.clone(), add))
        .buffer_unordered(READS_AT_ONCE);
    while let Some(entries) = reads.try_next().await.map_err(|e| match e {
        crate::CompactError::Lake(LakeError::Vanished { .. }) if lagging => {
            crate::CompactError::IndexedVersionGone { indexed }
        }
        e => e,
    })? {
        check.staging_rows += entries.len() as u64;
        for entry in entries {
            latest(
                &mut staged,
                entry.key,
                entry.created_micros,
                &entry.event_type,
            );
        }
    }
    for (key, (created, types)) in &staged {
        match index.get(key) {
            None => {
                check.missing += 1;
                note(&mut check.examples, format!("missing {key:?}"));
            }
            Some((at, indexed)) if at != created || !same_types(indexed, types) => {
                check.wrong += 1;
                note(&mut check.examples, format!("wrong {key:?}"));
            }
            Some(_) => {}
        }
    }
    for key in index.keys().filter(|k| !staged.contains_key(k)) {
        check.extra += 1;
        note(&mut check.examples, format!("extra {key:?}"));
    }
    Ok(check)
}

fn note(examples: &mut Vec<String>, example: String) {
    if examples.len() < 5 {
        examples.push(example);
    }
}

/// Every entry of the index, reduced to the latest instant per key.
async fn read_index(keys: &DeltaTable, entries: &mut u64) -> Result<IndexView> {
    let store = keys.object_store();
    let mut reads = futures::stream::iter(live_files(keys)?)
        .map(|add| read_file_on_task(store.clone(), Table::Keys, add, Some(SCAN_COLUMNS)))
        .buffer_unordered(READS_AT_ONCE);
    let mut view: IndexView = HashMap::new();
    while let Some(batches) = reads.try_next().await? {
        *entries += absorb(&mut view, &batches, |_, _| true);
    }
    Ok(view)
}

fn same_types(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|t| b.contains(t))
}

#[cfg(test)]
mod tests {
    use lakehouse_lake::keys::Key;

    use super::*;

    #[test]
    fn the_latest_instant_per_key_decides_and_ties_keep_every_type() {
        let key = Key::of("a");
        let mut view = IndexView::new();
        for (at, t) in [(5, "x"), (9, "y"), (9, "z"), (7, "w"), (9, "y")] {
            latest(&mut view, key, Some(at), t);
        }
        assert_eq!(
            view.get(&key),
            Some(&(Some(9), vec!["y".to_string(), "z".to_string()]))
        );
        assert!(same_types(&view[&key].1, &["z".into(), "y".into()]));
        assert!(!same_types(&view[&key].1, &["z".into()]));
    }
}
