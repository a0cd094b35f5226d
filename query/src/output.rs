//! Query results as a table, CSV or JSON Lines. Timestamps print as ISO 8601 UTC
//! (`2025-11-24T10:20:30Z`, a fraction only when non-zero), dates as `YYYY-MM-DD`, in
//! every format alike.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use deltalake::arrow::util::pretty::pretty_format_batches;

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

pub fn write_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<()> {
    let batches = batches
        .iter()
        .map(for_display)
        .collect::<Result<Vec<_>>>()?;
    match format {
        OutputFormat::Table => {
            writeln!(out, "{}", pretty_format_batches(&batches)?)?;
        }
        OutputFormat::Csv => {
            let mut writer = deltalake::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in &batches {
                writer.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = deltalake::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, deltalake::arrow::json::writer::LineDelimited>(out);
            for b in &batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}

/// Formats a Unix-microsecond instant as ISO 8601 UTC.
pub fn iso_utc(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| micros.to_string())
}

/// Replaces timestamp, date and binary columns with their text, so every format shows
/// them the same way.
fn for_display(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let text: Option<ArrayRef> = match column.data_type() {
            DataType::Timestamp(_, _) => {
                let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let micros = micros.as_primitive::<TimestampMicrosecondType>();
                Some(Arc::new(
                    micros
                        .iter()
                        .map(|v| v.map(iso_utc))
                        .collect::<StringArray>(),
                ))
            }
            DataType::Date32 | DataType::Date64 => Some(cast(column, &DataType::Utf8)?),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                let bytes = cast(column, &DataType::LargeBinary)?;
                let bytes = bytes.as_binary::<i64>();
                Some(Arc::new(
                    bytes
                        .iter()
                        .map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned()))
                        .collect::<StringArray>(),
                ))
            }
            _ => None,
        };
        match text {
            Some(array) => {
                fields.push(Field::new(
                    field.name(),
                    DataType::Utf8,
                    field.is_nullable(),
                ));
                columns.push(array);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    debug_assert!(columns.iter().all(|c| c.len() == batch.num_rows()));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Date32Array, Int64Array, TimestampMicrosecondArray};

    use super::*;

    #[test]
    fn timestamps_are_iso_utc_with_fraction_only_when_non_zero() {
        assert_eq!(iso_utc(1_764_000_030_000_000), "2025-11-24T16:00:30Z");
        assert_eq!(iso_utc(1_764_000_030_500_000), "2025-11-24T16:00:30.500Z");
        assert_eq!(
            iso_utc(1_764_000_030_000_001),
            "2025-11-24T16:00:30.000001Z"
        );
    }

    #[test]
    fn json_lines_print_iso_timestamps_dates_and_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("d", DataType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_764_000_030_000_000), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(Date32Array::from(vec![Some(20_416), None])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        write_batches(&[batch], OutputFormat::Json, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"n\":1,\"t\":\"2025-11-24T16:00:30Z\",\"d\":\"2025-11-24\"}\n\
             {\"n\":null,\"t\":null,\"d\":null}\n"
        );
    }
}
