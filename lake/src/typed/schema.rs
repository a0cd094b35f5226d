//! A typed table's columns: the envelope every event has, the rescued values, then one
//! column per top-level payload field, in the order the fields were first seen. Which
//! field a column holds and as what type is in the column's Delta metadata, so the
//! mapping survives every reader and writer (`docs/catalog.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use deltalake::kernel::{DataType as DeltaType, MetadataValue, StructField, StructType};

use crate::error::{LakeError, Result};
use crate::schema::{
    CREATED_AT, CREATED_DATETIME, EVENT_DATE, EVENT_NAME, EVENT_SUBTYPE, EVENT_TYPE, EVENT_UUID,
    INGESTED_AT, PAYLOAD, SUBJECT_ID, Table,
};
use crate::typed::infer::{FieldType, KindCounts};
use crate::typed::names::{sql_name, unique};

/// Values that did not fit their column, per row: a JSON object of field → original JSON.
pub const RESCUED: &str = "_rescued_data";
/// `ingested_at` in microseconds since the epoch: Athena reads timestamps at milliseconds,
/// so this is the column to order by at microseconds.
pub const INGESTED_AT_US: &str = "ingested_at_us";
/// Column metadata: the payload key the column holds.
pub const FIELD_KEY: &str = "lakehouse.field";
/// Column metadata: the field's type ([`FieldType::name`]; `json` is JSON text).
pub const FIELD_TYPE: &str = "lakehouse.type";

/// The envelope: columns of `staging` (the date is the one partition), the exact ingest
/// instant and the rescued values.
pub const ENVELOPE: [&str; 10] = [
    EVENT_UUID,
    EVENT_NAME,
    EVENT_SUBTYPE,
    CREATED_AT,
    CREATED_DATETIME,
    EVENT_DATE,
    INGESTED_AT,
    INGESTED_AT_US,
    SUBJECT_ID,
    RESCUED,
];

/// The columns of `staging` a typed table's rows are made of: the envelope but what it
/// derives, and the payload.
pub fn staging_columns() -> Vec<&'static str> {
    ENVELOPE
        .iter()
        .copied()
        .filter(|c| ![INGESTED_AT_US, RESCUED].contains(c))
        .chain([PAYLOAD])
        .collect()
}

/// Names no payload field's column takes: the envelope and the other columns of staging.
/// The generated views reserve the same, so a field's column is named alike in both.
pub fn reserved_columns() -> BTreeSet<String> {
    ENVELOPE
        .iter()
        .chain([EVENT_TYPE, PAYLOAD].iter())
        .map(|c| c.to_string())
        .collect()
}

/// The column a new field gets: its SQL name, `payload_<name>` where that is reserved,
/// made unique among `taken` (which it joins).
pub fn column_for(key: &str, reserved: &BTreeSet<String>, taken: &mut BTreeSet<String>) -> String {
    let wanted = sql_name(key);
    if reserved.contains(&wanted) {
        unique(taken, format!("payload_{wanted}"))
    } else {
        unique(taken, wanted)
    }
}

/// One payload field as a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedColumn {
    pub key: String,
    pub column: String,
    pub field_type: FieldType,
}

impl TypedColumn {
    fn delta_type(&self) -> DeltaType {
        match self.field_type {
            FieldType::Boolean => DeltaType::BOOLEAN,
            FieldType::Integer => DeltaType::LONG,
            FieldType::Double => DeltaType::DOUBLE,
            FieldType::String | FieldType::Json => DeltaType::STRING,
        }
    }

    fn arrow_type(&self) -> ArrowType {
        match self.field_type {
            FieldType::Boolean => ArrowType::Boolean,
            FieldType::Integer => ArrowType::Int64,
            FieldType::Double => ArrowType::Float64,
            FieldType::String | FieldType::Json => ArrowType::Utf8,
        }
    }

    pub fn delta_field(&self) -> StructField {
        StructField::new(&self.column, self.delta_type(), true).with_metadata([
            (FIELD_KEY, MetadataValue::String(self.key.clone())),
            (
                FIELD_TYPE,
                MetadataValue::String(self.field_type.name().to_string()),
            ),
        ])
    }
}

/// A typed table's payload columns, in table order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypedSchema {
    pub columns: Vec<TypedColumn>,
}

impl TypedSchema {
    /// The payload columns of a typed table's Delta schema.
    pub fn from_delta(schema: &StructType) -> Result<TypedSchema> {
        let mut columns = Vec::new();
        for field in schema.fields() {
            if ENVELOPE.contains(&field.name().as_str()) {
                continue;
            }
            let text = |key: &str| match field.metadata().get(key) {
                Some(MetadataValue::String(s)) => Some(s.clone()),
                _ => None,
            };
            let (Some(key), Some(field_type)) = (
                text(FIELD_KEY),
                text(FIELD_TYPE).and_then(|t| FieldType::from_name(&t)),
            ) else {
                return Err(LakeError::ContractMismatch {
                    table: "typed",
                    location: String::new(),
                    reason: format!(
                        "column {} names no payload field ({FIELD_KEY}, {FIELD_TYPE})",
                        field.name()
                    ),
                });
            };
            columns.push(TypedColumn {
                key,
                column: field.name().clone(),
                field_type,
            });
        }
        Ok(TypedSchema { columns })
    }

    pub fn position(&self, key: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.key == key)
    }

    /// Adds a column for field `key` (not yet a column) and returns it.
    pub fn add(&mut self, key: &str, field_type: FieldType) -> &TypedColumn {
        let reserved = reserved_columns();
        let mut taken: BTreeSet<String> = reserved.clone();
        taken.extend(self.columns.iter().map(|c| c.column.clone()));
        let column = column_for(key, &reserved, &mut taken);
        self.columns.push(TypedColumn {
            key: key.to_string(),
            column,
            field_type,
        });
        &self.columns[self.columns.len() - 1]
    }

    /// The same columns, each typed by the kinds of all the values `kinds` counted for
    /// its field, where that differs from the type its first values gave it.
    pub fn retyped(&self, kinds: &BTreeMap<String, KindCounts>) -> Option<TypedSchema> {
        let mut columns = self.columns.clone();
        let mut changed = false;
        for column in &mut columns {
            let Some(counts) = kinds.get(&column.key).filter(|k| k.any_value()) else {
                continue;
            };
            let resolved = counts.resolve().0;
            changed |= resolved != column.field_type;
            column.field_type = resolved;
        }
        changed.then_some(TypedSchema { columns })
    }

    /// The Delta schema: envelope, then the payload columns.
    pub fn delta_fields(&self) -> Vec<StructField> {
        let staging = Table::Staging.delta_columns();
        ENVELOPE
            .iter()
            .map(|name| {
                staging
                    .iter()
                    .find(|f| f.name() == name)
                    .map(|f| StructField::new(f.name(), f.data_type().clone(), true))
                    .unwrap_or_else(|| match *name {
                        INGESTED_AT_US => StructField::new(*name, DeltaType::LONG, true),
                        _ => StructField::new(*name, DeltaType::STRING, true),
                    })
            })
            .chain(self.columns.iter().map(TypedColumn::delta_field))
            .collect()
    }

    /// The Arrow schema of the table's rows (the partition column included).
    pub fn arrow_schema(&self) -> SchemaRef {
        let staging = Table::Staging.arrow_schema();
        let envelope = ENVELOPE
            .iter()
            .map(|name| match staging.field_with_name(name) {
                Ok(f) => f.clone().with_nullable(true),
                Err(_) if *name == INGESTED_AT_US => Field::new(*name, ArrowType::Int64, true),
                Err(_) => Field::new(*name, ArrowType::Utf8, true),
            });
        let payload = self
            .columns
            .iter()
            .map(|c| Field::new(&c.column, c.arrow_type(), true));
        Arc::new(Schema::new(envelope.chain(payload).collect::<Vec<_>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_through_delta_metadata() {
        let mut schema = TypedSchema::default();
        schema.add("Amount", FieldType::Double);
        schema.add("amount", FieldType::Integer);
        schema.add("event_date", FieldType::String);
        schema.add("tags", FieldType::Json);
        let names: Vec<&str> = schema.columns.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(names, ["amount", "amount_2", "payload_event_date", "tags"]);
        let delta = StructType::try_new(schema.delta_fields()).unwrap();
        assert_eq!(TypedSchema::from_delta(&delta).unwrap(), schema);
        let arrow = schema.arrow_schema();
        assert_eq!(arrow.fields().len(), ENVELOPE.len() + 4);
        assert_eq!(
            arrow.field_with_name("amount").unwrap().data_type(),
            &ArrowType::Float64
        );
    }

    #[test]
    fn a_column_without_its_field_is_refused() {
        let mut fields = TypedSchema::default().delta_fields();
        fields.push(StructField::new("stray", DeltaType::STRING, true));
        let delta = StructType::try_new(fields).unwrap();
        assert!(TypedSchema::from_delta(&delta).is_err());
    }
}
