//! The key index's build on AWS: the compaction Lambda's `{"keys_build": …}` events, which
//! the keys-build state machine (Terraform `keys_build.tf`) sends:
//!
//! 1. `{"keys_build": {"plan": true}}` starts a build when the index needs one and answers
//!    `{"as_of": V, "chunks": [{"from": A, "to": B}, …], "more": …}` (`as_of` null: none
//!    is needed);
//! 2. a map sends each chunk, `{"keys_build": {"as_of": V, "from": A, "to": B}}`, all at
//!    once: each is indexed exactly once, however often it is sent;
//! 3. while `more`, it plans again; then `{"keys_build": {"finish": true}}` records the
//!    build and indexes what staging added since (`lakehouse keys update`).
//!
//! No lease: chunks commit side by side, and a compaction meanwhile goes on with the
//! build itself (its update indexes the chunks still pending).

use anyhow::{Context, Result, bail};
use lakehouse_compact::key_build::{
    CHUNKS_PER_PLAN, Chunk, ROWS_PER_CHUNK, index_build_chunk, plan_build,
};
use lakehouse_compact::keys::update_keys;
use lakehouse_lake::Lake;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `keys_build` field of an event.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysBuildEvent {
    #[serde(default)]
    pub plan: bool,
    /// With `plan`: a chunk holds the files of about this many staging rows.
    pub rows_per_chunk: Option<u64>,
    /// With `plan`: chunks listed at most.
    pub max_chunks: Option<u64>,
    /// A chunk: the version being built and its files `from..to`.
    pub as_of: Option<u64>,
    pub from: Option<u64>,
    pub to: Option<u64>,
    #[serde(default)]
    pub finish: bool,
}

/// What a `keys_build` event asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum KeysBuildStep {
    Plan {
        rows_per_chunk: u64,
        max_chunks: u64,
    },
    Chunk {
        as_of: u64,
        chunk: Chunk,
    },
    Finish,
}

impl KeysBuildStep {
    pub fn parse(field: &Value) -> Result<KeysBuildStep> {
        let expected = "expected {\"plan\": true}, {\"as_of\": V, \"from\": A, \"to\": B} \
                        (A < B) or {\"finish\": true}";
        let e: KeysBuildEvent = serde_json::from_value(field.clone())
            .with_context(|| format!("event field keys_build={field}: {expected}"))?;
        let sizing = e.rows_per_chunk.is_some() || e.max_chunks.is_some();
        let chunk = e.as_of.is_some() || e.from.is_some() || e.to.is_some();
        Ok(match (e.plan, chunk, e.finish) {
            (true, false, false) => KeysBuildStep::Plan {
                rows_per_chunk: e.rows_per_chunk.unwrap_or(ROWS_PER_CHUNK).max(1),
                max_chunks: e.max_chunks.unwrap_or(CHUNKS_PER_PLAN).max(1),
            },
            (false, true, false) if !sizing => match (e.as_of, e.from, e.to) {
                (Some(as_of), Some(from), Some(to)) if from < to => KeysBuildStep::Chunk {
                    as_of,
                    chunk: Chunk { from, to },
                },
                _ => bail!("event field keys_build={field}: {expected}"),
            },
            (false, false, true) if !sizing => KeysBuildStep::Finish,
            _ => bail!("event field keys_build={field}: {expected}"),
        })
    }
}

/// Runs one step of the build; its answer is the function's response.
pub async fn handle_keys_build(
    lake: &Lake,
    step: KeysBuildStep,
    rows_per_commit: u64,
) -> Result<Value> {
    Ok(match step {
        KeysBuildStep::Plan {
            rows_per_chunk,
            max_chunks,
        } => {
            let plan = plan_build(lake, rows_per_chunk, max_chunks).await?;
            tracing::info!(
                as_of = plan.as_of,
                files = plan.files,
                files_done = plan.files_done,
                chunks = plan.chunks.len(),
                "keys build planned"
            );
            serde_json::to_value(plan)?
        }
        KeysBuildStep::Chunk { as_of, chunk } => {
            let outcome = index_build_chunk(lake, as_of, chunk).await?;
            tracing::info!(as_of, from = chunk.from, to = chunk.to, outcome = ?outcome, "keys build chunk");
            serde_json::to_value(outcome)?
        }
        KeysBuildStep::Finish => {
            let update = update_keys(lake, rows_per_commit).await?;
            tracing::info!(
                indexed = update.indexed,
                rebuilt = update.rebuilt,
                "keys build finished"
            );
            json!({ "status": "indexed", "update": update })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_build_events_parse_or_say_what_is_expected() {
        let ok = |v: Value| KeysBuildStep::parse(&v).expect("parses");
        assert_eq!(
            ok(json!({"plan": true})),
            KeysBuildStep::Plan {
                rows_per_chunk: ROWS_PER_CHUNK,
                max_chunks: CHUNKS_PER_PLAN
            }
        );
        assert_eq!(
            ok(json!({"plan": true, "rows_per_chunk": 10, "max_chunks": 0})),
            KeysBuildStep::Plan {
                rows_per_chunk: 10,
                max_chunks: 1
            }
        );
        assert_eq!(
            ok(json!({"as_of": 7, "from": 0, "to": 4})),
            KeysBuildStep::Chunk {
                as_of: 7,
                chunk: Chunk { from: 0, to: 4 }
            }
        );
        assert_eq!(ok(json!({"finish": true})), KeysBuildStep::Finish);
        for bad in [
            json!({}),
            json!({"plan": true, "finish": true}),
            json!({"plan": true, "as_of": 3}),
            json!({"as_of": 3, "from": 4, "to": 4}),
            json!({"as_of": 3, "from": 0}),
            json!({"as_of": 3, "from": 0, "to": 2, "max_chunks": 5}),
            json!({"finish": true, "rows_per_chunk": 5}),
            json!({"plan": "yes"}),
            json!({"chunk": 1}),
            json!("plan"),
        ] {
            let e = KeysBuildStep::parse(&bad).expect_err("refused");
            assert!(e.to_string().starts_with("event field keys_build="), "{e}");
        }
    }
}
