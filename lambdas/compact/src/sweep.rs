//! The sweep on AWS: the compaction Lambda's `{"sweep": …}` events, which the sweep state
//! machine (Terraform `sweep_schedule`) sends around an Athena query:
//!
//! 1. `{"sweep": {"begin": true}}` answers `{"as_of": V}`, staging's version now: the
//!    query that follows reads that version or a later one;
//! 2. Athena runs `sql/queries/duplicated_events.sql` and writes its CSV result to S3;
//! 3. `{"sweep": {"candidates": "s3://…csv", "as_of": V}}` sweeps the copies it names,
//!    reading only their partitions (and the files staged since V).
//!
//! `{"sweep": {}}` sweeps all of staging in the function (a staging small enough for one
//! invocation); `{"sweep": {"by_index": true}}` sweeps what arrived since the last sweep,
//! found through the key index (no Athena: its cost follows what arrived). No lease: sweeps and compactions that race for the same files are ordered
//! by the commit rules, and the loser plans again.

use anyhow::{Context, Result, bail};
use lakehouse_compact::candidates::Candidates;
use lakehouse_compact::sweep::{ROWS_PER_PASS, Scope, sweep};
use lakehouse_lake::{Lake, Table};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `sweep` field of an event.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepEvent {
    /// Only report staging's version (the state machine's first step).
    #[serde(default)]
    pub begin: bool,
    /// The query's CSV result, `s3://bucket/key`.
    pub candidates: Option<String>,
    /// The version `begin` answered before the query ran.
    pub as_of: Option<u64>,
    /// Find the copies through the key index (what arrived since the last sweep).
    #[serde(default)]
    pub by_index: bool,
}

impl SweepEvent {
    pub fn parse(field: &Value) -> Result<SweepEvent> {
        let event: SweepEvent = serde_json::from_value(field.clone()).with_context(|| {
            format!(
                "event field sweep={field}: expected {{}}, {{\"begin\": true}}, \
                 {{\"by_index\": true}} or {{\"candidates\": \"s3://…\", \"as_of\": N}}"
            )
        })?;
        if event.by_index && (event.begin || event.candidates.is_some() || event.as_of.is_some()) {
            bail!("event field sweep={field}: by_index takes no other field")
        }
        match (&event.candidates, event.as_of, event.begin) {
            (_, _, true) if event.candidates.is_some() || event.as_of.is_some() => {
                bail!("event field sweep={field}: begin takes no other field")
            }
            (Some(_), None, _) | (None, Some(_), _) => {
                bail!("event field sweep={field}: candidates and as_of go together")
            }
            _ => Ok(event),
        }
    }
}

/// Runs one sweep event; its answer is the function's response.
pub async fn handle_sweep(
    lake: &Lake,
    event: SweepEvent,
    index_rows_per_commit: u64,
) -> Result<Value> {
    if event.begin {
        let Some(staging) = lake.open_existing(Table::Staging).await? else {
            bail!("no staging table to sweep yet");
        };
        return Ok(json!({ "status": "begun", "as_of": staging.version().unwrap_or(0) }));
    }
    let scope = match (event.candidates, event.as_of) {
        (Some(spec), Some(as_of)) => Scope::Found(Candidates::from_s3(lake, &spec, as_of).await?),
        _ if event.by_index => Scope::ByIndex,
        _ => Scope::All {
            rows_per_pass: ROWS_PER_PASS,
        },
    };
    let candidates = match &scope {
        Scope::Found(found) => {
            json!({ "rows": found.rows, "events": found.events(), "as_of": found.as_of })
        }
        Scope::All { .. } | Scope::ByIndex => Value::Null,
    };
    let report = sweep(lake, &scope, index_rows_per_commit).await?;
    if report.committed.is_none() {
        bail!("no staging table to sweep yet");
    }
    tracing::info!(
        report = serde_json::to_string(&report).unwrap_or_default(),
        "sweep done"
    );
    Ok(json!({ "status": "swept", "candidates": candidates, "report": report }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_events_parse_or_say_what_is_expected() {
        let ok = |v: Value| SweepEvent::parse(&v).expect("parses");
        assert!(ok(json!({ "begin": true })).begin);
        assert!(ok(json!({ "by_index": true })).by_index);
        let all = ok(json!({}));
        assert!(!all.begin && all.candidates.is_none());
        let found = ok(json!({ "candidates": "s3://b/k.csv", "as_of": 4 }));
        assert_eq!(
            (found.candidates.as_deref(), found.as_of),
            (Some("s3://b/k.csv"), Some(4))
        );
        for bad in [
            json!({ "candidates": "s3://b/k.csv" }),
            json!({ "as_of": 3 }),
            json!({ "begin": true, "as_of": 3 }),
            json!({ "as_of": -1, "candidates": "s3://b/k" }),
            json!({ "canddates": "s3://b/k" }),
            json!({ "by_index": true, "begin": true }),
            json!({ "by_index": true, "as_of": 3, "candidates": "s3://b/k" }),
            json!("all"),
        ] {
            let e = SweepEvent::parse(&bad).expect_err("refused");
            assert!(e.to_string().starts_with("event field sweep="), "{e}");
        }
    }
}
