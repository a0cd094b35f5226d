//! The type of each top-level payload field, inferred from the JSON of its events: one
//! rule for the typed tables ([`crate::typed`]) and the catalog's views. Numbers widen
//! (integer + fractional = double); any other mix of kinds widens to string, and says so.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use serde_json::value::RawValue;

/// The fields every event has: envelope columns already, never payload fields.
pub const EVENT_FIELDS: [&str; 3] = ["event_uuid", "event_name", "created_at"];

/// The type a payload field gets as a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Boolean,
    /// Whole numbers that fit in 64 bits: `bigint`.
    Integer,
    Double,
    String,
    /// Objects and arrays, kept as JSON text.
    Json,
}

impl FieldType {
    pub const ALL: [FieldType; 5] = [
        FieldType::Boolean,
        FieldType::Integer,
        FieldType::Double,
        FieldType::String,
        FieldType::Json,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Integer => "bigint",
            FieldType::Double => "double",
            FieldType::String => "string",
            FieldType::Json => "json",
        }
    }

    pub fn from_name(name: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The JSON kind of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Boolean,
    /// A number that is a 64-bit signed integer.
    Integer,
    /// Any other number (fractional, exponent, or beyond 64 bits).
    Fraction,
    String,
    Nested,
}

impl Kind {
    pub fn of_value(value: &Value) -> Kind {
        match value {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(n) if n.is_i64() => Kind::Integer,
            Value::Number(_) => Kind::Fraction,
            Value::String(_) => Kind::String,
            Value::Array(_) | Value::Object(_) => Kind::Nested,
        }
    }

    /// The kind of a value as its JSON text, without parsing it: what [`Kind::of_value`]
    /// says of the parsed value (a property test holds them together).
    pub fn of_raw(raw: &RawValue) -> Kind {
        let text = raw.get().trim_start();
        match text.as_bytes().first() {
            Some(b'n') => Kind::Null,
            Some(b't' | b'f') => Kind::Boolean,
            Some(b'"') => Kind::String,
            Some(b'{' | b'[') => Kind::Nested,
            // serde_json reads `-0` as the double -0.0, keeping its sign.
            _ if text.trim_end() == "-0" => Kind::Fraction,
            _ if text.trim_end().parse::<i64>().is_ok() => Kind::Integer,
            _ => Kind::Fraction,
        }
    }
}

/// How often a field was seen as each JSON kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindCounts {
    pub nulls: u64,
    pub booleans: u64,
    pub integers: u64,
    pub fractions: u64,
    pub strings: u64,
    pub nested: u64,
}

impl KindCounts {
    pub fn observe(&mut self, kind: Kind) {
        match kind {
            Kind::Null => self.nulls += 1,
            Kind::Boolean => self.booleans += 1,
            Kind::Integer => self.integers += 1,
            Kind::Fraction => self.fractions += 1,
            Kind::String => self.strings += 1,
            Kind::Nested => self.nested += 1,
        }
    }

    /// Adds `other`'s counts.
    pub fn absorb(&mut self, other: &KindCounts) {
        self.nulls += other.nulls;
        self.booleans += other.booleans;
        self.integers += other.integers;
        self.fractions += other.fractions;
        self.strings += other.strings;
        self.nested += other.nested;
    }

    /// Whether a value other than null was seen.
    pub fn any_value(&self) -> bool {
        self.booleans + self.integers + self.fractions + self.strings + self.nested > 0
    }

    /// The field's type (string when kinds conflicted), and whether they did.
    pub fn resolve(&self) -> (FieldType, bool) {
        let kinds = [
            (self.booleans, FieldType::Boolean),
            (self.integers + self.fractions, FieldType::Double),
            (self.strings, FieldType::String),
            (self.nested, FieldType::Json),
        ];
        let mut seen = kinds.iter().filter(|(n, _)| *n > 0);
        match (seen.next(), seen.next()) {
            (None, _) => (FieldType::String, false),
            (Some((_, FieldType::Double)), None) if self.fractions == 0 => {
                (FieldType::Integer, false)
            }
            (Some((_, kind)), None) => (*kind, false),
            (Some(_), Some(_)) => (FieldType::String, true),
        }
    }
}

impl fmt::Display for KindCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.booleans, "boolean"),
            (self.integers, "integer"),
            (self.fractions, "fractional number"),
            (self.strings, "string"),
            (self.nested, "object/array"),
        ];
        let seen: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        write!(f, "{}", seen.join(", "))
    }
}

/// The fields of one event type, by name (sorted, so generated SQL is stable).
#[derive(Debug, Clone, Default)]
pub struct TypeShape {
    pub events: u64,
    pub fields: BTreeMap<String, KindCounts>,
}

/// Collects shapes per event type.
#[derive(Debug, Default)]
pub struct Inference {
    shapes: BTreeMap<String, TypeShape>,
    /// Payloads that were not JSON objects (cannot happen for rows ingest wrote).
    pub unreadable: u64,
}

impl Inference {
    /// Events of a type seen so far: lets a scan stop parsing a type once sampled enough.
    pub fn events_of(&self, event_type: &str) -> u64 {
        self.shapes.get(event_type).map_or(0, |s| s.events)
    }

    /// Events observed, all types together.
    pub fn events(&self) -> u64 {
        self.shapes.values().map(|s| s.events).sum()
    }

    pub fn observe(&mut self, event_type: &str, payload: &str) {
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(payload) else {
            self.unreadable += 1;
            return;
        };
        let shape = self.shapes.entry(event_type.to_string()).or_default();
        shape.events += 1;
        for (name, value) in &object {
            if EVENT_FIELDS.contains(&name.as_str()) {
                continue;
            }
            shape
                .fields
                .entry(name.clone())
                .or_default()
                .observe(Kind::of_value(value));
        }
    }

    pub fn into_shapes(self) -> BTreeMap<String, TypeShape> {
        self.shapes
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resolve(payloads: &[&str], field: &str) -> (FieldType, bool) {
        let mut inference = Inference::default();
        for p in payloads {
            inference.observe("t", p);
        }
        inference.into_shapes()["t"].fields[field].resolve()
    }

    #[test]
    fn kinds_resolve_and_widen() {
        assert_eq!(
            resolve(&[r#"{"a":1}"#, r#"{"a":2}"#], "a"),
            (FieldType::Integer, false)
        );
        assert_eq!(
            resolve(&[r#"{"a":1}"#, r#"{"a":2.5}"#], "a"),
            (FieldType::Double, false)
        );
        assert_eq!(
            resolve(&[r#"{"a":true}"#, r#"{"a":null}"#], "a"),
            (FieldType::Boolean, false)
        );
        assert_eq!(
            resolve(&[r#"{"a":{"b":1}}"#, r#"{"a":[1]}"#], "a"),
            (FieldType::Json, false)
        );
        assert_eq!(
            resolve(&[r#"{"a":1}"#, r#"{"a":"1"}"#], "a"),
            (FieldType::String, true)
        );
        assert_eq!(resolve(&[r#"{"a":null}"#], "a"), (FieldType::String, false));
        // Beyond i64: a number, but not a bigint.
        assert_eq!(
            resolve(&[r#"{"a":18446744073709551615}"#], "a"),
            (FieldType::Double, false)
        );
    }

    #[test]
    fn event_fields_are_not_payload_fields_and_non_objects_are_counted() {
        let mut inference = Inference::default();
        inference.observe(
            "t",
            r#"{"event_uuid":"u","event_name":"t:x","created_at":1,"k":1}"#,
        );
        inference.observe("t", "[1,2]");
        assert_eq!(inference.unreadable, 1);
        let shapes = inference.into_shapes();
        assert_eq!(shapes["t"].fields.keys().collect::<Vec<_>>(), ["k"]);
        assert_eq!(shapes["t"].events, 1);
    }

    /// Any JSON value, nested a few levels.
    pub(crate) fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(".{0,4}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The typed tables classify values by their text, the views' inference by the
        /// parsed value: they must agree on every value.
        #[test]
        fn raw_and_parsed_kinds_agree(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            };
            let text = text.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let raw: Box<RawValue> = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let parsed: Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(Kind::of_raw(&raw), Kind::of_value(&parsed), "{}", text);
        }
    }

    #[test]
    fn number_texts_classify_as_serde_parses_them() {
        for (text, kind) in [
            ("0", Kind::Integer),
            ("-0", Kind::Fraction),
            ("9223372036854775807", Kind::Integer),
            ("9223372036854775808", Kind::Fraction),
            ("-9223372036854775809", Kind::Fraction),
            ("1.0", Kind::Fraction),
            ("1e3", Kind::Fraction),
            ("1E400", Kind::Fraction),
        ] {
            let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
            assert_eq!(Kind::of_raw(&raw), kind, "{text}");
            if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                assert_eq!(Kind::of_value(&parsed), kind, "{text}");
            }
        }
    }
}
