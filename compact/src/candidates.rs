//! Copies an engine found: the rows of `sql/queries/duplicated_events.sql` (every copy of
//! an `event_uuid` staged more than once, with its partition), from DataFusion's batches or
//! from the CSV Athena writes, handed to the sweep so it reads only the partitions named.

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::Arc;

use deltalake::Path;
use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::csv::ReaderBuilder;
use deltalake::arrow::csv::reader::Format;
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::kernel::Add;
use deltalake::logstore::object_store::ObjectStoreExt;
use lakehouse_lake::Lake;
use lakehouse_lake::keys::Key;
use lakehouse_lake::schema::{EVENT_DATE, EVENT_TYPE, EVENT_UUID};
use url::Url;

use crate::error::{CompactError, Result};

/// The columns the finding query returns, in its order.
pub const COLUMNS: [&str; 3] = [EVENT_UUID, EVENT_DATE, EVENT_TYPE];

/// The copies found, and the staging version the search read at least.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// A staging version the finding query read, or an earlier one: what the sweep records
    /// as swept (every pair of copies both staged then is in the list, or was resolved).
    pub as_of: u64,
    /// Rows of the result (copies named).
    pub rows: u64,
    keys: HashSet<Key>,
    partitions: HashSet<(String, String)>,
}

impl Candidates {
    /// An empty list: the search found no copies.
    pub fn none(as_of: u64) -> Candidates {
        Candidates {
            as_of,
            ..Candidates::default()
        }
    }

    /// Copies found another way (the key index): `rows` rows staged since the last sweep,
    /// their keys, and every partition a row of theirs may be in.
    pub(crate) fn of(
        as_of: u64,
        rows: u64,
        keys: HashSet<Key>,
        partitions: HashSet<(String, String)>,
    ) -> Candidates {
        Candidates {
            as_of,
            rows,
            keys,
            partitions,
        }
    }

    /// The query's result as batches (DataFusion's): columns by name, `event_date` as a
    /// date or as text.
    pub fn from_batches(batches: &[RecordBatch], as_of: u64) -> Result<Candidates> {
        let mut found = Candidates::none(as_of);
        for batch in batches {
            let column = |name: &str| -> Result<Arc<dyn Array>> {
                let column = batch.column_by_name(name).ok_or_else(|| {
                    invalid(format!(
                        "no column {name} (expected columns: {})",
                        COLUMNS.join(", ")
                    ))
                })?;
                Ok(cast(column, &DataType::Utf8)?)
            };
            let (uuids, dates, types) = (
                column(EVENT_UUID)?,
                column(EVENT_DATE)?,
                column(EVENT_TYPE)?,
            );
            let (uuids, dates, types) = (
                uuids.as_string::<i32>(),
                dates.as_string::<i32>(),
                types.as_string::<i32>(),
            );
            for row in 0..batch.num_rows() {
                if uuids.is_null(row) || dates.is_null(row) || types.is_null(row) {
                    return Err(invalid(format!(
                        "row {} has an empty field: every copy names its uuid and partition",
                        found.rows + 1
                    )));
                }
                found.rows += 1;
                found.keys.insert(Key::of(uuids.value(row)));
                found
                    .partitions
                    .insert((dates.value(row).to_string(), types.value(row).to_string()));
            }
        }
        Ok(found)
    }

    /// The query's result as CSV with a header line (as Athena writes it to S3, or
    /// `lakehouse query --format csv`): the header must name the three columns.
    pub fn from_csv(bytes: &[u8], as_of: u64) -> Result<Candidates> {
        if bytes.is_empty() {
            return Err(invalid("the file is empty (not even a header line)".into()));
        }
        let (header, _) = Format::default()
            .with_header(true)
            .infer_schema(Cursor::new(bytes), Some(0))?;
        let names: Vec<&str> = header.fields().iter().map(|f| f.name().as_str()).collect();
        if names != COLUMNS {
            return Err(invalid(format!(
                "the header names {names:?}; expected {}",
                COLUMNS.join(",")
            )));
        }
        let schema = Arc::new(Schema::new(
            COLUMNS
                .map(|name| Field::new(name, DataType::Utf8, true))
                .to_vec(),
        ));
        let reader = ReaderBuilder::new(schema)
            .with_header(true)
            .build(Cursor::new(bytes))?;
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        Candidates::from_batches(&batches, as_of)
    }

    /// The CSV an engine wrote to `s3://bucket/key` (Athena's query result), read with the
    /// lake's storage settings.
    pub async fn from_s3(lake: &Lake, spec: &str, as_of: u64) -> Result<Candidates> {
        let at = |reason: String| invalid(format!("{spec}: {reason}"));
        let (bucket, key) = spec
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
            .ok_or_else(|| at("expected s3://bucket/key".into()))?;
        let root = Url::parse(&format!("s3://{bucket}/")).map_err(|e| at(e.to_string()))?;
        let store = lake.store_for(&root)?;
        let bytes = async { store.get(&Path::from(key)).await?.bytes().await }
            .await
            .map_err(|e| at(e.to_string()))?;
        Candidates::from_csv(&bytes, as_of)
    }

    /// Distinct uuids named (their keys).
    pub fn events(&self) -> u64 {
        self.keys.len() as u64
    }

    pub(crate) fn holds(&self, key: &Key) -> bool {
        self.keys.contains(key)
    }

    /// Whether a staging file lies in a partition some copy was found in.
    pub(crate) fn names_partition_of(&self, file: &Add) -> bool {
        let value = |name: &str| file.partition_values.get(name).cloned().flatten();
        match (value(EVENT_DATE), value(EVENT_TYPE)) {
            (Some(date), Some(event_type)) => self.partitions.contains(&(date, event_type)),
            _ => false,
        }
    }
}

fn invalid(reason: String) -> CompactError {
    CompactError::Candidates(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_csv_with_quotes_commas_and_odd_unicode_is_read_exactly() {
        let csv = "\"event_uuid\",\"event_date\",\"event_type\"\n\
                   \"a,\"\"b\"\"\",\"2026-12-06\",\"pay\u{e9}\"\n\
                   \"a,\"\"b\"\"\",\"2025-11-01\",\"x\"\n";
        let found = Candidates::from_csv(csv.as_bytes(), 7).expect("csv");
        assert_eq!((found.rows, found.events(), found.as_of), (2, 1, 7));
        assert!(found.holds(&Key::of("a,\"b\"")));
        assert!(
            found
                .partitions
                .contains(&("2026-12-06".into(), "pay\u{e9}".into()))
        );
    }

    #[test]
    fn a_header_only_csv_names_nothing_and_a_wrong_one_is_refused() {
        let empty = Candidates::from_csv(b"event_uuid,event_date,event_type\n", 3).expect("csv");
        assert_eq!((empty.rows, empty.events()), (0, 0));
        for bad in [
            &b""[..],
            b"uuid,date,type\nu,2026-01-01,x\n",
            b"event_uuid,event_date\nu,2026-01-01\n",
            b"event_uuid,event_date,event_type\nu,,x\n",
        ] {
            let e = Candidates::from_csv(bad, 0).expect_err("refused");
            assert!(
                matches!(e, CompactError::Candidates(_) | CompactError::Arrow(_)),
                "{e}"
            );
        }
    }
}
