//! Rebuilding the key index, resumably (issue 23): a rebuild commits a chunk of staging's
//! files at a time; one interrupted after any commit goes on from there, at the version it
//! was building even after staging moved on, or starts over when that version's files are
//! gone; every key is indexed once.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use lakehouse_compact::CompactOptions;
use lakehouse_compact::keys::check_keys;
use lakehouse_compact::maintain::{MaintenanceOptions, maintain};
use lakehouse_compact::optimize::RawGuard;
use lakehouse_lake::Table;

use crate::helpers::{TestLake, event, lakehouse, lakehouse_ok, run_bench_script};

const T0: i64 = 1_700_000_000;

/// 20 types × 30 events: 20 staging files of 30 rows.
fn events(prefix: &str) -> Vec<String> {
    (0..600)
        .map(|i| {
            event(
                &format!("{prefix}{i}"),
                &format!("t{}:x", i % 20),
                T0 + i,
                "",
            )
        })
        .collect()
}

fn rebuild(lake: &TestLake) -> String {
    let args = [
        "keys",
        "update",
        "--lake",
        lake.path(),
        "--max-rows-per-commit",
        "100",
    ];
    lakehouse_ok(&args, b"")
}

/// Removes the index's last `n` commits, as if the rebuild had died before them (the
/// files they named stay behind, unreferenced).
fn lose_last_commits(lake: &TestLake, n: usize) {
    let log = lake.dir.path().join("staging_keys/_delta_log");
    let mut commits: Vec<PathBuf> = std::fs::read_dir(&log)
        .expect("log")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    for commit in commits.iter().rev().take(n) {
        std::fs::remove_file(commit).expect("remove commit");
    }
}

fn remove_index(lake: &TestLake) {
    std::fs::remove_dir_all(lake.dir.path().join("staging_keys")).expect("remove index");
}

async fn assert_indexed_once(lake: &TestLake, rows: u64) {
    let check = check_keys(&lake.lake).await.expect("check");
    assert!(check.is_exact(), "{check:?}");
    assert_eq!(
        (check.index_keys, check.index_entries),
        (rows, rows),
        "{check:?}"
    );
}

fn no_index_yet(path: &Path) {
    let out = lakehouse(&["keys", "check", "--lake", &path.to_string_lossy()], b"");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: no key index"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rebuild_goes_on_from_its_last_commit_and_indexes_each_key_once() {
    let lake = TestLake::new();
    lake.ingest(&events("a")).await;
    lake.compact().await;

    // 100 rows a commit: 4 files (120 rows) each, 5 commits after the one that begins.
    remove_index(&lake);
    let out = rebuild(&lake);
    assert!(out.contains("(build: 20 files in 6 commits)"), "{out}");
    assert_indexed_once(&lake, 600).await;

    // Died before its last two commits: not trusted, then finished from file 12.
    lose_last_commits(&lake, 2);
    no_index_yet(lake.dir.path());
    let status = lakehouse_ok(&["status", "--lake", lake.path()], b"");
    assert!(
        status.contains("rebuilding: 12 files of staging v"),
        "{status}"
    );
    let out = rebuild(&lake);
    assert!(
        out.contains("(build: 20 files in 2 commits, resumed after 12)")
            && out.contains("files read 8 entries added 240"),
        "{out}"
    );
    assert_indexed_once(&lake, 600).await;

    // Died again, and staging moved on before the next update: compaction finishes the
    // build at the version it was building, then indexes what came since.
    lose_last_commits(&lake, 2);
    lake.ingest(&events("b")).await;
    let report = lake.compact().await;
    let keys = report.keys.expect("keys");
    assert_eq!(keys.build_resumed_after, Some(12), "{keys:?}");
    assert_eq!(keys.entries_added, 240 + 600, "{keys:?}");
    assert_indexed_once(&lake, 1_200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_whose_version_was_vacuumed_starts_over_at_the_head() {
    let lake = TestLake::new();
    // Two merges, two files per partition.
    let dedup_only = CompactOptions {
        skip_maintenance: true,
        ..CompactOptions::default()
    };
    lake.ingest(&events("a")).await;
    lake.compact_with(dedup_only.clone()).await;
    lake.ingest(&events("b")).await;
    lake.compact_with(dedup_only).await;
    remove_index(&lake);
    let out = rebuild(&lake);
    assert!(out.contains("(build: 40 files in 11 commits)"), "{out}");
    lose_last_commits(&lake, 2);

    // Staging's files of that version bin-packed and deleted at once.
    let staging = lake.lake.open(Table::Staging).await.expect("staging");
    let options = MaintenanceOptions {
        target_file_size: NonZeroU64::new(128 << 20).expect("size"),
        recent: None,
        writer_properties: Table::Staging.writer_properties(),
        retention: chrono::Duration::zero(),
        vacuum_full: false,
    };
    let (_, packed) = maintain(staging, Table::Staging, &RawGuard::default(), &options)
        .await
        .expect("maintain");
    assert_eq!((packed.files_compacted, packed.files_written), (40, 20));

    let out = rebuild(&lake);
    assert!(out.contains("(build: 20 files in 11 commits)"), "{out}");
    assert_indexed_once(&lake, 1_200).await;
}

fn plan(lake: &TestLake) -> serde_json::Value {
    let args = [
        "keys",
        "build",
        "--plan",
        "--lake",
        lake.path(),
        "--rows-per-chunk",
        "100",
        "--format",
        "json",
    ];
    serde_json::from_str(&lakehouse_ok(&args, b"")).expect("plan json")
}

fn chunk_args(lake: &TestLake, as_of: u64, chunk: &serde_json::Value) -> Vec<String> {
    let files = format!("{}..{}", chunk["from"], chunk["to"]);
    ["keys", "build", "--lake", lake.path(), "--as-of"]
        .iter()
        .map(|s| s.to_string())
        .chain([as_of.to_string(), "--files".into(), files])
        .chain(["--format".into(), "json".into()])
        .collect()
}

/// Runs each chunk in its own process, all at once; returns their outcomes.
fn run_at_once(runs: Vec<Vec<String>>) -> Vec<String> {
    let runs: Vec<_> = runs
        .into_iter()
        .map(|args| {
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out: serde_json::Value =
                    serde_json::from_str(&lakehouse_ok(&args, b"")).expect("outcome json");
                out["outcome"].as_str().expect("outcome").to_string()
            })
        })
        .collect();
    runs.into_iter()
        .map(|run| run.join().expect("chunk"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_in_chunks_run_at_once_indexes_each_key_once() {
    let lake = TestLake::new();
    lake.ingest(&events("a")).await;
    lake.compact().await;
    let trusted = plan(&lake);
    assert_eq!(trusted["as_of"], serde_json::Value::Null, "{trusted}");

    // The plan starts the build: 20 files of 30 rows in chunks of 4 files.
    remove_index(&lake);
    let first = plan(&lake);
    assert_eq!(
        (&first["begun"], &first["files"], &first["files_done"]),
        (&true.into(), &20.into(), &0.into()),
        "{first}"
    );
    let as_of = first["as_of"].as_u64().expect("as_of");
    let chunks = first["chunks"].as_array().expect("chunks").clone();
    assert_eq!(chunks.len(), 5, "{first}");
    no_index_yet(lake.dir.path());

    // Planned again (a retry after a lost response): the same build, the same chunks.
    let again = plan(&lake);
    assert_eq!(
        (&again["begun"], &again["chunks"]),
        (&false.into(), &first["chunks"])
    );

    // Every chunk at once, the first one twice, and a whole `keys update` beside them
    // (asking for other chunk sizes: it cuts the build's own): each chunk commits once.
    let mut runs: Vec<Vec<String>> = chunks.iter().map(|c| chunk_args(&lake, as_of, c)).collect();
    runs.push(chunk_args(&lake, as_of, &chunks[0]));
    let path = lake.path().to_string();
    let update = std::thread::spawn(move || {
        let args = [
            "keys",
            "update",
            "--lake",
            &path,
            "--max-rows-per-commit",
            "7",
        ];
        lakehouse_ok(&args, b"")
    });
    let outcomes = run_at_once(runs);
    let updated = update.join().expect("update");
    let indexed = outcomes.iter().filter(|o| *o == "indexed").count();
    assert!((1..=5).contains(&indexed), "{outcomes:?} {updated}");
    assert!(
        outcomes
            .iter()
            .all(|o| ["indexed", "already_done", "lost", "not_under_way"].contains(&o.as_str())),
        "{outcomes:?}"
    );

    // Nothing pending; the next update records the build if no chunk could, and a chunk
    // run again after it commits nothing.
    let done = plan(&lake);
    assert!(
        done["as_of"].is_null()
            || (done["files_done"] == 20 && done["chunks"] == serde_json::json!([])),
        "{done}"
    );
    rebuild(&lake);
    assert_indexed_once(&lake, 600).await;
    let late = run_at_once(vec![chunk_args(&lake, as_of, &chunks[2])]);
    assert_eq!(late, ["not_under_way"]);
    assert_indexed_once(&lake, 600).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_in_chunks_left_half_done_is_finished_by_compaction() {
    let lake = TestLake::new();
    lake.ingest(&events("a")).await;
    lake.compact().await;
    remove_index(&lake);
    let first = plan(&lake);
    let as_of = first["as_of"].as_u64().expect("as_of");
    let chunks = first["chunks"].as_array().expect("chunks").clone();

    // Two chunks land; a third dies before its commit (its files are left unreferenced).
    let outcomes = run_at_once(vec![
        chunk_args(&lake, as_of, &chunks[1]),
        chunk_args(&lake, as_of, &chunks[3]),
        chunk_args(&lake, as_of, &chunks[4]),
    ]);
    assert_eq!(outcomes, ["indexed"; 3]);
    lose_last_commits(&lake, 1);
    let left = plan(&lake);
    assert_eq!(left["files_done"], 8, "{left}");
    assert_eq!(left["chunks"].as_array().map(Vec::len), Some(3), "{left}");

    // A chunk outside the build's files is refused.
    let out = lakehouse(
        &[
            "keys",
            "build",
            "--lake",
            lake.path(),
            "--as-of",
            &as_of.to_string(),
            "--files",
            "18..21",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.starts_with(
                "error: a chunk of the key index's build: files 18..21 of a build of 20 files"
            ),
        "{stderr}"
    );

    // Staging moves on; compaction goes on with the build at its version, then indexes
    // what came since.
    lake.ingest(&events("b")).await;
    let report = lake.compact().await;
    let keys = report.keys.expect("keys");
    assert_eq!(keys.build_resumed_after, Some(8), "{keys:?}");
    // The build's own chunks (4 files), not compaction's 1M rows a commit: the three left.
    assert_eq!(keys.build_commits, 3, "{keys:?}");
    assert_eq!(keys.entries_added, 360 + 600, "{keys:?}");
    assert_indexed_once(&lake, 1_200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_hot_window_merges_go_on_while_the_index_is_built() {
    const YEAR: i64 = 365 * 86_400;
    let lake = TestLake::new();
    let mut staged = events("a");
    staged.push(event("old", "t1:x", T0 - YEAR, ""));
    lake.ingest(&staged).await;
    lake.compact().await;
    remove_index(&lake);
    let first = plan(&lake);
    assert_eq!(first["begun"], true, "{first}");

    // Ten new events, a newer copy of a5 a minute later (within the window's day), and a
    // copy of `old` a year later (outside it).
    let mut lines: Vec<String> = (0..10)
        .map(|i| event(&format!("n{i}"), "t1:x", T0 + i, ""))
        .collect();
    lines.push(event("a5", "t5:x", T0 + 5 + 60, r#","v":2"#));
    lines.push(event("old", "t1:x", T0, ""));
    lake.ingest(&lines).await;
    let report = lake
        .compact_with(CompactOptions {
            hot_hours: Some(1),
            skip_maintenance: true,
            ..CompactOptions::default()
        })
        .await;
    let merged = report.total();
    assert_eq!(merged.searched_while_building, Some(1), "{merged:?}");
    assert_eq!(
        (merged.inserted, merged.updated, merged.index_pages),
        (11, 1, 0),
        "{merged:?}"
    );
    // The update after the merge finished the build and indexed the merge's rows.
    let keys = report.keys.expect("keys");
    assert!(keys.rebuilt && keys.build_commits >= 5, "{keys:?}");
    let check = check_keys(&lake.lake).await.expect("check");
    assert!(check.is_exact(), "{check:?}");
    assert_eq!(
        lake.count("staging").await,
        612,
        "`old` twice until the sweep"
    );

    // The next round trusts the index again; the sweep leaves the year-later `old`.
    lake.ingest(&[event("n0", "t1:x", T0 + 100, "")]).await;
    let report = lake
        .compact_with(CompactOptions {
            hot_hours: Some(1),
            ..CompactOptions::default()
        })
        .await;
    let merged = report.total();
    assert_eq!(
        (merged.searched_while_building, merged.updated),
        (None, 1),
        "{merged:?}"
    );
    lakehouse_ok(&["keys", "sweep", "--lake", lake.path()], b"");
    assert_eq!(lake.count("staging").await, 611);
    let old = lake
        .query("SELECT created_at FROM staging WHERE event_uuid = 'old'")
        .await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0]["created_at"], T0);
}

/// `tests/bench/key_build.sh` (`make bench_key_build`) at a small size, through the CLI: it
/// keeps running, and both builds at each size check exact.
#[test]
fn the_key_build_benchmark_runs_small_and_every_build_is_exact() {
    let stdout = run_bench_script(
        "key_build.sh",
        &[
            ("BENCH_SIZES", "1 2"),
            ("BENCH_STEP", "2000"),
            ("BENCH_CHUNK_ROWS", "500"),
        ],
    );
    let exact: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("exact: "))
        .collect();
    assert_eq!(
        exact,
        [
            "exact: 2000 entries",
            "exact: 2000 entries",
            "exact: 4000 entries",
            "exact: 4000 entries"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("staged=4000 files=700 chunks=8"),
        "{stdout}"
    );
}
