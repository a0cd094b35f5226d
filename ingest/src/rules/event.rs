//! The event rules: what makes a record a valid event, and what we derive from it.
//!
//! A valid event is a UTF-8 JSON object with `event_uuid` (non-empty string), `event_name`
//! (string whose first `:`-part is non-empty) and `created_at` (a JSON number of Unix
//! seconds in `[0, 253402300799]`, integer or fractional). Anything else is rejected with a
//! [`Rejection`] saying why; the caller quarantines it byte for byte.

use std::borrow::Cow;
use std::fmt;

use lakehouse_lake::schema::{MAX_PARTITION_VALUE_PATH_BYTES, partition_value_path_bytes};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Largest accepted `created_at`: 9999-12-31T23:59:59Z, the last second Athena and Spark
/// can represent as a date.
pub const MAX_CREATED_AT: i64 = 253_402_300_799;
pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// Longest record taken by default: 1 MiB, the most one Kinesis record can carry, so a
/// file and the stream follow the same rule. A longer record is quarantined as too large
/// with its first [`QUARANTINED_PREFIX_BYTES`] bytes, and is never read into memory whole.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// The largest maximum one may configure: an Arrow string column holds 2 GiB per batch.
pub const MAX_RECORD_BYTES_LIMIT: usize = 1 << 30;
/// What quarantine keeps of a record too large to take.
pub const QUARANTINED_PREFIX_BYTES: usize = 4096;

/// The reason kind of [`too_large`] records.
pub const TOO_LARGE_KIND: &str = "record too large";

/// The quarantine reason of a record longer than `max` bytes.
pub fn too_large(max: usize) -> String {
    format!(
        "record too large: more than {max} bytes (the first {QUARANTINED_PREFIX_BYTES} are kept)"
    )
}

/// A valid event, borrowing from the record it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    pub event_uuid: Cow<'a, str>,
    pub event_name: Cow<'a, str>,
    /// Unix seconds, the floor of the input number.
    pub created_at: i64,
    /// Unix microseconds, the input number truncated to microsecond precision.
    pub created_micros: i64,
    /// The record's text: the complete original object, kept as received.
    pub payload: &'a str,
}

impl Event<'_> {
    /// First `:`-part of the name (`payment:order:completed` → `payment`); never empty.
    pub fn event_type(&self) -> &str {
        event_type_of(&self.event_name)
    }

    /// Second `:`-part of the name (`payment:order:completed` → `order`); `None` when the
    /// name has no second part or it is empty.
    pub fn event_subtype(&self) -> Option<&str> {
        event_subtype_of(&self.event_name)
    }

    /// Days since the Unix epoch of `created_at`, in UTC: the `event_date` partition.
    pub fn event_date_days(&self) -> i32 {
        event_date_of(self.created_at)
    }
}

/// A valid event apart from the record it was parsed from, to be sent to another thread
/// with that record: its strings are spans of the record where they can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedEvent {
    event_uuid: DetachedText,
    event_name: DetachedText,
    created_micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DetachedText {
    Span(usize, usize),
    Owned(String),
}

impl DetachedText {
    /// A span where `text` lies within `payload` (borrowed from it), else a copy.
    fn of(text: &str, payload: &str) -> DetachedText {
        match offset_within(text, payload) {
            Some(at) => DetachedText::Span(at, text.len()),
            None => DetachedText::Owned(text.to_string()),
        }
    }

    fn on<'a>(&'a self, payload: &'a str) -> Option<Cow<'a, str>> {
        match self {
            DetachedText::Span(start, len) => payload.get(*start..start + len).map(Cow::Borrowed),
            DetachedText::Owned(s) => Some(Cow::Borrowed(s)),
        }
    }
}

impl Event<'_> {
    pub fn detach(&self) -> DetachedEvent {
        DetachedEvent {
            event_uuid: DetachedText::of(&self.event_uuid, self.payload),
            event_name: DetachedText::of(&self.event_name, self.payload),
            created_micros: self.created_micros,
        }
    }
}

impl DetachedEvent {
    /// The event again, on the record it was detached from (`None` for any other text).
    pub fn attach<'a>(&'a self, payload: &'a str) -> Option<Event<'a>> {
        Some(Event {
            event_uuid: self.event_uuid.on(payload)?,
            event_name: self.event_name.on(payload)?,
            created_at: self.created_micros.div_euclid(MICROS_PER_SECOND),
            created_micros: self.created_micros,
            payload,
        })
    }
}

/// Where `text` starts within `payload` when it is a slice of it (an event's field borrowed
/// from its record rather than unescaped into a copy).
pub fn offset_within(text: &str, payload: &str) -> Option<usize> {
    let (base, at) = (payload.as_ptr() as usize, text.as_ptr() as usize);
    (at >= base && at + text.len() <= base + payload.len()).then(|| at - base)
}

/// An event name's type: its first `:`-part.
pub fn event_type_of(event_name: &str) -> &str {
    event_name.split(':').next().unwrap_or_default()
}

/// An event name's subtype: its second `:`-part, unless missing or empty.
pub fn event_subtype_of(event_name: &str) -> Option<&str> {
    event_name.split(':').nth(1).filter(|s| !s.is_empty())
}

/// The `event_date` of a `created_at` (Unix seconds): days since the epoch, in UTC.
pub fn event_date_of(created_at: i64) -> i32 {
    // created_at ≤ MAX_CREATED_AT, so the day count fits comfortably in i32.
    created_at.div_euclid(86_400) as i32
}

/// Why a record is not a valid event. Its `Display` is the `error` stored in quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Empty,
    InvalidUtf8 {
        valid_up_to: usize,
    },
    InvalidJson(String),
    NotAnObject(&'static str),
    DuplicateField(&'static str),
    MissingField(&'static str),
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    EmptyUuid,
    EmptyEventType,
    EventTypeTooLong {
        path_bytes: usize,
    },
    LoneSurrogate {
        at: usize,
    },
    CreatedAtOutOfRange(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Empty => write!(f, "empty record"),
            Rejection::InvalidUtf8 { valid_up_to } => {
                write!(f, "invalid UTF-8 after byte {valid_up_to}")
            }
            Rejection::InvalidJson(e) => write!(f, "invalid JSON: {e}"),
            Rejection::NotAnObject(kind) => write!(f, "not a JSON object: got {kind}"),
            Rejection::DuplicateField(name) => write!(f, "duplicate field `{name}`"),
            Rejection::MissingField(name) => write!(f, "missing field `{name}`"),
            Rejection::WrongType { field, expected } => {
                write!(f, "field `{field}` must be {expected}")
            }
            Rejection::EmptyUuid => write!(f, "field `event_uuid` is empty"),
            Rejection::EmptyEventType => {
                write!(f, "field `event_name` has an empty first part (event_type)")
            }
            Rejection::EventTypeTooLong { path_bytes } => write!(
                f,
                "field `event_name` has a first part (event_type) too long to be a partition: \
                 {path_bytes} bytes once escaped, more than {MAX_PARTITION_VALUE_PATH_BYTES}"
            ),
            Rejection::LoneSurrogate { at } => write!(
                f,
                "invalid JSON: unpaired UTF-16 surrogate escape at byte {at} (not Unicode text)"
            ),
            Rejection::CreatedAtOutOfRange(v) => write!(
                f,
                "field `created_at` {v} is outside [0, {MAX_CREATED_AT}] Unix seconds"
            ),
        }
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// The reason without its particulars (byte offsets, parser messages, values), which
    /// quarantine is counted by: a few dozen kinds at most, whatever the input.
    pub fn kind(&self) -> String {
        match self {
            Rejection::Empty => "empty record".into(),
            Rejection::InvalidUtf8 { .. } => "invalid UTF-8".into(),
            Rejection::InvalidJson(_) | Rejection::LoneSurrogate { .. } => "invalid JSON".into(),
            Rejection::NotAnObject(_) => "not a JSON object".into(),
            Rejection::DuplicateField(name) => format!("duplicate field `{name}`"),
            Rejection::MissingField(name) => format!("missing field `{name}`"),
            Rejection::WrongType { field, .. } => format!("field `{field}` of the wrong type"),
            Rejection::EmptyUuid => "field `event_uuid` is empty".into(),
            Rejection::EmptyEventType => "event_type is empty".into(),
            Rejection::EventTypeTooLong { .. } => "event_type too long".into(),
            Rejection::CreatedAtOutOfRange(_) => "field `created_at` out of range".into(),
        }
    }
}

/// Applies the event rules to one record (a JSON Lines line without its line end, or one
/// Kinesis user record).
pub fn parse_event(bytes: &[u8]) -> Result<Event<'_>, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|e| Rejection::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(Rejection::Empty);
    }
    if !trimmed.starts_with('{') {
        // Valid JSON that is not an object is a different mistake from broken JSON.
        return Err(match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => Rejection::NotAnObject(json_kind(&v)),
            Err(e) => Rejection::InvalidJson(e.to_string()),
        });
    }
    if let Some(at) = lone_surrogate(text) {
        return Err(Rejection::LoneSurrogate { at });
    }
    let head = parse_head(text)?;
    let event_uuid = string_field("event_uuid", head.event_uuid)?;
    if event_uuid.is_empty() {
        return Err(Rejection::EmptyUuid);
    }
    let event_name = string_field("event_name", head.event_name)?;
    let event_type = event_type_of(&event_name);
    if event_type.is_empty() {
        return Err(Rejection::EmptyEventType);
    }
    // Escaping at most triples a byte, so only a long type needs counting.
    if event_type.len() * 3 > MAX_PARTITION_VALUE_PATH_BYTES {
        let path_bytes = partition_value_path_bytes(event_type);
        if path_bytes > MAX_PARTITION_VALUE_PATH_BYTES {
            return Err(Rejection::EventTypeTooLong { path_bytes });
        }
    }
    let created = head
        .created_at
        .ok_or(Rejection::MissingField("created_at"))?;
    let created_micros = parse_unix_micros(created.get())?;
    Ok(Event {
        event_uuid,
        event_name,
        created_at: created_micros.div_euclid(MICROS_PER_SECOND),
        created_micros,
        payload: text,
    })
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The three fields we need, still as raw JSON; every other field is skipped (but its
/// syntax is still checked by the parser).
#[derive(Default)]
struct Head<'a> {
    event_uuid: Option<&'a RawValue>,
    event_name: Option<&'a RawValue>,
    created_at: Option<&'a RawValue>,
}

/// Byte offset of the first `\uXXXX` escape, in any string of `text` (key or value, at any
/// depth), that is half a surrogate pair. Such a string is not Unicode text: serde_json
/// refuses it where it decodes a string and skips it where it does not, so one rule here
/// keeps every position alike.
fn lone_surrogate(text: &str) -> Option<usize> {
    if !text.contains("\\u") {
        return None;
    }
    let bytes = text.as_bytes();
    let hex_at = |i: usize| -> Option<u32> {
        let digits = bytes.get(i..i + 4)?;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (false, b'"') => in_string = true,
            (true, b'"') => in_string = false,
            (true, b'\\') if bytes.get(i + 1) == Some(&b'u') => {
                let unit = hex_at(i + 2)?;
                match unit {
                    0xD800..=0xDBFF => {
                        let paired = bytes.get(i + 6..i + 8) == Some(b"\\u".as_slice())
                            && hex_at(i + 8).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                        if !paired {
                            return Some(i);
                        }
                        i += 12;
                        continue;
                    }
                    0xDC00..=0xDFFF => return Some(i),
                    _ => {
                        i += 6;
                        continue;
                    }
                }
            }
            (true, b'\\') => i += 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_head(text: &str) -> Result<Head<'_>, Rejection> {
    let mut de = serde_json::Deserializer::from_str(text);
    let head = (&mut de).deserialize_map(HeadVisitor).map_err(|e| {
        // Our own duplicate-field error travels through serde as a custom message.
        let msg = e.to_string();
        match ["event_uuid", "event_name", "created_at"]
            .into_iter()
            .find(|f| msg.starts_with(&format!("duplicate field `{f}`")))
        {
            Some(field) => Rejection::DuplicateField(field),
            None => Rejection::InvalidJson(msg),
        }
    })?;
    de.end()
        .map_err(|e| Rejection::InvalidJson(e.to_string()))?;
    Ok(head)
}

struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head<'de>, A::Error> {
        let mut head = Head::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let (slot, name) = match key.as_ref() {
                "event_uuid" => (&mut head.event_uuid, "event_uuid"),
                "event_name" => (&mut head.event_name, "event_name"),
                "created_at" => (&mut head.created_at, "created_at"),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom(format_args!("duplicate field `{name}`")));
            }
            *slot = Some(map.next_value::<&'de RawValue>()?);
        }
        Ok(head)
    }
}

fn string_field<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<Cow<'a, str>, Rejection> {
    let raw = raw.ok_or(Rejection::MissingField(field))?;
    let wrong_type = Rejection::WrongType {
        field,
        expected: "a string",
    };
    if !raw.get().starts_with('"') {
        return Err(wrong_type);
    }
    // Borrow when the string has no escapes; unescape into an owned string otherwise.
    match serde_json::from_str::<&'a str>(raw.get()) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .map(Cow::Owned)
            .map_err(|_| wrong_type),
    }
}

/// Parses the text of a JSON number as Unix seconds and returns Unix microseconds, exactly
/// (no float rounding): `1700000000.1234567` → `1700000000123456`.
fn parse_unix_micros(text: &str) -> Result<i64, Rejection> {
    let wrong_type = || Rejection::WrongType {
        field: "created_at",
        expected: "a number of Unix seconds",
    };
    let out_of_range = || Rejection::CreatedAtOutOfRange(text.to_string());
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(wrong_type());
    }
    // RawValue guarantees JSON number syntax: int [. frac] [e|E [+|-] exp].
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()),
        None => (rest, Some(0)),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0); // any spelling of zero, including -0.0
    }
    if negative {
        return Err(out_of_range());
    }
    // value = digits × 10^shift microseconds. An exponent too large to parse is out of
    // range when positive and rounds to zero microseconds when negative.
    let shift = match exponent {
        Some(e) => e.saturating_sub(frac_part.len() as i64).saturating_add(6),
        None if rest.contains("e-") || rest.contains("E-") => i64::MIN,
        None => return Err(out_of_range()),
    };
    let max_micros = MAX_CREATED_AT * MICROS_PER_SECOND;
    let micros = if shift >= 0 {
        // Saturating: an exponent near i64::MAX must be out of range, not wrap around.
        if (digits.len() as i64).saturating_add(shift) > 18 {
            return Err(out_of_range());
        }
        let base: i64 = digits.parse().map_err(|_| out_of_range())?;
        base.checked_mul(10_i64.pow(shift as u32))
            .ok_or_else(out_of_range)?
    } else {
        // Digits left of the microsecond point (shift < 0 here, so this cannot overflow).
        let keep = (digits.len() as i64).saturating_add(shift);
        let (kept, dropped) = if keep <= 0 {
            ("", digits)
        } else {
            digits.split_at(keep as usize)
        };
        if kept.len() > 18 {
            return Err(out_of_range());
        }
        let micros: i64 = if kept.is_empty() {
            0
        } else {
            kept.parse().map_err(|_| out_of_range())?
        };
        // Exactly the maximum plus a sub-microsecond remainder is still past the maximum.
        if micros == max_micros && dropped.bytes().any(|b| b != b'0') {
            return Err(out_of_range());
        }
        micros
    };
    if micros > max_micros {
        return Err(out_of_range());
    }
    Ok(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Event<'_> {
        parse_event(line.as_bytes()).unwrap_or_else(|r| panic!("{line}: rejected: {r}"))
    }

    fn rejected(line: &[u8]) -> Rejection {
        match parse_event(line) {
            Ok(e) => panic!("{:?} was accepted as {e:?}", String::from_utf8_lossy(line)),
            Err(r) => r,
        }
    }

    const GOOD: &str =
        r#"{"event_uuid":"u1","event_name":"payment:order:completed","created_at":1700000000}"#;

    #[test]
    fn transform_derives_type_subtype_and_date() {
        let e = ok(GOOD);
        assert_eq!(e.event_uuid, "u1");
        assert_eq!(e.event_type(), "payment");
        assert_eq!(e.event_subtype(), Some("order"));
        assert_eq!(e.created_at, 1_700_000_000);
        assert_eq!(e.created_micros, 1_700_000_000_000_000);
        assert_eq!(e.event_date_days(), 19_675); // 2023-11-14
    }

    #[test]
    fn an_event_detached_and_attached_again_is_the_same() {
        let escaped = r#"{"event_uuid":"u\u0031","event_name":"a\u003ab:c","created_at":1.5}"#;
        for line in [GOOD, escaped] {
            let e = ok(line);
            assert_eq!(e.detach().attach(line), Some(e.clone()));
        }
        let e = ok(escaped);
        assert_eq!(
            (e.event_uuid.as_ref(), e.event_name.as_ref()),
            ("u1", "a:b:c")
        );
        // On shorter text a span cannot be taken.
        assert_eq!(ok(GOOD).detach().attach("{}"), None);
    }

    #[test]
    fn subtype_is_null_without_a_second_part() {
        let e = ok(r#"{"event_uuid":"u","event_name":"login","created_at":0}"#);
        assert_eq!((e.event_type(), e.event_subtype()), ("login", None));
        let e = ok(r#"{"event_uuid":"u","event_name":"login:","created_at":0}"#);
        assert_eq!(e.event_subtype(), None);
        let e = ok(r#"{"event_uuid":"u","event_name":"a:b","created_at":0}"#);
        assert_eq!(e.event_subtype(), Some("b"));
    }

    #[test]
    fn fractional_seconds_are_floored_and_kept_to_the_microsecond() {
        let e = ok(r#"{"event_uuid":"u","event_name":"a","created_at":1700000000.1234567}"#);
        assert_eq!(e.created_at, 1_700_000_000);
        assert_eq!(e.created_micros, 1_700_000_000_123_456);
        let e = ok(r#"{"event_uuid":"u","event_name":"a","created_at":1.7e9}"#);
        assert_eq!(e.created_micros, 1_700_000_000_000_000);
        let e = ok(r#"{"event_uuid":"u","event_name":"a","created_at":17000000005E-1}"#);
        assert_eq!(
            (e.created_at, e.created_micros),
            (1_700_000_000, 1_700_000_000_500_000)
        );
        let e = ok(r#"{"event_uuid":"u","event_name":"a","created_at":5e-7}"#);
        assert_eq!(e.created_micros, 0);
        let e = ok(r#"{"event_uuid":"u","event_name":"a","created_at":-0.0}"#);
        assert_eq!(e.created_micros, 0);
        let e = ok(r#"{"event_uuid":"u","event_name":"a","created_at":253402300799}"#);
        assert_eq!(e.created_at, MAX_CREATED_AT);
    }

    #[test]
    fn escaped_strings_are_unescaped_and_other_fields_ignored() {
        let e = ok(
            r#" {"x":[1,{"y":null}],"event_uuid":"a\"b","event_name":"p\u00e9:q","created_at":1} "#,
        );
        assert_eq!(e.event_uuid, "a\"b");
        assert_eq!(e.event_type(), "pé");
    }

    #[test]
    fn rejects_each_invalid_kind_with_its_reason() {
        use Rejection::*;
        let cases: Vec<(&[u8], Rejection)> = vec![
            (b"", Empty),
            (b"   ", Empty),
            (
                b"{\"event_uuid\":\"\xff\"}",
                InvalidUtf8 { valid_up_to: 15 },
            ),
            (b"[1,2]", NotAnObject("an array")),
            (b"\"text\"", NotAnObject("a string")),
            (b"null", NotAnObject("null")),
            (
                br#"{"event_uuid":"u","event_name":"a","created_at":1"#,
                InvalidJson(String::new()),
            ),
            (
                br#"{"event_uuid":"u","event_name":"a","created_at":1} x"#,
                InvalidJson(String::new()),
            ),
            (b"not json", InvalidJson(String::new())),
            (
                br#"{"event_name":"a","created_at":1}"#,
                MissingField("event_uuid"),
            ),
            (
                br#"{"event_uuid":"u","created_at":1}"#,
                MissingField("event_name"),
            ),
            (
                br#"{"event_uuid":"u","event_name":"a"}"#,
                MissingField("created_at"),
            ),
            (
                br#"{"event_uuid":1,"event_name":"a","created_at":1}"#,
                WrongType {
                    field: "event_uuid",
                    expected: "a string",
                },
            ),
            (
                br#"{"event_uuid":"u","event_name":null,"created_at":1}"#,
                WrongType {
                    field: "event_name",
                    expected: "a string",
                },
            ),
            (
                br#"{"event_uuid":"u","event_name":"a","created_at":"1700000000"}"#,
                WrongType {
                    field: "created_at",
                    expected: "a number of Unix seconds",
                },
            ),
            (
                br#"{"event_uuid":"","event_name":"a","created_at":1}"#,
                EmptyUuid,
            ),
            (
                br#"{"event_uuid":"u","event_name":"","created_at":1}"#,
                EmptyEventType,
            ),
            (
                br#"{"event_uuid":"u","event_name":":b","created_at":1}"#,
                EmptyEventType,
            ),
            (
                br#"{"event_uuid":"u","event_name":"a","created_at":-1}"#,
                CreatedAtOutOfRange("-1".into()),
            ),
            (
                br#"{"event_uuid":"u","event_name":"a","created_at":253402300800}"#,
                CreatedAtOutOfRange("253402300800".into()),
            ),
            (
                br#"{"event_uuid":"u","event_name":"a","created_at":253402300799.0000001}"#,
                CreatedAtOutOfRange("253402300799.0000001".into()),
            ),
            (
                br#"{"event_uuid":"u","event_name":"a","created_at":1e400}"#,
                CreatedAtOutOfRange("1e400".into()),
            ),
            (
                br#"{"event_uuid":"u","event_uuid":"v","event_name":"a","created_at":1}"#,
                DuplicateField("event_uuid"),
            ),
        ];
        for (line, expected) in cases {
            let got = rejected(line);
            match (&expected, &got) {
                // The parser's message is its own; the kind is what we promise.
                (InvalidJson(_), InvalidJson(msg)) => assert!(!msg.is_empty()),
                _ => assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(line)),
            }
            assert!(!got.to_string().is_empty());
        }
    }

    #[test]
    fn exponents_at_the_edges_of_i64_are_exact_or_out_of_range() {
        for created in [
            "1e9223372036854775807",
            "9E9223372036854775800",
            "0.1e9223372036854775807",
            "1e99999999999999999999",
        ] {
            let line = format!(r#"{{"event_uuid":"u","event_name":"a","created_at":{created}}}"#);
            assert!(
                matches!(rejected(line.as_bytes()), Rejection::CreatedAtOutOfRange(_)),
                "{created}"
            );
        }
        for created in [
            "1e-9223372036854775808",
            "7e-9223372036854775807",
            "1e-99999999999999999999",
        ] {
            let line = format!(r#"{{"event_uuid":"u","event_name":"a","created_at":{created}}}"#);
            assert_eq!(ok(&line).created_micros, 0, "{created}");
        }
    }

    #[test]
    fn an_event_type_too_long_for_a_partition_path_is_rejected() {
        let line = |event_type: &str| {
            format!(r#"{{"event_uuid":"u","event_name":"{event_type}:x","created_at":1}}"#)
        };
        // 22 CJK characters escape to 198 bytes, 23 to 207; 200 ASCII letters fit.
        assert_eq!(ok(&line(&"中".repeat(22))).event_type(), "中".repeat(22));
        assert_eq!(ok(&line(&"a".repeat(200))).event_type().len(), 200);
        for (event_type, path_bytes) in [
            ("中".repeat(23), 207),
            ("中".repeat(40), 360),
            ("a".repeat(201), 201),
            (" ".repeat(67), 201),
        ] {
            let reason = rejected(line(&event_type).as_bytes());
            assert_eq!(reason, Rejection::EventTypeTooLong { path_bytes });
            assert!(reason.to_string().contains("too long to be a partition"));
        }
    }

    #[test]
    fn an_unpaired_surrogate_is_rejected_wherever_it_is() {
        let lone = [
            r"\ud800",
            r"\udc00",
            r"\uD800x",
            r"\ud800\u0041",
            r"\ud800\ud800",
        ];
        for s in lone {
            for line in [
                format!(r#"{{"event_uuid":"{s}","event_name":"a","created_at":1}}"#),
                format!(r#"{{"event_uuid":"u","event_name":"a{s}","created_at":1}}"#),
                format!(r#"{{"event_uuid":"u","event_name":"a","created_at":1,"x":"{s}"}}"#),
                format!(r#"{{"event_uuid":"u","event_name":"a","created_at":1,"{s}":1}}"#),
                format!(
                    r#"{{"event_uuid":"u","event_name":"a","created_at":1,"x":[{{"y":"{s}"}}]}}"#
                ),
            ] {
                let reason = rejected(line.as_bytes());
                assert!(
                    matches!(reason, Rejection::LoneSurrogate { .. }),
                    "{line}: {reason}"
                );
            }
        }
        // A pair is one character; an escaped backslash before `u` is no escape at all.
        let e =
            ok(r#"{"event_uuid":"\ud83d\ude00","event_name":"a","created_at":1,"x":"\\ud800"}"#);
        assert_eq!(e.event_uuid, "😀");
    }

    proptest::proptest! {
        /// Any mantissa with any exponent: an exact instant in range, or out of range.
        #[test]
        fn any_exponent_is_exact_or_rejected(int in 0u64..100_000_000_000, frac in 0u32..1000, exp: i64) {
            let line = format!(r#"{{"event_uuid":"u","event_name":"a","created_at":{int}.{frac:03}e{exp}}}"#);
            match parse_event(line.as_bytes()) {
                Ok(e) => {
                    proptest::prop_assert!((0..=MAX_CREATED_AT * MICROS_PER_SECOND).contains(&e.created_micros));
                    proptest::prop_assert_eq!(e.created_at, e.created_micros.div_euclid(MICROS_PER_SECOND));
                }
                Err(r) => proptest::prop_assert!(matches!(r, Rejection::CreatedAtOutOfRange(_)), "{r}"),
            }
        }
    }
}
