//! The key index's build on AWS (issue 23): the compaction Lambda's `{"keys_build": …}`
//! events in the order the keys-build state machine sends them, its map's chunks all at
//! once and one of them twice (a retry after a lost response), on moto.

use serde_json::{Value, json};

use super::lambda::COMPACT;
use super::stack::{BUCKET, LAKE, Stack, StackOptions};

const T0: i64 = 1_700_000_000;

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_builds_the_index_in_chunks_at_once_and_each_commits_once() {
    let stack = Stack::start(StackOptions {
        compact_instances: 3,
        ..StackOptions::default()
    })
    .await;
    // 6 types × 10 events: 6 staging files of 10 rows.
    let dir = tempfile::tempdir().expect("temp dir");
    let lines: Vec<String> = (0..60)
        .map(|i| {
            format!(
                r#"{{"event_uuid":"k{i}","event_name":"t{}:x","created_at":{}}}"#,
                i % 6,
                T0 + i
            )
        })
        .collect();
    let file = dir.path().join("input.jsonl");
    std::fs::write(&file, lines.join("\n")).expect("write input");
    stack.lakehouse(&["ingest", "--lake", LAKE, file.to_str().expect("utf-8")]);
    stack.lakehouse(&["compact", "--lake", LAKE, "--no-maintenance"]);
    stack
        .moto
        .delete_prefix(BUCKET, "events/staging_keys/")
        .await;

    // 1. The plan starts the build: a chunk per file.
    let plan_event = json!({ "keys_build": { "plan": true, "rows_per_chunk": 10 } });
    let plan = stack.emulator.invoke(COMPACT, &plan_event).expect("plan");
    assert_eq!(
        (&plan["begun"], &plan["files"]),
        (&json!(true), &json!(6)),
        "{plan}"
    );
    let as_of = plan["as_of"].as_u64().expect("as_of");
    let chunks = plan["chunks"].as_array().expect("chunks").clone();
    assert_eq!(chunks.len(), 6, "{plan}");

    // 2. The map: every chunk at once, the first twice.
    let mut events: Vec<Value> = chunks
        .iter()
        .map(|c| json!({ "keys_build": { "as_of": as_of, "from": c["from"], "to": c["to"] } }))
        .collect();
    events.push(events[0].clone());
    let outcomes: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = events
            .iter()
            .map(|event| scope.spawn(|| stack.emulator.invoke(COMPACT, event).expect("chunk")))
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join().expect("chunk")["outcome"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| *o == "indexed").count(),
        6,
        "{outcomes:?}"
    );

    // 3. Planned again: nothing left; the finish records the build.
    let again = stack
        .emulator
        .invoke(COMPACT, &plan_event)
        .expect("plan again");
    assert!(
        again["as_of"].is_null() || again["chunks"] == json!([]),
        "{again}"
    );
    let finished = stack
        .emulator
        .invoke(COMPACT, &json!({ "keys_build": { "finish": true } }))
        .expect("finish");
    assert_eq!(finished["update"]["indexed"], as_of, "{finished}");
    let check: Value = serde_json::from_str(
        &stack.lakehouse(&["keys", "check", "--lake", LAKE, "--format", "json"]),
    )
    .expect("check json");
    assert_eq!(
        (&check["index_entries"], &check["missing"], &check["extra"]),
        (&json!(60), &json!(0), &json!(0)),
        "{check}"
    );

    // A chunk sent again after the build: nothing committed. A malformed event fails clearly.
    let late = stack
        .emulator
        .invoke(COMPACT, &events[3])
        .expect("late chunk");
    assert_eq!(late["outcome"], "not_under_way", "{late}");
    let e: String = stack
        .emulator
        .invoke(
            COMPACT,
            &json!({ "keys_build": { "as_of": as_of, "from": 2 } }),
        )
        .expect_err("half a chunk")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(e.contains("eventfieldkeys_build="), "{e}");
}
