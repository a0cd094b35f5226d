//! The key index's optimize: merging a bucket's sorted runs, size-tiered.
//!
//! Each index update writes one sorted file per bucket it touches: a run. A lookup checks
//! a key against every run of its bucket (one row group's bloom filter, by the run's
//! min/max), so runs must not pile up; bin-packing them would concatenate runs into files
//! whose row groups span the whole key range, and each key would meet several filters and
//! their false positives. Instead a bucket's runs are grouped in tiers by size (powers of
//! [`FANOUT`] rows); when one tier holds [`FANOUT`] runs, they and every smaller run merge
//! into one sorted run. So an entry is rewritten about once per tier, log₄ of the bucket's
//! size over one update's share of it, and a bucket holds at most three runs per tier.
//!
//! A merge keeps one entry per key, type and date, the latest: a lookup wants the latest
//! instant among the types it searches, and the check the latest instant with every
//! type staged at it, and both read the same from the merged run; a sweep by the index
//! wants every partition a key's rows may be in, so an older copy's entry in another date
//! is kept (rows replaced by late copies keep a stale entry, which costs a read).
//!
//! Runs merge only within an age class ([`age_class`]: by when they were indexed, in
//! classes that double in length), and a merged run takes the newest input's instant: so
//! a round with a hot window never finds old keys dragged into a hot run, and keys stay
//! hot at most about twice as long as they are young.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use lakehouse_lake::Table;
use lakehouse_lake::files::{live_files, read_file, remove_of, rows_of};
use lakehouse_lake::keys::{
    KeyEntry, has_entries_per_date, indexed_at, keys_batch, tag_entries_per_date, tag_indexed_at,
};
use lakehouse_lake::schema::KEY_BUCKET;
use lakehouse_lake::write::{FileWriter, PartitionKey};

use crate::error::Result;
use crate::keys::{SCAN_COLUMNS, index_rows};
use crate::optimize::{OptimizeMetrics, abandon_rewrite, commit_rewrite};

/// Runs of one tier that merge; also the ratio between tiers.
pub const FANOUT: u64 = 4;

/// Runs smaller than this many entries are all of one tier: four of them merge, however
/// small (a quiet lake's rounds write runs of a few entries).
const SMALLEST_TIER: u64 = 4_096;

/// Entries one bucket's merge holds at most (~40 bytes each): bigger runs wait.
const MAX_MERGE_ENTRIES: u64 = 8_000_000;

/// Merges the runs of every bucket of the key index `keys` that has a full tier, in one
/// commit that changes no data. A concurrent rebuild (which removes every file) wins: this
/// commit then fails on its removes, deletes what it wrote and yields.
pub async fn merge_key_runs(keys: &DeltaTable) -> Result<OptimizeMetrics> {
    let now = chrono::Utc::now().timestamp();
    let mut buckets: BTreeMap<(String, u32), Vec<Add>> = BTreeMap::new();
    for add in live_files(keys)? {
        if let Some(bucket) = add.partition_values.get(KEY_BUCKET).cloned().flatten() {
            let class = age_class(indexed_at(&add), now);
            buckets.entry((bucket, class)).or_default().push(add);
        }
    }
    let writer = FileWriter::for_table(Table::Keys, keys)?;
    let store = keys.object_store();
    let mut actions = Vec::new();
    let mut added: Vec<Add> = Vec::new();
    let written = async {
        for ((bucket, _), mut runs) in buckets {
            runs.sort_by(|a, b| a.path.cmp(&b.path));
            let sizes: Vec<u64> = runs.iter().map(entries_of).collect();
            let chosen = runs_to_merge(&sizes);
            if chosen.is_empty() {
                continue;
            }
            let mut types: HashMap<String, Arc<str>> = HashMap::new();
            let mut entries = Vec::new();
            for &i in &chosen {
                let batches = read_file(store.clone(), Table::Keys, &runs[i], Some(SCAN_COLUMNS));
                for batch in batches.await? {
                    for (key, created_micros, name) in index_rows(&batch) {
                        let event_type = match types.get(name) {
                            Some(t) => t.clone(),
                            None => types.entry(name.to_string()).or_insert(name.into()).clone(),
                        };
                        entries.push(KeyEntry {
                            key,
                            created_micros,
                            event_type,
                        });
                    }
                }
                actions.push(Action::Remove(remove_of(&runs[i], false)));
            }
            latest_per_key_type_and_date(&mut entries);
            let newest = chosen.iter().filter_map(|&i| indexed_at(&runs[i])).max();
            // A run merged by an older rule may lack an older copy's entry: so does this.
            let per_date = chosen.iter().all(|&i| has_entries_per_date(&runs[i]));
            let Ok(number) = u32::from_str_radix(&bucket, 16) else {
                continue;
            };
            let key = PartitionKey {
                date: 0,
                name: bucket.as_str().into(),
            };
            let adds = writer.write(&key, keys_batch(number, &entries)?).await?;
            added.extend(adds.into_iter().map(|mut add| {
                add.data_change = false;
                if let Some(at) = newest {
                    tag_indexed_at(&mut add, at);
                }
                if per_date {
                    tag_entries_per_date(&mut add);
                }
                add
            }));
        }
        Ok::<_, crate::CompactError>(())
    }
    .await;
    if let Err(e) = written {
        return abandon_rewrite(keys, &added, e).await;
    }
    if actions.is_empty() {
        return Ok(OptimizeMetrics::default());
    }
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: 0,
    };
    commit_rewrite(keys, operation, actions, added, None).await
}

/// A run's age class by when it was indexed (Unix seconds; `None`: before runs were
/// tagged, the oldest class): ⌊log₂(hours + 1)⌋, so class c holds runs 2^c − 1 to
/// 2^(c+1) − 1 hours old. Runs of one class are at most about twice as old as each other.
fn age_class(indexed_at: Option<i64>, now: i64) -> u32 {
    match indexed_at {
        None => u32::MAX,
        Some(at) => (now.saturating_sub(at).max(0) as u64 / 3_600 + 1).ilog2(),
    }
}

/// Rows of an index file, from its statistics (its size over ~24 bytes an entry without).
fn entries_of(add: &Add) -> u64 {
    rows_of(add).unwrap_or(add.size.max(0) as u64 / 24)
}

/// A run's tier: ⌊log₄ entries⌋, the smallest runs all in the first.
fn tier(entries: u64) -> u32 {
    entries.max(SMALLEST_TIER).ilog(FANOUT)
}

/// Which of a bucket's runs (their entries) merge: those of the highest tier holding
/// [`FANOUT`] runs and of every tier below, smallest first, within [`MAX_MERGE_ENTRIES`].
/// Nothing when no tier is full or fewer than two runs fit.
fn runs_to_merge(entries: &[u64]) -> Vec<usize> {
    let mut per_tier: BTreeMap<u32, u64> = BTreeMap::new();
    for &n in entries {
        *per_tier.entry(tier(n)).or_default() += 1;
    }
    let Some(top) = per_tier
        .iter()
        .rev()
        .find(|&(_, &runs)| runs >= FANOUT)
        .map(|(&t, _)| t)
    else {
        return Vec::new();
    };
    let mut chosen: Vec<usize> = (0..entries.len())
        .filter(|&i| tier(entries[i]) <= top)
        .collect();
    chosen.sort_by_key(|&i| (entries[i], i));
    let mut total = 0;
    chosen.retain(|&i| {
        total += entries[i];
        total <= MAX_MERGE_ENTRIES
    });
    if chosen.len() < 2 {
        return Vec::new();
    }
    chosen
}

/// Keeps, of each key's entries of one type and UTC date (one staging partition), the
/// latest (a missing instant is the earliest).
fn latest_per_key_type_and_date(entries: &mut Vec<KeyEntry>) {
    let day = |e: &KeyEntry| e.created_micros.map(|us| us.div_euclid(MICROS_PER_DAY));
    entries.sort_unstable_by(|a, b| {
        (a.key, &a.event_type, day(a))
            .cmp(&(b.key, &b.event_type, day(b)))
            .then(b.created_micros.cmp(&a.created_micros))
    });
    entries.dedup_by(|later, kept| {
        later.key == kept.key && later.event_type == kept.event_type && day(later) == day(kept)
    });
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_lake::keys::Key;

    #[test]
    fn a_full_tier_merges_with_every_smaller_run() {
        // Tiers: 15,600 → 6; 62,500 → 7; 250,000 → 8.
        assert!(runs_to_merge(&[15_600; 3]).is_empty());
        assert_eq!(runs_to_merge(&[3, 9, 17, 4_000]), vec![0, 1, 2, 3]);
        assert_eq!(runs_to_merge(&[15_600; 4]), vec![0, 1, 2, 3]);
        assert!(runs_to_merge(&[250_000, 62_500, 15_600, 15_600]).is_empty());
        // Four of tier 7 take the tier-6 run along, not the tier-8 one.
        let merged = runs_to_merge(&[250_000, 62_500, 62_500, 15_600, 62_500, 62_500]);
        assert_eq!(merged, vec![3, 1, 2, 4, 5]);
        // Within the memory bound, smallest first.
        assert_eq!(runs_to_merge(&[5_000_000; 4]), Vec::<usize>::new());
        assert_eq!(runs_to_merge(&[3_000_000; 4]), vec![0, 1]);
    }

    #[test]
    fn age_classes_double_and_untagged_runs_are_the_oldest() {
        let now = 1_000_000_000;
        let class = |hours: i64| age_class(Some(now - hours * 3_600), now);
        assert_eq!(
            [0, 1, 2, 3, 6, 7, 15, 24, 8_760].map(class),
            [0, 1, 1, 2, 2, 3, 4, 4, 13]
        );
        // A clock behind the run's: the youngest class, never a panic.
        assert_eq!(age_class(Some(now + 99), now), 0);
        assert_eq!(age_class(Some(i64::MIN), now), 51);
        assert_eq!(age_class(None, now), u32::MAX);
    }

    #[test]
    fn a_merge_keeps_the_latest_entry_of_each_key_type_and_date() {
        const DAY: i64 = 86_400_000_000;
        let entry = |lo: i64, at: Option<i64>, t: &str| KeyEntry {
            key: Key { hi: 1, lo },
            created_micros: at,
            event_type: t.into(),
        };
        let mut entries = vec![
            entry(1, Some(5), "a"),
            entry(1, Some(9), "a"),
            entry(1, None, "a"),
            entry(1, Some(7), "b"),
            // An older copy of one type on another date keeps its entry.
            entry(1, Some(9 - 400 * DAY), "a"),
            entry(1, Some(8 - 400 * DAY), "a"),
            entry(2, None, "a"),
        ];
        latest_per_key_type_and_date(&mut entries);
        let mut expected = vec![
            entry(1, Some(9), "a"),
            entry(1, Some(9 - 400 * DAY), "a"),
            entry(1, None, "a"),
            entry(1, Some(7), "b"),
            entry(2, None, "a"),
        ];
        let order = |e: &KeyEntry| (e.key, e.event_type.clone(), e.created_micros);
        entries.sort_by_key(order);
        expected.sort_by_key(order);
        assert_eq!(entries, expected);
    }
}
