//! Erasure requests on AWS (issue 24): a request left in the lake by `lakehouse erase
//! --submit`, processed by the compaction Lambda's scheduled `{"erase": {}}` event, on moto
//! and the Lambda emulator: from request to physical deletion in one run.

use std::time::Instant;

use serde_json::json;

use super::lambda::COMPACT;
use super::stack::{LAKE, Stack, StackOptions};

const T0: i64 = 1_700_000_000;

fn event(uuid: &str, name: &str, user: &str) -> String {
    format!(
        r#"{{"event_uuid":"{uuid}","event_name":"{name}","created_at":{T0},"user_id":"{user}"}}"#
    )
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread")]
async fn a_request_left_in_the_lake_is_erased_by_the_scheduled_run() {
    let stack = Stack::start(StackOptions::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("events.jsonl");
    let lines = [
        event("a1", "login", "u-1"),
        event("a2", "login", "u-2"),
        event("a3", "page:view", "u-1"),
        "not json, u-1".to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).expect("write");
    stack.lakehouse(&["ingest", "--lake", LAKE, file.to_str().expect("utf-8")]);
    stack.lakehouse(&["compact", "--lake", LAKE]);
    let staging_before = stack.query("SELECT count(*) AS n FROM staging")[0]["n"].clone();
    assert_eq!(staging_before, 3);

    let submitted = Instant::now();
    let out = stack.lakehouse(&[
        "erase",
        "--lake",
        LAKE,
        "--submit",
        "--subject",
        "u-1",
        "--request-id",
        "DSR-1",
    ]);
    assert!(out.contains("request DSR-1 waits"), "{out}");
    let status = stack.lakehouse(&["status", "--lake", LAKE]);
    assert!(status.contains("erasures    1 waiting"), "{status}");

    let done = stack
        .emulator
        .invoke(COMPACT, &json!({ "erase": {} }))
        .expect("erase");
    let seconds = submitted.elapsed().as_secs_f64();
    eprintln!("request to physical deletion on moto: {seconds:.2} s");
    assert_eq!(done["status"], "erased", "{done}");
    assert_eq!(done["requests"][0]["request_id"], "DSR-1", "{done}");
    assert_eq!(done["requests"][0]["residue_rows"], 0, "{done}");
    // Raw a1, a3; staging a1, a3; quarantine the record that does not parse.
    assert_eq!(done["requests"][0]["rows_removed"], 5, "{done}");

    let left = stack.query("SELECT event_uuid, subject_id FROM staging");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["subject_id"], "u-2");
    assert_eq!(stack.count("quarantine"), 0);
    let receipts = stack.query("SELECT request_id, residue_rows FROM erasures");
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["request_id"], "DSR-1");
    // The request (it names the subject) is gone with it; the next run finds nothing.
    let status = stack.lakehouse(&["status", "--lake", LAKE]);
    assert!(status.contains("erasures    none waiting"), "{status}");
    let again = stack
        .emulator
        .invoke(COMPACT, &json!({ "erase": {} }))
        .expect("erase again");
    assert_eq!(again["requests"], json!([]), "{again}");
}
