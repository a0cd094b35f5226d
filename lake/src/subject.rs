//! Who an event belongs to: the subject key, a JSON path per event type into the event's
//! payload (`$.user_id` unless configured), resolved at ingest into `subject_id` and used
//! again by an erasure for rows written before the column existed and for quarantine.
//!
//! The paths live in raw's table properties ([`SUBJECT_PATHS_PROPERTY`]), so every writer
//! (CLI, Lambda) and every erasure reads the same ones.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use deltalake::DeltaTable;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{LakeError, Result};
use crate::{Lake, Table};

/// Raw's table property holding the paths: a JSON object of event type to path, `*` for
/// every other type.
pub const SUBJECT_PATHS_PROPERTY: &str = "lakehouse.subjectPaths";

/// The path of every type no other path names.
pub const ANY_TYPE: &str = "*";

/// The default subject path.
pub const DEFAULT_SUBJECT_PATH: &str = "$.user_id";

/// The subject paths of a lake, by event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPaths {
    default: Option<JsonPath>,
    by_type: BTreeMap<String, JsonPath>,
}

impl Default for SubjectPaths {
    fn default() -> Self {
        SubjectPaths {
            default: JsonPath::parse(DEFAULT_SUBJECT_PATH).ok(),
            by_type: BTreeMap::new(),
        }
    }
}

impl SubjectPaths {
    /// The paths raw's properties hold, the default when none are set.
    pub fn of_table(raw: &DeltaTable) -> Result<SubjectPaths> {
        let snapshot = raw.snapshot()?;
        match snapshot
            .metadata()
            .configuration()
            .get(SUBJECT_PATHS_PROPERTY)
        {
            Some(json) => SubjectPaths::parse(json),
            None => Ok(SubjectPaths::default()),
        }
    }

    /// Paths from their JSON form: `{"*": "$.user_id", "payment": "$.customer.id"}`. An
    /// empty path (`""`) names no subject for that type.
    pub fn parse(json: &str) -> Result<SubjectPaths> {
        let invalid = |reason: String| LakeError::InvalidSubjectPaths { reason };
        let map: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| invalid(format!("{e} in {json}")))?;
        let mut paths = SubjectPaths {
            default: None,
            by_type: BTreeMap::new(),
        };
        for (event_type, path) in map {
            let parsed = JsonPath::parse(&path).map_err(invalid)?;
            if event_type == ANY_TYPE {
                paths.default = Some(parsed);
            } else {
                paths.by_type.insert(event_type, parsed);
            }
        }
        Ok(paths)
    }

    /// The JSON form [`SubjectPaths::parse`] reads.
    pub fn to_json(&self) -> String {
        let mut map: BTreeMap<&str, String> = self
            .by_type
            .iter()
            .map(|(t, p)| (t.as_str(), p.to_string()))
            .collect();
        if let Some(default) = &self.default {
            map.insert(ANY_TYPE, default.to_string());
        }
        serde_json::to_string(&map).unwrap_or_default()
    }

    /// The subject of an event of `event_type` whose text is `payload`: the string or
    /// number its path leads to, `None` when there is none (or the payload is not JSON).
    pub fn resolve(&self, event_type: &str, payload: &str) -> Option<String> {
        self.by_type
            .get(event_type)
            .or(self.default.as_ref())
            .and_then(|path| path.resolve(payload))
    }

    /// Whether a record of unknown type (a quarantined one) names `subject` under any of
    /// the paths, when it parses; when it does not, whether its bytes hold the subject's
    /// text at all.
    pub fn record_names(&self, record: &[u8], subjects: &dyn Fn(&str) -> bool) -> RecordMatch {
        let Ok(text) = std::str::from_utf8(record) else {
            return RecordMatch::Unparsed;
        };
        if serde_json::from_str::<IgnoredAny>(text).is_err() {
            return RecordMatch::Unparsed;
        }
        let named = self
            .default
            .iter()
            .chain(self.by_type.values())
            .filter_map(|p| p.resolve(text))
            .any(|s| subjects(&s));
        if named {
            RecordMatch::Named
        } else {
            RecordMatch::NotNamed
        }
    }
}

/// Sets the lake's subject paths (raw's property, in one metadata commit; raw is created
/// if needed). Rows ingested from then on carry the subjects they name; rows ingested
/// before keep theirs.
pub async fn set_subject_paths(lake: &Lake, paths: &SubjectPaths) -> Result<()> {
    let raw = lake.open(Table::Raw).await?;
    raw.set_tbl_properties()
        .with_properties(HashMap::from([(
            SUBJECT_PATHS_PROPERTY.to_string(),
            paths.to_json(),
        )]))
        .with_raise_if_not_exists(false)
        .await?;
    Ok(())
}

/// What the paths say of a record that may not be an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMatch {
    /// It parses and one of the paths names a subject sought.
    Named,
    /// It parses and names none.
    NotNamed,
    /// It is not JSON: only its bytes can tell.
    Unparsed,
}

/// A JSON path of object keys: `$.a.b`. Empty (`""`): no subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    pub fn parse(path: &str) -> std::result::Result<JsonPath, String> {
        if path.is_empty() {
            return Ok(JsonPath(Vec::new()));
        }
        let rest = path
            .strip_prefix("$.")
            .ok_or_else(|| format!("subject path {path:?} does not start with \"$.\""))?;
        let keys: Vec<String> = rest.split('.').map(str::to_string).collect();
        if keys.iter().any(String::is_empty) {
            return Err(format!("subject path {path:?} has an empty key"));
        }
        Ok(JsonPath(keys))
    }

    /// The string or number at the path in `json`, if any.
    pub fn resolve(&self, json: &str) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(json);
        Descend(&self.0).deserialize(&mut de).ok().flatten()
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, "$.{}", self.0.join("."))
    }
}

/// Descends `keys` into a JSON value without building it: other keys' values are skipped.
struct Descend<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for Descend<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Descend<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_next) = map.next_key_seed(KeyIs(self.0.first()))? {
            match (is_next, self.0.split_first()) {
                // The last of duplicate keys wins, as in most JSON readers.
                (true, Some((_, rest))) => found = map.next_value_seed(Descend(rest))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads a key, answering whether it is `want`.
struct KeyIs<'p>(Option<&'p String>);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<bool, E> {
        Ok(self.0.is_some_and(|want| want == v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_paths() -> SubjectPaths {
        SubjectPaths::default()
    }

    #[test]
    fn resolves_strings_and_numbers_at_the_path_and_nothing_else() {
        let p = default_paths();
        let at = |json: &str| p.resolve("any", json);
        assert_eq!(
            at(r#"{"user_id":"u-1","x":[1,{"user_id":"no"}]}"#),
            Some("u-1".into())
        );
        assert_eq!(
            at(r#"{"x":{"user_id":"no"},"user_id":42}"#),
            Some("42".into())
        );
        assert_eq!(at(r#"{"user_id":"a\u00e9\"b"}"#), Some("aé\"b".into()));
        assert_eq!(
            at(r#"{"user_id":"first","user_id":"last"}"#),
            Some("last".into())
        );
        for none in [
            r#"{"user_id":null}"#,
            r#"{"user_id":true}"#,
            r#"{"user_id":{"id":1}}"#,
            r#"{"user_id":[1]}"#,
            r#"{"other":1}"#,
            r#"[{"user_id":"x"}]"#,
            r#"not json"#,
            r#"{"user_id":"x""#,
        ] {
            assert_eq!(at(none), None, "{none}");
        }
    }

    #[test]
    fn a_type_uses_its_own_path_and_the_others_the_default() {
        let p = SubjectPaths::parse(r#"{"*":"$.user_id","payment":"$.customer.id","ping":""}"#)
            .unwrap();
        let json = r#"{"user_id":"u","customer":{"id":"c","name":"n"}}"#;
        assert_eq!(p.resolve("payment", json), Some("c".into()));
        assert_eq!(p.resolve("login", json), Some("u".into()));
        assert_eq!(p.resolve("ping", json), None);
        assert_eq!(SubjectPaths::parse(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [r#"{"*":"user_id"}"#, r#"{"*":"$..a"}"#, r#"{"*":1}"#, "[]"] {
            assert!(SubjectPaths::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn records_match_by_path_when_they_parse() {
        let p = default_paths();
        let is_u = |s: &str| s == "u";
        assert_eq!(
            p.record_names(br#"{"user_id":"u"}"#, &is_u),
            RecordMatch::Named
        );
        assert_eq!(
            p.record_names(br#"{"user_id":"v"}"#, &is_u),
            RecordMatch::NotNamed
        );
        assert_eq!(
            p.record_names(b"{\"user_id\":\"u\"", &is_u),
            RecordMatch::Unparsed
        );
        assert_eq!(p.record_names(b"\xff", &is_u), RecordMatch::Unparsed);
    }
}
