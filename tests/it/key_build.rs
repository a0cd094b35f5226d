//! Rebuilding the key index, resumably (issue 23): a rebuild commits a chunk of staging's
//! files at a time; one interrupted after any commit goes on from there, at the version it
//! was building even after staging moved on, or starts over when that version's files are
//! gone; every key is indexed once.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use lakehouse_compact::CompactOptions;
use lakehouse_compact::keys::check_keys;
use lakehouse_compact::maintain::{MaintenanceOptions, RawGuard, maintain};
use lakehouse_lake::Table;

use crate::helpers::{TestLake, event, lakehouse, lakehouse_ok};

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

    // 100 rows a commit: 4 files (120 rows) each, 5 commits.
    remove_index(&lake);
    let out = rebuild(&lake);
    assert!(out.contains("(build: 20 files in 5 commits)"), "{out}");
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
    assert!(out.contains("(build: 40 files in 10 commits)"), "{out}");
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
    assert!(out.contains("(build: 20 files in 10 commits)"), "{out}");
    assert_indexed_once(&lake, 1_200).await;
}
