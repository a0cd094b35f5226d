//! Backfill from archives (issue 14): gzip and zstd JSON Lines, local globs, commits every
//! so many bytes of input, and an interrupted backfill rerun to completion, each record
//! once.

use std::io::Write;

use crate::helpers::{TestLake, event, kill_after, lakehouse, lakehouse_ok};

const T0: i64 = 1_700_000_000;

/// `n` valid events (uuids `<tag>0`…) and one invalid line, as JSON Lines.
fn lines(tag: &str, n: usize) -> Vec<u8> {
    let mut text: String = (0..n)
        .map(|i| event(&format!("{tag}{i}"), "a:b", T0 + i as i64, ",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"") + "\n")
        .collect();
    text.push_str(&format!("not json {tag}\n"));
    text.into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

/// `ingest` of `glob` committing every 1 MiB of input.
fn commit_every_mib<'a>(lake: &'a TestLake, glob: &'a str) -> [&'a str; 6] {
    [
        "ingest",
        "--lake",
        lake.path(),
        "--commit-every-mb",
        "1",
        glob,
    ]
}

/// Runs `args`, which must succeed skipping `skipped` inputs as already loaded.
fn rerun_skips(args: &[&str], skipped: usize) {
    let out = lakehouse(args, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("already loaded").count(),
        skipped,
        "{stderr}"
    );
}

fn counts(lake: &TestLake) -> (i64, i64, i64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let distinct = lake
            .query("SELECT COUNT(DISTINCT event_uuid) AS n FROM raw")
            .await[0]["n"]
            .as_i64()
            .expect("count");
        (
            lake.count("raw").await,
            distinct,
            lake.count("quarantine").await,
        )
    })
}

#[test]
fn gzip_zstd_and_plain_by_their_bytes_each_record_once_however_often_loaded() {
    let lake = TestLake::new();
    let dir = lake.dir.path().join("archive");
    std::fs::create_dir_all(&dir).expect("dir");
    // Two gzip members in one file, as `cat a.gz b.gz` makes; zstd without an extension.
    let mut members = gzip(&lines("g", 50));
    members.extend(gzip(&lines("h", 50)));
    std::fs::write(dir.join("2025-11-24-a.jsonl.gz"), members).expect("write");
    let zstd = zstd::encode_all(&lines("z", 70)[..], 3).expect("zstd");
    std::fs::write(dir.join("2025-11-24-b"), zstd).expect("write");
    std::fs::write(dir.join("2025-11-24-c.jsonl"), lines("p", 30)).expect("write");

    // A quoted glob, as cron runs it: the CLI expands it, in name order.
    let glob = format!("{}/2025-11-24-*", dir.display());
    let out = lakehouse_ok(&["ingest", "--lake", lake.path(), &glob], b"");
    assert!(out.contains("read 204 appended 200 quarantined 4"), "{out}");
    assert_eq!(counts(&lake), (200, 200, 4));
    // The source names the file each row came from, compressed or not.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sources = runtime.block_on(
        lake.query("SELECT source, COUNT(*) AS n FROM raw GROUP BY source ORDER BY source"),
    );
    let names: Vec<(String, i64)> = sources
        .iter()
        .map(|r| {
            let source = r["source"].as_str().expect("source");
            let name = source.rsplit('/').next().expect("name").to_string();
            (name, r["n"].as_i64().expect("n"))
        })
        .collect();
    assert_eq!(
        names,
        [
            ("2025-11-24-a.jsonl.gz".to_string(), 100),
            ("2025-11-24-b".to_string(), 70),
            ("2025-11-24-c.jsonl".to_string(), 30)
        ]
    );

    // Again: every input is already loaded.
    rerun_skips(&["ingest", "--lake", lake.path(), &glob], 3);
    assert_eq!(counts(&lake), (200, 200, 4));
}

#[test]
fn a_name_that_lies_a_corrupt_archive_and_an_empty_glob_fail_with_a_clear_error() {
    let lake = TestLake::new();
    let dir = lake.dir.path();
    let lie = dir.join("plain.gz");
    std::fs::write(&lie, lines("l", 3)).expect("write");
    let mut cut = gzip(&lines("c", 500));
    cut.truncate(cut.len() / 2);
    let cut_path = dir.join("cut.jsonl.gz");
    std::fs::write(&cut_path, cut).expect("write");
    for (input, says) in [
        (
            lie.display().to_string(),
            "the name says gzip but the content is uncompressed",
        ),
        (cut_path.display().to_string(), "cut.jsonl.gz"),
        (format!("{}/*.zst", dir.display()), "no file matches"),
    ] {
        let out = lakehouse(&["ingest", "--lake", lake.path(), &input], b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{input}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{stderr}"
        );
    }
    // Nothing was committed by the failed runs.
    assert_eq!(counts(&lake), (0, 0, 0));
}

#[test]
fn an_interrupted_backfill_keeps_its_commits_and_a_rerun_loads_the_rest_once() {
    let lake = TestLake::new();
    let dir = lake.dir.path().join("archive");
    std::fs::create_dir_all(&dir).expect("dir");
    // Three inputs of over 1 MiB each, then a corrupt one, then one more.
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.jsonl")), lines(tag, 7_000)).expect("write");
    }
    let mut cut = gzip(&lines("d", 7_000));
    cut.truncate(cut.len() / 2);
    std::fs::write(dir.join("3.jsonl.gz"), &cut).expect("write");
    std::fs::write(dir.join("4.jsonl.gz"), gzip(&lines("e", 10))).expect("write");
    let glob = format!("{}/*", dir.display());

    let args = commit_every_mib(&lake, &glob);
    let out = lakehouse(&args, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // Each input past 1 MiB was committed on its own before the corrupt one failed the run.
    assert_eq!(stderr.matches("committed ").count(), 3, "{stderr}");
    assert!(
        stderr.contains("error: reading ") && stderr.contains("3.jsonl.gz"),
        "{stderr}"
    );
    assert_eq!(counts(&lake), (21_000, 21_000, 3));

    // The operator replaces the corrupt archive and reruns the same command.
    std::fs::write(dir.join("3.jsonl.gz"), gzip(&lines("d", 7_000))).expect("write");
    rerun_skips(&args, 3);
    assert_eq!(counts(&lake), (28_010, 28_010, 5));
}

/// SIGKILL at spread-out moments of a backfill that commits every 1 MiB: the same command
/// again always ends with every record once, whatever was committed before the kill.
#[test]
fn a_backfill_killed_anywhere_reruns_to_every_record_once() {
    let lake = TestLake::new();
    let dir = lake.dir.path().join("archive");
    std::fs::create_dir_all(&dir).expect("dir");
    for (i, tag) in ["a", "b", "c", "d"].iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.jsonl.gz")), gzip(&lines(tag, 7_000))).expect("write");
        // Over 1 MiB as stored: each is a commit of its own.
        std::fs::write(
            dir.join(format!("{i}-plain.jsonl")),
            lines(&format!("{tag}p"), 7_000),
        )
        .expect("write");
    }
    let glob = format!("{}/*", dir.display());
    let args = commit_every_mib(&lake, &glob);
    kill_after(&args, &[50, 400, 900, 1_500, 2_500]);
    lakehouse_ok(&args, b"");
    assert_eq!(counts(&lake), (56_000, 56_000, 8));
}
