//! The end of a run: every batch handed over must be in `raw` exactly once, and each
//! batch's commit lag is read from the log.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};
use lakehouse_ingest::manifest_log::ManifestKey;
use lakehouse_lake::log::commit_actions;
use lakehouse_lake::{CommitMetadata, Lake, Table};

use crate::{Mode, Sim};

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// A copy of what a tally holds.
fn snapshot<T: Clone>(tally: &std::sync::Mutex<T>) -> Result<T> {
    Ok(tally
        .lock()
        .map_err(|_| anyhow::anyhow!("a writer panicked holding the tally"))?
        .clone())
}

/// Reads the whole log (without injected latency): each stored batch must be in the table
/// exactly once. Returns (lost, duplicated, commit lags in seconds).
pub(crate) async fn verify(sim: &Sim, plain: &Lake) -> Result<(u64, u64, Vec<f64>)> {
    let raw = plain.open(Table::Raw).await?;
    let files = snapshot(&sim.tally.files)?;
    let handed = snapshot(&sim.tally.handed)?;
    let stored = snapshot(&sim.tally.stored)?;
    let mut attempts: HashMap<(u64, u64), HashSet<u64>> = HashMap::new();
    let mut rows = 0u64;
    for add in lakehouse_lake::files::live_files(&raw)? {
        let (shard, k, attempt) = *files
            .get(&add.path)
            .with_context(|| format!("{} in the table was never written", add.path))?;
        attempts.entry((shard, k)).or_default().insert(attempt);
        rows += lakehouse_lake::files::rows_of(&add).unwrap_or(0);
    }
    let stored = match sim.args.mode {
        Mode::Grouped => stored,
        // Direct: every shard's batches 0..=k up to the last one in the table.
        Mode::Direct => {
            let mut last: BTreeMap<u64, u64> = BTreeMap::new();
            for (shard, k) in attempts.keys() {
                let n = last.entry(*shard).or_default();
                *n = (*n).max(k + 1);
            }
            last
        }
    };
    let (mut lost, mut duplicated) = (0, 0);
    for (shard, batches) in &stored {
        for k in 0..*batches {
            match attempts.get(&(*shard, k)).map_or(0, HashSet::len) {
                0 => lost += 1,
                1 => {}
                n => duplicated += n as u64 - 1,
            }
        }
    }
    let batches: u64 = stored.values().sum();
    // Batches beyond those handed over (a writer stopped mid-hand-over) would show here too.
    let extra = attempts.len() as u64 - (batches - lost);
    duplicated += extra;
    let expected_rows = batches * sim.args.rows_per_batch;
    if rows != expected_rows && lost + duplicated == 0 {
        anyhow::bail!("raw holds {rows} rows, expected {expected_rows}");
    }
    let mut lags = Vec::new();
    let head = raw.version().unwrap_or(0) as u64;
    for version in 1..=head {
        let Some(actions) = commit_actions(raw.log_store().as_ref(), version).await? else {
            continue;
        };
        let Some(metadata) = CommitMetadata::from_actions(&actions) else {
            continue;
        };
        let timestamp = actions.iter().find_map(|a| match a {
            deltalake::kernel::Action::CommitInfo(info) => info.timestamp,
            _ => None,
        });
        for batch in metadata.batches.unwrap_or_default() {
            let key = ManifestKey {
                app_id: batch.source,
                version: batch.version,
            };
            if let (Some(at), Some(ts)) = (handed.get(&key), timestamp) {
                lags.push((ts - at).max(0) as f64 / 1000.0);
            }
        }
    }
    Ok((lost, duplicated, lags))
}
