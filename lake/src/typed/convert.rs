//! Staging rows into a typed table's rows: the envelope as it is, each payload field into
//! its column, and every value that does not fit its column into `_rescued_data` with a
//! count per field. Fields seen for the first time become columns, typed by what this
//! batch holds ([`crate::typed::infer`]).
//!
//! What fits a column: `boolean` takes booleans; `bigint` whole numbers within 64 bits;
//! `double` any finite number; `string` strings, and numbers and booleans as their JSON
//! text (the widening of `docs/catalog.md`); `json` objects and arrays, as the producer's
//! JSON text without its whitespace, keys in its order. Null fits every column. Anything
//! else is rescued: the row keeps the field's original JSON in `_rescued_data`, and the
//! miss is counted.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::Result;
use crate::schema::{INGESTED_AT, PAYLOAD};
use crate::typed::infer::{EVENT_FIELDS, FieldType, Kind, KindCounts};
use crate::typed::schema::{ENVELOPE, INGESTED_AT_US, RESCUED, TypedSchema};

/// The field a payload that is not a JSON object is rescued under, whole.
pub const NOT_AN_OBJECT: &str = "(payload)";

/// One batch converted.
#[derive(Debug)]
pub struct Converted {
    pub batch: RecordBatch,
    /// Values rescued, per payload key.
    pub rescued: BTreeMap<String, u64>,
    /// The kinds of the values each column was given, per payload key.
    pub kinds: BTreeMap<String, KindCounts>,
}

/// Converts `batch` (staging's [`ENVELOPE`] columns but the two it derives, and
/// `payload`), adding columns to `schema` for fields first seen here.
pub fn convert(schema: &mut TypedSchema, batch: &RecordBatch) -> Result<Converted> {
    let payloads = cast(
        batch
            .column_by_name(PAYLOAD)
            .ok_or_else(|| missing(PAYLOAD))?,
        &DataType::Utf8,
    )?;
    let payloads = payloads.as_string::<i32>();
    let rows: Vec<Option<Fields>> = (0..batch.num_rows())
        .map(|row| {
            (!payloads.is_null(row))
                .then(|| parse(payloads.value(row)))
                .flatten()
        })
        .collect();
    add_new_fields(schema, &rows);

    let index: HashMap<&str, usize> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.as_str(), i))
        .collect();
    let mut columns: Vec<ColumnBuilder> = schema
        .columns
        .iter()
        .map(|c| ColumnBuilder::new(c.field_type, rows.len()))
        .collect();
    let mut rescued_column = StringBuilder::with_capacity(rows.len(), 0);
    let mut rescued: BTreeMap<String, u64> = BTreeMap::new();
    let mut slots: Vec<Option<&RawValue>> = vec![None; columns.len()];
    let mut kinds = vec![KindCounts::default(); columns.len()];
    for (row, fields) in rows.iter().enumerate() {
        slots.iter_mut().for_each(|s| *s = None);
        let mut misses = Misses::default();
        match fields {
            Some(fields) => {
                // A key given twice: the last wins, as in the views' JSON functions.
                for (key, value) in &fields.0 {
                    if let Some(&i) = index.get(key.as_ref()) {
                        slots[i] = Some(value);
                    }
                }
            }
            None if !payloads.is_null(row) => misses.push(NOT_AN_OBJECT, payloads.value(row)),
            None => {}
        }
        let cells = schema.columns.iter().zip(&mut columns).zip(&slots);
        for (((column, builder), slot), counts) in cells.zip(&mut kinds) {
            let fitted = slot.map_or(Ok(()), |value| {
                let kind = Kind::of_raw(value);
                counts.observe(kind);
                builder.push(value, kind)
            });
            match fitted {
                Ok(()) if slot.is_some() => {}
                Ok(()) => builder.push_null(),
                Err(()) => {
                    builder.push_null();
                    misses.push(&column.key, slot.map_or("null", |v| v.get()));
                }
            }
        }
        for key in &misses.keys {
            *rescued.entry(key.clone()).or_default() += 1;
        }
        rescued_column.append_option(misses.json());
    }

    let typed_schema = schema.arrow_schema();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(typed_schema.fields().len());
    for name in ENVELOPE {
        let field = typed_schema.field_with_name(name)?;
        let array = match name {
            INGESTED_AT_US => {
                let at = batch
                    .column_by_name(INGESTED_AT)
                    .ok_or_else(|| missing(INGESTED_AT))?;
                let micros = cast(at, &DataType::Int64)?;
                Arc::new(micros.as_primitive::<Int64Type>().clone()) as ArrayRef
            }
            RESCUED => Arc::new(rescued_column.finish()) as ArrayRef,
            _ => {
                let column = batch.column_by_name(name).ok_or_else(|| missing(name))?;
                cast(column, field.data_type())?
            }
        };
        arrays.push(array);
    }
    arrays.extend(columns.into_iter().map(ColumnBuilder::finish));
    Ok(Converted {
        batch: RecordBatch::try_new(typed_schema, arrays)?,
        rescued,
        kinds: schema
            .columns
            .iter()
            .map(|c| c.key.clone())
            .zip(kinds)
            .collect(),
    })
}

/// Valid JSON `text` without the whitespace between its tokens: copied, not re-serialized
/// (a parse into a map and back costs more than the rest of the conversion).
fn without_whitespace(text: &str) -> Cow<'_, str> {
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\t' | b'\r');
    let bytes = text.as_bytes();
    if !bytes.iter().any(|&b| is_space(b)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i] == b'"' {
            // A string, whole, to its closing quote (an escape's next byte is ASCII).
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
        } else if is_space(bytes[i]) {
            i += 1;
            continue;
        } else {
            while i < bytes.len() && bytes[i] != b'"' && !is_space(bytes[i]) {
                i += 1;
            }
        }
        // Cut after ASCII bytes only, so on character boundaries.
        out.push_str(text.get(start..i).unwrap_or_default());
    }
    Cow::Owned(out)
}

fn missing(column: &str) -> crate::error::LakeError {
    crate::error::LakeError::ContractMismatch {
        table: "typed",
        location: String::new(),
        reason: format!("staging rows without column {column}"),
    }
}

/// Adds a column for every field `rows` hold a value of that is not one yet, typed by the
/// values here, in the order the fields first appear.
fn add_new_fields(schema: &mut TypedSchema, rows: &[Option<Fields>]) {
    let mut order: Vec<&str> = Vec::new();
    let mut kinds: HashMap<&str, KindCounts> = HashMap::new();
    for fields in rows.iter().flatten() {
        for (key, value) in &fields.0 {
            let key = key.as_ref();
            if EVENT_FIELDS.contains(&key) || schema.position(key).is_some() {
                continue;
            }
            let counts = kinds.entry(key).or_insert_with(|| {
                order.push(key);
                KindCounts::default()
            });
            counts.observe(Kind::of_raw(value));
        }
    }
    for key in order {
        let counts = &kinds[key];
        // A field only ever null says nothing of its type: it waits for a value.
        if counts.any_value() {
            schema.add(key, counts.resolve().0);
        }
    }
}

/// A payload's top-level fields, as their JSON text, in order.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

fn parse(payload: &str) -> Option<Fields<'_>> {
    serde_json::from_str(payload).ok()
}

#[derive(serde::Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    fields.push((key, value));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// The fields of one row rescued, and their original JSON.
#[derive(Default)]
struct Misses {
    keys: Vec<String>,
    json: String,
}

impl Misses {
    fn push(&mut self, key: &str, original: &str) {
        self.json.push(if self.json.is_empty() { '{' } else { ',' });
        // A key serialises whatever it holds.
        self.json
            .push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"\"".into()));
        self.json.push(':');
        self.json.push_str(original);
        self.keys.push(key.to_string());
    }

    fn json(mut self) -> Option<String> {
        if self.json.is_empty() {
            return None;
        }
        self.json.push('}');
        Some(self.json)
    }
}

enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Integer(Int64Builder),
    Double(Float64Builder),
    String(StringBuilder),
    Json(StringBuilder),
}

impl ColumnBuilder {
    fn new(field_type: FieldType, rows: usize) -> ColumnBuilder {
        match field_type {
            FieldType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            FieldType::Integer => ColumnBuilder::Integer(Int64Builder::with_capacity(rows)),
            FieldType::Double => ColumnBuilder::Double(Float64Builder::with_capacity(rows)),
            FieldType::String => ColumnBuilder::String(StringBuilder::with_capacity(rows, 0)),
            FieldType::Json => ColumnBuilder::Json(StringBuilder::with_capacity(rows, 0)),
        }
    }

    /// Appends `value` if it fits the column (null fits all); `Err` leaves nothing
    /// appended. `kind` is the value's.
    fn push(&mut self, value: &RawValue, kind: Kind) -> std::result::Result<(), ()> {
        if kind == Kind::Null {
            self.push_null();
            return Ok(());
        }
        let text = value.get().trim();
        match (self, kind) {
            (ColumnBuilder::Boolean(b), Kind::Boolean) => b.append_value(text == "true"),
            (ColumnBuilder::Integer(b), Kind::Integer) => {
                b.append_value(text.parse().map_err(|_| ())?)
            }
            (ColumnBuilder::Double(b), Kind::Integer | Kind::Fraction) => {
                let number: f64 = text.parse().map_err(|_| ())?;
                if !number.is_finite() {
                    return Err(());
                }
                b.append_value(number);
            }
            (ColumnBuilder::String(b), Kind::String) => {
                b.append_value(serde_json::from_str::<Cow<str>>(text).map_err(|_| ())?)
            }
            (ColumnBuilder::String(b), Kind::Boolean | Kind::Integer | Kind::Fraction) => {
                b.append_value(text)
            }
            (ColumnBuilder::Json(b), Kind::Nested) => b.append_value(without_whitespace(text)),
            _ => return Err(()),
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Integer(b) => b.append_null(),
            ColumnBuilder::Double(b) => b.append_null(),
            ColumnBuilder::String(b) | ColumnBuilder::Json(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Boolean(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Integer(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Double(mut b) => Arc::new(b.finish()),
            ColumnBuilder::String(mut b) | ColumnBuilder::Json(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_whitespace;
    use crate::typed::infer::tests::json_value;
    use proptest::prelude::*;

    #[test]
    fn json_text_keeps_its_order_and_strings_and_loses_its_whitespace() {
        for (text, want) in [
            (r#"{"b":1,"a":[1,2]}"#, r#"{"b":1,"a":[1,2]}"#),
            (
                "{ \"b\" : 1 ,\n\t\"a\" : [ 1 , 2 ] }\r\n",
                r#"{"b":1,"a":[1,2]}"#,
            ),
            (
                r#"{"s": "a b \" c\\", "t" : "\\"}"#,
                r#"{"s":"a b \" c\\","t":"\\"}"#,
            ),
            (
                r#"[ "é ü" , {"ключ" : " 値 "} ]"#,
                r#"["é ü",{"ключ":" 値 "}]"#,
            ),
        ] {
            assert_eq!(without_whitespace(text), want, "{text}");
        }
    }

    proptest! {
        /// Against serde's own compact form of the same value: equal, from its pretty form.
        #[test]
        fn pretty_json_compacts_to_serdes_compact_form(value in json_value()) {
            let pretty = serde_json::to_string_pretty(&value)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(without_whitespace(&pretty), value.to_string());
        }
    }
}
