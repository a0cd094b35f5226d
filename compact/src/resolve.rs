//! Which copy of an event wins: the greatest creation instant (`created_datetime`, to the
//! microsecond: `created_at` is its floor in whole seconds, so `…00.9` beats `…00.1`); on
//! the same instant, the copy ingested later: the later raw commit, then the later position
//! within that commit. Against the staged copy, a new copy on the same instant with the
//! same payload is a redelivery: the staged copy stands.
//!
//! The rule is written here once: [`Precedence`]'s order among new copies (and among
//! staged copies, for the sweep), [`replaces_staged`] (split into [`by_instant`] and
//! [`on_same_instant`] for a merge that reads the tie's columns only when it must) against
//! staging, and [`MERGE_PREDICATE`], the text a merge records in the log.

use foldhash::{HashMap, HashMapExt};

use deltalake::arrow::array::{Array, AsArray, PrimitiveArray, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{ArrowPrimitiveType, Int64Type, TimestampMicrosecondType};
use lakehouse_lake::LakeError;
use lakehouse_lake::schema::{CREATED_DATETIME, EVENT_UUID, INGEST_SEQ, RAW_VERSION};

/// The ordering of copies of one event; the greatest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precedence {
    /// `created_datetime` in Unix microseconds.
    pub created_micros: i64,
    pub raw_version: i64,
    pub ingest_seq: i64,
}

/// The merge's match rule as recorded in the log's `operationParameters` (Delta's merge
/// predicate text, for readers of the history): [`replaces_staged`] in SQL.
pub const MERGE_PREDICATE: &str = "source.created_datetime > target.created_datetime OR \
     (source.created_datetime = target.created_datetime AND \
     source.payload <> target.payload)";

/// Whether a new copy replaces the staged copy of its event: by [`by_instant`], and on the
/// same instant by [`on_same_instant`].
pub fn replaces_staged(
    new: Precedence,
    new_payload: Option<&str>,
    staged: Precedence,
    staged_payload: Option<&str>,
) -> bool {
    by_instant(new.created_micros, staged.created_micros)
        .unwrap_or_else(|| on_same_instant(new, new_payload, staged, staged_payload))
}

/// The instants decide: `Some(true)` the new copy replaces, `Some(false)` it loses, `None`
/// a tie (on the microsecond) that [`on_same_instant`] settles.
pub fn by_instant(new_micros: i64, staged_micros: i64) -> Option<bool> {
    match new_micros.cmp(&staged_micros) {
        std::cmp::Ordering::Greater => Some(true),
        std::cmp::Ordering::Less => Some(false),
        std::cmp::Ordering::Equal => None,
    }
}

/// On the same instant: the same payload is a redelivery (staging holds this exact event)
/// and the staged copy stands, as it does when it was ingested later (a raw commit merged in
/// parts, out of order); otherwise the new copy, a revision ingested later, replaces it.
pub fn on_same_instant(
    new: Precedence,
    new_payload: Option<&str>,
    staged: Precedence,
    staged_payload: Option<&str>,
) -> bool {
    let order = |p: Precedence| (p.raw_version, p.ingest_seq);
    new_payload != staged_payload && order(new) >= order(staged)
}

/// Where a row is: `(batch index, row index)`, the form Arrow's `interleave` takes.
pub type RowRef = (usize, usize);

/// The winning copy of each `event_uuid` among some batches, borrowing the uuids from
/// them. Sharded by the uuid's hash, so the shards are built on every core at once: a map
/// of a million events is mostly cache misses.
pub struct Winners<'a> {
    shards: Vec<HashMap<&'a str, (Precedence, RowRef)>>,
}

impl<'a> Winners<'a> {
    pub fn get(&self, uuid: &str) -> Option<&(Precedence, RowRef)> {
        self.shards[shard_of(uuid, self.shards.len())].get(uuid)
    }

    /// The uuid as the winners hold it, borrowed from the batches, with its winner.
    pub fn get_key_value(&self, uuid: &str) -> Option<(&'a str, &(Precedence, RowRef))> {
        self.shards[shard_of(uuid, self.shards.len())]
            .get_key_value(uuid)
            .map(|(k, v)| (*k, v))
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &(Precedence, RowRef))> {
        self.shards.iter().flatten().map(|(k, v)| (*k, v))
    }
}

fn shard_of(uuid: &str, shards: usize) -> usize {
    use std::hash::BuildHasher;
    // A fixed seed: the shard must not depend on the map's own (random) hasher.
    let hash = foldhash::fast::FixedState::with_seed(0x5eed).hash_one(uuid);
    (hash % shards as u64) as usize
}

/// The key columns of a batch of `staging` rows.
struct KeyColumns<'a> {
    uuid: &'a StringArray,
    created: &'a PrimitiveArray<TimestampMicrosecondType>,
    version: &'a PrimitiveArray<Int64Type>,
    seq: &'a PrimitiveArray<Int64Type>,
}

/// The winning copy of each `event_uuid` among `batches` (rows of the `staging` schema);
/// an error when a batch lacks one of the columns that decide, rather than its rows left
/// out of the contest.
pub fn latest_per_uuid(batches: &[RecordBatch]) -> Result<Winners<'_>, LakeError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let shards = if rows < 100_000 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    };
    let keys = key_columns(batches)?;
    Ok(sharded(batches, keys, shards.clamp(1, 16)))
}

/// The key columns of each batch, by index.
fn key_columns(batches: &[RecordBatch]) -> Result<Vec<(usize, KeyColumns<'_>)>, LakeError> {
    batches
        .iter()
        .enumerate()
        .map(|(b, batch)| {
            let column = |name| batch.column_by_name(name);
            let columns = || {
                Some(KeyColumns {
                    uuid: column(EVENT_UUID)?.as_string_opt::<i32>()?,
                    created: column(CREATED_DATETIME)?.as_primitive_opt()?,
                    version: column(RAW_VERSION)?.as_primitive_opt()?,
                    seq: column(INGEST_SEQ)?.as_primitive_opt()?,
                })
            };
            let columns = columns().ok_or_else(|| {
                LakeError::BadRows(format!(
                    "rows to merge lack {EVENT_UUID}, {CREATED_DATETIME}, {RAW_VERSION} or \
                     {INGEST_SEQ} of the staging schema"
                ))
            })?;
            Ok((b, columns))
        })
        .collect()
}

fn sharded<'a>(
    batches: &'a [RecordBatch],
    keys: Vec<(usize, KeyColumns<'a>)>,
    shards: usize,
) -> Winners<'a> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let build = |shard: usize| shard_winners(&keys, shard, shards, rows / shards);
    let maps = if shards == 1 {
        vec![build(0)]
    } else {
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..shards)
                .map(|shard| scope.spawn(move || build(shard)))
                .collect();
            let mut maps = vec![build(0)];
            // A panic in a shard is a bug; propagate it rather than lose events.
            maps.extend(
                others
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
            );
            maps
        })
    };
    Winners { shards: maps }
}

fn shard_winners<'a>(
    keys: &[(usize, KeyColumns<'a>)],
    shard: usize,
    shards: usize,
    capacity: usize,
) -> HashMap<&'a str, (Precedence, RowRef)> {
    let mut winners: HashMap<&'a str, (Precedence, RowRef)> = HashMap::with_capacity(capacity);
    for (b, k) in keys {
        for row in 0..k.uuid.len() {
            if k.uuid.is_null(row) {
                continue;
            }
            let uuid = k.uuid.value(row);
            if shards > 1 && shard_of(uuid, shards) != shard {
                continue;
            }
            let precedence = Precedence {
                created_micros: value_or_min(k.created, row),
                raw_version: value_or_min(k.version, row),
                ingest_seq: value_or_min(k.seq, row),
            };
            winners
                .entry(uuid)
                .and_modify(|(best, at)| {
                    if precedence > *best {
                        *best = precedence;
                        *at = (*b, row);
                    }
                })
                .or_insert((precedence, (*b, row)));
        }
    }
    winners
}

/// A null sorts below every value: any copy with a value wins over one without.
pub fn value_or_min<T: ArrowPrimitiveType<Native = i64>>(
    array: &PrimitiveArray<T>,
    row: usize,
) -> i64 {
    if array.is_null(row) {
        i64::MIN
    } else {
        array.value(row)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    /// Against staging, the rule is the order of new copies but for a redelivery: on
    /// every pair of a small grid, a new copy replaces the staged one exactly when it comes
    /// later in [`Precedence`] order (or ties it) and is not the same event again.
    #[test]
    fn a_new_copy_replaces_the_staged_one_by_precedence_unless_it_is_a_redelivery() {
        let grid: Vec<Precedence> = (0..2)
            .flat_map(|c| (0..2).flat_map(move |v| (0..2).map(move |s| (c, v, s))))
            .map(|(created_micros, raw_version, ingest_seq)| Precedence {
                created_micros,
                raw_version,
                ingest_seq,
            })
            .collect();
        for &new in &grid {
            for &staged in &grid {
                for (new_payload, staged_payload) in
                    [(Some("a"), Some("a")), (Some("b"), Some("a"))]
                {
                    let redelivery = new.created_micros == staged.created_micros
                        && new_payload == staged_payload;
                    let expected = !redelivery && new >= staged;
                    assert_eq!(
                        replaces_staged(new, new_payload, staged, staged_payload),
                        expected,
                        "{new:?} {new_payload:?} against {staged:?} {staged_payload:?}"
                    );
                }
            }
        }
    }

    pub(super) fn batch(rows: &[(&str, i64, i64, i64)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(EVENT_UUID, DataType::Utf8, false),
            Field::new(
                CREATED_DATETIME,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new(RAW_VERSION, DataType::Int64, true),
            Field::new(INGEST_SEQ, DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))
                        .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_fraction_of_a_second_decides_not_the_later_ingest() {
        // 1700000000.9 ingested first, 1700000000.1 later: same created_at, .9 wins.
        let batches = [batch(&[
            ("a", 1_700_000_000_900_000, 1, 0),
            ("a", 1_700_000_000_100_000, 2, 0),
        ])];
        let w = latest_per_uuid(&batches).expect("winners");
        assert_eq!(w.get("a").unwrap().1, (0, 0));
    }

    #[test]
    fn latest_created_at_wins_then_later_ingest() {
        let batches = [
            batch(&[("a", 10, 1, 0), ("b", 5, 1, 1), ("a", 9, 1, 2)]),
            batch(&[("b", 5, 2, 0), ("c", 1, 2, 1), ("c", 1, 2, 2)]),
        ];
        let w = latest_per_uuid(&batches).expect("winners");
        assert_eq!(w.len(), 3);
        assert_eq!(w.get("a").unwrap().1, (0, 0)); // greater created_at, though ingested earlier
        assert_eq!(w.get("b").unwrap().1, (1, 0)); // tie: later raw version
        assert_eq!(w.get("c").unwrap().1, (1, 2)); // tie in one commit: later position
    }
}

#[cfg(test)]
mod sharding {
    use proptest::prelude::*;

    use super::tests::batch;
    use super::*;

    #[test]
    fn rows_without_a_column_that_decides_are_an_error_not_left_out() {
        let full = batch(&[("a", 10, 1, 0)]);
        let without = full.project(&[0, 1, 2]).expect("project");
        let error = latest_per_uuid(&[full, without])
            .err()
            .map(|e| e.to_string());
        assert!(
            error.as_ref().is_some_and(|e| e.contains("lack")),
            "{error:?}"
        );
    }

    proptest! {
        /// However many shards build it, the winners are the same.
        #[test]
        fn shards_agree_with_one_map(
            rows in proptest::collection::vec((0u8..40, 0i64..5, 0i64..3, 0i64..4), 0..300),
            shards in 2usize..6,
        ) {
            let names: Vec<String> = rows.iter().map(|r| format!("u{}", r.0)).collect();
            let rows: Vec<(&str, i64, i64, i64)> =
                rows.iter().zip(&names).map(|(r, n)| (n.as_str(), r.1, r.2, r.3)).collect();
            let half = rows.len() / 2;
            let batches = [batch(&rows[..half]), batch(&rows[half..])];
            let keys = || key_columns(&batches).expect("key columns");
            let one = sharded(&batches, keys(), 1);
            let many = sharded(&batches, keys(), shards);
            prop_assert_eq!(one.len(), many.len());
            for (uuid, winner) in one.iter() {
                prop_assert_eq!(many.get(uuid), Some(winner));
            }
        }
    }
}
