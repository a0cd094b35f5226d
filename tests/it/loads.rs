//! Idempotent, crash-safe file loads (issue 11 §4): a file's content lands once in raw and
//! quarantine however often, however concurrently, and however interrupted it is loaded.

use lakehouse_ingest::load::content_digest;
use lakehouse_ingest::source::JsonLines;
use lakehouse_ingest::{IngestOptions, Ingestor};
use lakehouse_lake::CommitMetadata;
use lakehouse_lake::app_ids::load_app_id;

use crate::helpers::{TestLake, event, lakehouse, lakehouse_ok};

const T0: i64 = 1_700_000_000;

/// A JSON Lines file of `valid` events (uuids `<tag>0`…) and one invalid line, in `lake`'s
/// temporary folder.
fn input(lake: &TestLake, tag: &str, valid: usize) -> String {
    let mut lines: Vec<String> = (0..valid)
        .map(|i| event(&format!("{tag}{i}"), "x:1", T0, ""))
        .collect();
    lines.push(format!("broken {tag}"));
    let path = lake.dir.path().join(format!("{tag}.jsonl"));
    std::fs::write(&path, lines.join("\n")).expect("write input");
    path.to_str().expect("utf-8 path").to_string()
}

fn counts(lake: &TestLake) -> (i64, i64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async { (lake.count("raw").await, lake.count("quarantine").await) })
}

#[test]
fn a_file_loaded_again_adds_nothing_force_loads_it_and_stdin_always_appends() {
    let lake = TestLake::new();
    let a = input(&lake, "a", 3);
    let b = input(&lake, "b", 2);
    lakehouse_ok(&["ingest", "--lake", lake.path(), &a], b"");
    assert_eq!(counts(&lake), (3, 1));

    // Again, beside a new file: only the new one is read.
    let out = lakehouse(&["ingest", "--lake", lake.path(), &a, &b], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("already loaded"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("read 3 appended 2"));
    assert_eq!(counts(&lake), (5, 2));

    // The same content under another name is the same input.
    let copy = lake.dir.path().join("copy.jsonl");
    std::fs::copy(&a, &copy).expect("copy");
    lakehouse_ok(
        &[
            "ingest",
            "--lake",
            lake.path(),
            copy.to_str().unwrap_or_default(),
        ],
        b"",
    );
    assert_eq!(counts(&lake), (5, 2));

    lakehouse_ok(&["ingest", "--lake", lake.path(), "--force", &a], b"");
    assert_eq!(counts(&lake), (8, 3));

    let line = event("s", "x:1", T0, "");
    for _ in 0..2 {
        lakehouse_ok(&["ingest", "--lake", lake.path()], line.as_bytes());
    }
    assert_eq!(counts(&lake), (10, 3));
}

/// Inputs that can be read only once (issue 22 §1): a pipe named as a file (`/dev/stdin`,
/// `<(zcat a.gz)`, a named pipe) loads every record, like `-`, and spends no identity, so
/// the same bytes as a real file still load after it. Hashing the pipe first read it empty.
#[test]
fn a_pipe_named_as_a_file_loads_and_spends_no_identity() {
    let lake = TestLake::new();
    let a = input(&lake, "a", 3);
    let bytes = std::fs::read(&a).expect("read");
    let out = lakehouse_ok(&["ingest", "--lake", lake.path(), "/dev/stdin"], &bytes);
    assert!(out.contains("appended 3 quarantined 1"), "{out}");
    assert_eq!(counts(&lake), (3, 1));

    // A named pipe another process writes to.
    let fifo = lake.dir.path().join("events.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(&fifo, &bytes))
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(["ingest", "--lake", lake.path()])
        .arg(&fifo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Read twice, a pipe would wait for a second writer for ever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ingest of a named pipe did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    writer.join().expect("join").expect("write to the pipe");
    assert_eq!(counts(&lake), (6, 2));

    // The file itself still loads, once.
    let out = lakehouse_ok(&["ingest", "--lake", lake.path(), &a], b"");
    assert!(out.contains("appended 3"), "{out}");
    let out = lakehouse_ok(&["ingest", "--lake", lake.path(), &a], b"");
    assert!(out.contains("appended 0"), "{out}");
    assert_eq!(counts(&lake), (9, 3));

    // A directory is not an input.
    let dir = lake.dir.path().to_str().expect("utf-8");
    let out = lakehouse(&["ingest", "--lake", lake.path(), dir], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("a directory"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_load_that_died_between_its_two_commits_completes_on_rerun() {
    let lake = TestLake::new();
    let a = input(&lake, "a", 3);
    // What `lakehouse ingest a.jsonl` does, killed after raw's commit and before
    // quarantine's.
    let digest = content_digest(std::fs::File::open(&a).expect("open")).expect("digest");
    let mut ingestor = Ingestor::open(&lake.lake, IngestOptions::default())
        .await
        .expect("open ingestor");
    let into = ingestor
        .begin_load(&load_app_id("jsonl", &digest), false)
        .await
        .expect("begin")
        .expect("not loaded yet");
    let file = std::io::BufReader::new(std::fs::File::open(&a).expect("open"));
    let mut lines = JsonLines::new(Box::new(file), a.clone());
    while let Some(record) = lines.next_record().expect("read") {
        ingestor.push_to(&record, into).await.expect("push");
    }
    let prepared = ingestor.prepare().await.expect("prepare");
    prepared
        .raw
        .commit(&prepared.raw_loads, CommitMetadata::records(3))
        .await
        .expect("raw commit");
    drop(prepared);
    assert_eq!(
        (lake.count("raw").await, lake.count("quarantine").await),
        (3, 0)
    );

    let path = lake.path().to_string();
    let out = tokio::task::spawn_blocking(move || lakehouse(&["ingest", "--lake", &path, &a], b""))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // raw is not appended twice; quarantine gets its record.
    assert_eq!(
        (lake.count("raw").await, lake.count("quarantine").await),
        (3, 1)
    );
}

#[test]
fn concurrent_loads_of_one_file_land_it_once() {
    let lake = TestLake::new();
    let a = input(&lake, "a", 50);
    for _ in 0..3 {
        let runs: Vec<_> = (0..3)
            .map(|_| {
                let (path, a) = (lake.path().to_string(), a.clone());
                std::thread::spawn(move || lakehouse(&["ingest", "--lake", &path, &a], b""))
            })
            .collect();
        for run in runs {
            let out = run.join().expect("join");
            let stderr = String::from_utf8_lossy(&out.stderr);
            // A run that lost the race fails cleanly, having committed nothing.
            assert!(
                out.status.success() || stderr.starts_with("error: a concurrent commit"),
                "{stderr}"
            );
        }
        assert_eq!(counts(&lake), (50, 1));
    }
}

#[test]
fn a_record_over_the_maximum_is_quarantined_by_its_first_bytes() {
    let lake = TestLake::new();
    // A 5 MiB event between two small ones, and one just over a 100-byte maximum.
    let big = format!(
        r#"{{"event_uuid":"big","event_name":"x:1","created_at":{T0},"pad":"{}"}}"#,
        "p".repeat(5 << 20)
    );
    let lines = [event("a", "x:1", T0, ""), big, event("b", "x:1", T0, "")].join("\n");
    let path = lake.dir.path().join("big.jsonl");
    std::fs::write(&path, lines).expect("write");
    lakehouse_ok(
        &[
            "ingest",
            "--lake",
            lake.path(),
            path.to_str().unwrap_or_default(),
        ],
        b"",
    );
    assert_eq!(counts(&lake), (2, 1));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let rows = runtime.block_on(lake.query(
        "SELECT length(encode(raw, 'hex')) / 2 AS kept, error, source_position FROM quarantine",
    ));
    assert_eq!(rows[0]["kept"], 4096);
    assert_eq!(rows[0]["source_position"], "2");
    let error = rows[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("record too large: more than 1048576 bytes"),
        "{error}"
    );

    let line = event("c", "x:1", T0, r#","pad":"0123456789""#);
    let out = lakehouse_ok(
        &["ingest", "--lake", lake.path(), "--max-record-bytes", "79"],
        line.as_bytes(),
    );
    assert!(out.contains("appended 0 quarantined 1"), "{out}");
    // Under a maximum below the 4,096 bytes quarantine keeps, the reason still holds.
    let long = event("d", "x:1", T0, &format!(r#","pad":"{}""#, "q".repeat(5000)));
    lakehouse_ok(
        &["ingest", "--lake", lake.path(), "--max-record-bytes", "100"],
        long.as_bytes(),
    );
    let rows = runtime.block_on(lake.query(
        "SELECT length(encode(raw, 'hex')) / 2 AS kept, error FROM quarantine \
         WHERE error LIKE '%more than 100 bytes%'",
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["kept"], 4096, "{rows:?}");
    assert!(
        rows[0]["error"]
            .as_str()
            .is_some_and(|e| e.ends_with("(the first 4096 are kept)")),
        "{rows:?}"
    );
    let refused = lakehouse(
        &["ingest", "--lake", lake.path(), "--max-record-bytes", "0"],
        b"",
    );
    assert!(!refused.status.success());
}
