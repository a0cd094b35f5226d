//! Which range a fanned-out compaction event asks for: `{"types": "I/N"}` or
//! `{"keys": "I/N"}` (one schedule per range), or neither (the whole table).

use anyhow::{Result, bail};
use lakehouse_lake::{RunRange, SplitBy};
use serde_json::Value;

/// The range `event` names; a field that is not a range, or both fields, is an error
/// rather than a whole-table run nobody asked for.
pub fn range_of_event(event: &Value) -> Result<Option<RunRange>> {
    let mut named = None;
    for by in [SplitBy::Types, SplitBy::Keys] {
        let Some(field) = event.get(by.name()) else {
            continue;
        };
        let Some(text) = field.as_str() else {
            bail!(
                "event field {}={field}: expected \"I/N\", e.g. \"2/4\"",
                by.name()
            );
        };
        let range = RunRange::parse(by, text)
            .map_err(|e| anyhow::anyhow!("event field {}={e}", by.name()))?;
        if named.replace(range).is_some() {
            bail!("event fields types and keys: name one range, not both");
        }
    }
    Ok(named)
}

/// The DynamoDB lease key of a run over `range` of the lake at `root`: one run at a time
/// per range (`None`: the whole table).
pub fn lease_key(root: &str, range: Option<RunRange>) -> String {
    match range {
        None => format!("compact|{root}"),
        Some(r) => format!("compact|{root}|{}", r.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_names_one_range_or_none() {
        assert_eq!(range_of_event(&json!({})).ok(), Some(None));
        assert_eq!(
            range_of_event(&json!({"types": "1/4"})).ok().flatten(),
            RunRange::types(1, 4)
        );
        assert_eq!(
            range_of_event(&json!({"keys": "3/4"})).ok().flatten(),
            RunRange::keys(3, 4)
        );
        for bad in [
            json!({"types": 2}),
            json!({"keys": "1/3"}),
            json!({"types": "4/4"}),
            json!({"types": "0/2", "keys": "0/2"}),
        ] {
            let error = range_of_event(&bad).expect_err("not a range").to_string();
            assert!(error.starts_with("event field"), "{error}");
        }
    }

    #[test]
    fn each_range_has_its_own_lease() {
        let root = "s3://b/lake";
        let keys = RunRange::keys(1, 4);
        assert_eq!(lease_key(root, None), "compact|s3://b/lake");
        assert_eq!(lease_key(root, keys), "compact|s3://b/lake|keys-1-of-4");
        assert_ne!(
            lease_key(root, keys),
            lease_key(root, RunRange::types(1, 4))
        );
    }
}
