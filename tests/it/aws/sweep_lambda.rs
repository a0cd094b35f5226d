//! The sweep on AWS (issue 23): the compaction Lambda's `{"sweep": …}` events, in the order
//! the sweep state machine sends them, on moto. Moto does not run Athena queries, so the
//! query's CSV result is made by the same SQL file on DataFusion (`lakehouse query`) and put
//! where Athena writes its results.

use serde_json::json;

use super::lambda::COMPACT;
use super::stack::{BUCKET, LAKE, Stack, StackOptions};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

/// Ingests `lines` and compacts with a one-day date search, so copies further apart stay.
fn ingest_and_compact(stack: &Stack, dir: &std::path::Path, lines: &[String]) {
    let file = dir.join(format!("input-{}.jsonl", lines.len()));
    std::fs::write(&file, lines.join("\n")).expect("write input");
    stack.lakehouse(&["ingest", "--lake", LAKE, file.to_str().expect("utf-8")]);
    let compact = ["compact", "--lake", LAKE, "--horizon-days", "1"];
    stack.lakehouse(&[&compact[..], &["--no-maintenance"]].concat());
}

fn event(uuid: &str, at: i64, version: &str) -> String {
    format!(
        r#"{{"event_uuid":"{uuid}","event_name":"order:placed","created_at":{at},"v":"{version}"}}"#
    )
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_sweeps_the_copies_a_query_result_names_and_a_retry_converges() {
    let stack = Stack::start(StackOptions::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    ingest_and_compact(
        &stack,
        dir.path(),
        &[event("h", T0, "old"), event("s", T0, "only")],
    );
    // A copy a year later: the one-day search leaves both.
    ingest_and_compact(&stack, dir.path(), &[event("h", T0 + 400 * DAY, "new")]);
    assert_eq!(stack.count("staging"), 3);

    // 1. The version the query reads at least.
    let begun = stack
        .emulator
        .invoke(COMPACT, &json!({ "sweep": { "begin": true } }))
        .expect("begin");
    let as_of = begun["as_of"].as_u64().expect("as_of");

    // 2. The query's result, where Athena writes it.
    let sql = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql/queries/duplicated_events.sql"
    );
    let csv = stack.lakehouse(&["query", "--lake", LAKE, "--format", "csv", "--file", sql]);
    assert_eq!(csv.lines().count(), 3, "a header and h's two copies: {csv}");
    stack
        .moto
        .put_object(BUCKET, "athena-results/q1.csv", csv.into_bytes())
        .await;

    // 3. The sweep of what it names; then a retry (a lost response), then a whole sweep.
    let found =
        json!({ "sweep": { "candidates": "s3://lake/athena-results/q1.csv", "as_of": as_of } });
    let swept = stack.emulator.invoke(COMPACT, &found).expect("sweep");
    assert_eq!(swept["status"], "swept", "{swept}");
    assert_eq!(swept["candidates"]["rows"], 2, "{swept}");
    assert_eq!(swept["report"]["rows_removed"], 1, "{swept}");
    assert_eq!(swept["report"]["swept"], as_of, "{swept}");
    let retried = stack.emulator.invoke(COMPACT, &found).expect("retry");
    assert_eq!(retried["report"]["rows_removed"], 0, "{retried}");
    let whole = stack
        .emulator
        .invoke(COMPACT, &json!({ "sweep": {} }))
        .expect("whole sweep");
    assert_eq!(whole["report"]["rows_removed"], 0, "{whole}");
    assert_eq!(whole["report"]["rows_read"], 2, "{whole}");
    // The sweep by the index, after it: nothing arrived, nothing read or removed.
    let indexed = stack
        .emulator
        .invoke(COMPACT, &json!({ "sweep": { "by_index": true } }))
        .expect("sweep by the index");
    assert_eq!(
        (
            &indexed["report"]["rows_read"],
            &indexed["report"]["rows_removed"]
        ),
        (&json!(0), &json!(0)),
        "{indexed}"
    );
    let rows = stack.query("SELECT event_uuid, created_at FROM staging ORDER BY event_uuid");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["created_at"], T0 + 400 * DAY);
    let status = stack.lakehouse(&["status", "--lake", LAKE]);
    assert!(
        status.contains("sweep       last swept staging v"),
        "{status}"
    );

    // A result that is not there, and an event that is not a sweep's, fail clearly (the
    // emulator wraps the message: compared without its frame).
    let unwrapped = |e: String| -> String {
        e.chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    };
    let missing =
        json!({ "sweep": { "candidates": "s3://lake/athena-results/none.csv", "as_of": as_of } });
    let e = unwrapped(
        stack
            .emulator
            .invoke(COMPACT, &missing)
            .expect_err("missing"),
    );
    assert!(e.contains("s3://lake/athena-results/none.csv"), "{e}");
    let e = unwrapped(
        stack
            .emulator
            .invoke(COMPACT, &json!({ "sweep": { "as_of": as_of } }))
            .expect_err("half an event"),
    );
    assert!(e.contains("candidatesandas_ofgotogether"), "{e}");
    assert_eq!(stack.count("staging"), 2);
}
