//! Which copy of an event wins: the greatest creation instant (`created_datetime`, to the
//! microsecond: `created_at` is its floor in whole seconds, so `…00.9` beats `…00.1`); on
//! the same instant, the copy ingested later: the later raw commit, then the later position
//! within that commit.

use foldhash::{HashMap, HashMapExt};

use deltalake::arrow::array::{Array, AsArray, PrimitiveArray, RecordBatch};
use deltalake::arrow::datatypes::{ArrowPrimitiveType, Int64Type, TimestampMicrosecondType};
use lakehouse_lake::schema::{CREATED_DATETIME, EVENT_UUID, INGEST_SEQ, RAW_VERSION};

/// The ordering of copies of one event; the greatest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precedence {
    /// `created_datetime` in Unix microseconds.
    pub created_micros: i64,
    pub raw_version: i64,
    pub ingest_seq: i64,
}

/// Where a row is: `(batch index, row index)`, the form Arrow's `interleave` takes.
pub type RowRef = (usize, usize);

/// The winning copy of each `event_uuid` among `batches` (rows of the `staging` schema),
/// borrowing the uuids from the batches.
pub fn latest_per_uuid(batches: &[RecordBatch]) -> HashMap<&str, (Precedence, RowRef)> {
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let mut winners: HashMap<&str, (Precedence, RowRef)> = HashMap::with_capacity(rows);
    for (b, batch) in batches.iter().enumerate() {
        let (Some(uuid), Some(created), Some(version), Some(seq)) = (
            batch
                .column_by_name(EVENT_UUID)
                .and_then(|c| c.as_string_opt::<i32>()),
            batch
                .column_by_name(CREATED_DATETIME)
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()),
            batch
                .column_by_name(RAW_VERSION)
                .and_then(|c| c.as_primitive_opt::<Int64Type>()),
            batch
                .column_by_name(INGEST_SEQ)
                .and_then(|c| c.as_primitive_opt::<Int64Type>()),
        ) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            if uuid.is_null(row) {
                continue;
            }
            let precedence = Precedence {
                created_micros: value_or_min(created, row),
                raw_version: value_or_min(version, row),
                ingest_seq: value_or_min(seq, row),
            };
            winners
                .entry(uuid.value(row))
                .and_modify(|(best, at)| {
                    if precedence > *best {
                        *best = precedence;
                        *at = (b, row);
                    }
                })
                .or_insert((precedence, (b, row)));
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

    fn batch(rows: &[(&str, i64, i64, i64)]) -> RecordBatch {
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
        assert_eq!(latest_per_uuid(&batches)["a"].1, (0, 0));
    }

    #[test]
    fn latest_created_at_wins_then_later_ingest() {
        let batches = [
            batch(&[("a", 10, 1, 0), ("b", 5, 1, 1), ("a", 9, 1, 2)]),
            batch(&[("b", 5, 2, 0), ("c", 1, 2, 1), ("c", 1, 2, 2)]),
        ];
        let w = latest_per_uuid(&batches);
        assert_eq!(w.len(), 3);
        assert_eq!(w["a"].1, (0, 0)); // greater created_at, though ingested earlier
        assert_eq!(w["b"].1, (1, 0)); // tie: later raw version
        assert_eq!(w["c"].1, (1, 2)); // tie in one commit: later position
    }
}
