//! Infers the top-level payload fields of each event type and their types from the JSON
//! of its events. Numbers widen (integer + fractional = double); any other mix of kinds
//! widens to string, and says so.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// The fields every event has: columns of `staging` already, never payload fields.
const EVENT_FIELDS: [&str; 3] = ["event_uuid", "event_name", "created_at"];

/// The type a payload field gets in its view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Integer => "bigint",
            FieldType::Double => "double",
            FieldType::String => "string",
            FieldType::Json => "json",
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
    fn observe(&mut self, value: &Value) {
        match value {
            Value::Null => self.nulls += 1,
            Value::Bool(_) => self.booleans += 1,
            Value::Number(n) if n.is_i64() => self.integers += 1,
            Value::Number(_) => self.fractions += 1,
            Value::String(_) => self.strings += 1,
            Value::Array(_) | Value::Object(_) => self.nested += 1,
        }
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
            shape.fields.entry(name.clone()).or_default().observe(value);
        }
    }

    pub fn into_shapes(self) -> BTreeMap<String, TypeShape> {
        self.shapes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
