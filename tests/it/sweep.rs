//! The sweep (`lakehouse keys sweep`): every uuid staged more than once, whatever left it
//! there, resolved to its winning copy over all of staging, exactly once (issue 23).

use lakehouse_compact::CompactOptions;
use lakehouse_compact::candidates::Candidates;
use lakehouse_compact::keys::check_keys;
use lakehouse_compact::sweep::{Scope, SweepReport, sweep};
use lakehouse_lake::files::live_files;
use lakehouse_lake::{RunRange, Table};
use lakehouse_query::duplicates::duplicated_events;
use lakehouse_query::status::keys_health;

use crate::helpers::{TestLake, event, kill_after, lakehouse, lakehouse_ok};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

/// Staging with copies the date search left: `h` and `k` twice each, 30 days apart (`k`'s
/// later copy arrived first), `s` once.
async fn lake_with_copies() -> TestLake {
    let lake = TestLake::new();
    let horizon = CompactOptions {
        horizon_days: Some(7),
        skip_maintenance: true,
        ..CompactOptions::default()
    };
    lake.ingest(&[
        event("h", "x:1", T0, r#","v":"old""#),
        event("k", "y:1", T0 + 30 * DAY, r#","v":"new""#),
        event("s", "x:1", T0, ""),
    ])
    .await;
    lake.compact_with(horizon.clone()).await;
    // One round each: a round searches around every date it brings.
    lake.ingest(&[event("h", "x:1", T0 + 30 * DAY, r#","v":"new""#)])
        .await;
    lake.compact_with(horizon.clone()).await;
    lake.ingest(&[event("k", "y:1", T0, r#","v":"old""#)]).await;
    lake.compact_with(horizon).await;
    assert_eq!(
        lake.count("staging").await,
        5,
        "the date search kept copies"
    );
    lake
}

/// The copies DataFusion finds with `sql/queries/duplicated_events.sql`.
async fn found_by_sql(lake: &TestLake) -> Candidates {
    let found = duplicated_events(&lake.lake)
        .await
        .expect("query")
        .expect("staging");
    Candidates::from_batches(&found.batches, found.staging_version).expect("candidates")
}

async fn swept(lake: &TestLake) -> SweepReport {
    sweep(
        &lake.lake,
        &Scope::All {
            rows_per_pass: 1_000,
        },
        1_000,
    )
    .await
    .expect("sweep")
}

#[tokio::test]
async fn a_sweep_leaves_the_latest_copy_of_each_uuid_and_a_rerun_removes_nothing() {
    let lake = lake_with_copies().await;
    let report = swept(&lake).await;
    assert_eq!(
        (report.duplicated_events, report.rows_removed),
        (2, 2),
        "{report:?}"
    );
    assert_eq!(report.rows_read, 5);
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 3);
    assert_eq!(state["h"].0, T0 + 30 * DAY);
    assert_eq!(state["k"].0, T0 + 30 * DAY);
    assert!(state["h"].1.contains("new") && state["k"].1.contains("new"));

    let again = swept(&lake).await;
    assert_eq!((again.duplicated_events, again.rows_removed), (0, 0));
    assert!(again.committed > report.committed, "each sweep is recorded");
    assert_eq!(lake.count("staging").await, 3);

    // The sweep brings the index up to its commit: the rewritten files' rows are carried,
    // not indexed again, and the removed copies were older than what the index holds.
    assert_eq!(again.keys.indexed, again.committed.expect("committed"));
    let check = check_keys(&lake.lake).await.expect("check");
    assert!(check.is_exact(), "{check:?}");
    // `status` shows the last sweep.
    let staging = lake.lake.open(Table::Staging).await.expect("staging");
    let health = keys_health(&staging, None).await.expect("health");
    assert_eq!(health.swept, Some(again.swept));
}

#[tokio::test]
async fn copies_in_two_type_ranges_become_one_row() {
    let lake = TestLake::new();
    let (first, second) = (
        RunRange::types(0, 2).expect("range"),
        RunRange::types(1, 2).expect("range"),
    );
    let types: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    let a = types
        .iter()
        .find(|t| first.holds_type(t))
        .expect("a type of range 0");
    let b = types
        .iter()
        .find(|t| second.holds_type(t))
        .expect("a type of range 1");
    // The producer changed the event's type: each range stages its own copy.
    lake.ingest(&[
        event("u", &format!("{a}:x"), T0, ""),
        event("u", &format!("{b}:x"), T0 + 60, ""),
    ])
    .await;
    for range in [first, second] {
        lake.compact_with(CompactOptions {
            range: Some(range),
            ..CompactOptions::default()
        })
        .await;
    }
    assert_eq!(lake.count("staging").await, 2, "one row per range");
    let report = swept(&lake).await;
    assert_eq!(report.rows_removed, 1);
    let rows = lake
        .query("SELECT event_type, created_at FROM staging")
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["event_type"], b.as_str());
    assert_eq!(rows[0]["created_at"], T0 + 60);
}

#[test]
fn sweeps_at_once_and_sweeps_killed_anywhere_converge_to_one_row_per_uuid() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let lake = runtime.block_on(lake_with_copies());
    // Killed at any point, several times: a commit lands whole or not at all.
    kill_after(
        &["keys", "sweep", "--lake", lake.path(), "--sql"],
        &[1, 10, 40, 100],
    );
    kill_after(
        &["keys", "sweep", "--lake", lake.path()],
        &[1, 5, 15, 40, 80, 150],
    );
    // Two at once: each removes the copies, or finds them gone, or loses the race for
    // the rewritten files and plans again.
    let reports: Vec<SweepReport> = runtime.block_on(async {
        // And one sweeping the copies the query found, on a list that may be stale.
        let found = Scope::Found(found_by_sql(&lake).await);
        let (a, b, c) = tokio::join!(
            sweep(
                &lake.lake,
                &Scope::All {
                    rows_per_pass: 1_000
                },
                1_000
            ),
            sweep(
                &lake.lake,
                &Scope::All {
                    rows_per_pass: 1_000
                },
                1_000
            ),
            sweep(&lake.lake, &found, 1_000)
        );
        vec![
            a.expect("sweep a"),
            b.expect("sweep b"),
            c.expect("sweep c"),
        ]
    });
    assert!(
        reports.iter().map(|r| r.rows_removed).sum::<u64>() <= 2,
        "{reports:?}"
    );
    let state = runtime.block_on(lake.staging_state());
    assert_eq!(state.len(), 3);
    assert_eq!(runtime.block_on(lake.count("staging")), 3);
    assert_eq!(state["h"].0, T0 + 30 * DAY);
    assert_eq!(state["k"].0, T0 + 30 * DAY);
    let out = lakehouse_ok(&["keys", "sweep", "--lake", lake.path()], b"");
    assert!(
        out.contains("0 events staged more than once, 0 rows removed"),
        "{out}"
    );
    let status = lakehouse_ok(&["status", "--lake", lake.path()], b"");
    assert!(
        status.contains("sweep       last swept staging v"),
        "{status}"
    );
}

#[tokio::test]
async fn a_staging_larger_than_a_pass_is_swept_in_passes_with_the_same_result() {
    let lake = lake_with_copies().await;
    let report = sweep(&lake.lake, &Scope::All { rows_per_pass: 2 }, 1_000)
        .await
        .expect("sweep");
    assert_eq!(report.passes, 3);
    assert_eq!(report.rows_read, 15, "each pass reads the uuids again");
    assert_eq!((report.duplicated_events, report.rows_removed), (2, 2));
    assert_eq!(lake.count("staging").await, 3);
}

/// The newest commit file of a table's log.
fn last_commit(table_dir: &std::path::Path) -> std::path::PathBuf {
    let mut commits: Vec<_> = std::fs::read_dir(table_dir.join("_delta_log"))
        .expect("log")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    commits.pop().expect("a commit")
}

#[tokio::test]
async fn a_check_of_an_index_whose_version_was_vacuumed_says_to_update_it() {
    let lake = lake_with_copies().await;
    swept(&lake).await;
    // The index's update after the sweep lost, and the files the sweep removed vacuumed.
    std::fs::remove_file(last_commit(&lake.dir.path().join("staging_keys"))).expect("remove");
    let sweep_commit = std::fs::read_to_string(last_commit(&lake.dir.path().join("staging")))
        .expect("read the sweep's commit");
    let mut vacuumed = 0;
    for line in sweep_commit.lines() {
        let action: serde_json::Value = serde_json::from_str(line).expect("action");
        if let Some(path) = action["remove"]["path"].as_str() {
            let path = lake.dir.path().join("staging").join(path);
            std::fs::remove_file(path).expect("vacuum");
            vacuumed += 1;
        }
    }
    assert_eq!(vacuumed, 2, "the sweep rewrote two files");
    let out = crate::helpers::lakehouse(&["keys", "check", "--lake", lake.path()], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("error: the key index holds staging v")
            && stderr.contains("run `lakehouse keys update`"),
        "{stderr}"
    );
    lakehouse_ok(&["keys", "update", "--lake", lake.path()], b"");
    lakehouse_ok(&["keys", "check", "--lake", lake.path()], b"");
}

#[tokio::test]
async fn copies_the_query_found_are_swept_reading_only_their_partitions() {
    let lake = lake_with_copies().await;
    // An event in a partition no copy is in.
    lake.ingest(&[event("z", "z:1", T0 + 90 * DAY, "")]).await;
    lake.compact().await;
    let staging = lake.lake.open(Table::Staging).await.expect("staging");
    let files = live_files(&staging).expect("files").len() as u64;
    let found = found_by_sql(&lake).await;
    assert_eq!((found.rows, found.events()), (4, 2), "h and k, twice each");
    assert_eq!(found.as_of, staging.version().expect("version"));

    let report = sweep(&lake.lake, &Scope::Found(found.clone()), 1_000)
        .await
        .expect("sweep");
    assert_eq!(
        (report.duplicated_events, report.rows_removed),
        (2, 2),
        "{report:?}"
    );
    assert_eq!(report.rows_read, 5, "not z's partition: {report:?}");
    assert!(report.files_read < files, "{report:?} of {files} files");
    assert_eq!(report.swept, found.as_of);
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 4);
    assert!(state["h"].1.contains("new") && state["k"].1.contains("new"));

    // The same list again (a retry after a lost response): the copies are gone.
    let again = sweep(&lake.lake, &Scope::Found(found), 1_000)
        .await
        .expect("sweep");
    assert_eq!((again.duplicated_events, again.rows_removed), (0, 0));
    assert_eq!(again.swept, report.swept);
    assert_eq!(lake.count("staging").await, 4);
    assert_eq!(found_by_sql(&lake).await.rows, 0);
    let check = check_keys(&lake.lake).await.expect("check");
    assert!(check.is_exact(), "{check:?}");
}

fn sweep_args<'a>(lake: &'a str, candidates: &'a str, as_of: &'a str) -> Vec<&'a str> {
    let lake = ["keys", "sweep", "--lake", lake];
    [&lake[..], &["--candidates", candidates, "--as-of", as_of]].concat()
}

#[test]
fn a_sweep_reads_the_query_result_as_csv_from_stdin_or_a_file_and_refuses_a_wrong_one() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let lake = runtime.block_on(lake_with_copies());
    let sql = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql/queries/duplicated_events.sql"
    );
    let csv = lakehouse_ok(
        &[
            "query",
            "--lake",
            lake.path(),
            "--format",
            "csv",
            "--file",
            sql,
        ],
        b"",
    );
    let version = runtime
        .block_on(lake.lake.open(Table::Staging))
        .expect("staging")
        .version()
        .expect("version")
        .to_string();
    let refused = |args: &[&str], stdin: &[u8], says: &str| {
        let out = lakehouse(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{stderr}"
        );
    };
    refused(
        &sweep_args(lake.path(), "-", "999"),
        csv.as_bytes(),
        "found as of staging v999, but staging is at v",
    );
    refused(
        &sweep_args(lake.path(), "-", "0"),
        b"uuid,date,type\nh,2023-11-14,x\n",
        "expected event_uuid,event_date,event_type",
    );
    refused(
        &["keys", "sweep", "--lake", lake.path(), "--candidates", "-"],
        b"",
        "--as-of",
    );
    assert_eq!(runtime.block_on(lake.count("staging")), 5, "nothing swept");

    let out = lakehouse_ok(&sweep_args(lake.path(), "-", &version), csv.as_bytes());
    assert!(out.contains("candidates: 4 copies of 2 events"), "{out}");
    assert!(
        out.contains("2 events staged more than once, 2 rows removed"),
        "{out}"
    );
    // The same result from a file, after it was swept: nothing left to remove.
    let file = lake.dir.path().join("duplicates.csv");
    std::fs::write(&file, &csv).expect("write");
    let file = file.to_str().expect("utf-8");
    let out = lakehouse_ok(&sweep_args(lake.path(), file, &version), b"");
    assert!(
        out.contains("0 events staged more than once, 0 rows removed"),
        "{out}"
    );
    let out = lakehouse_ok(&["keys", "sweep", "--lake", lake.path(), "--sql"], b"");
    assert!(out.contains("candidates: 0 copies of 0 events"), "{out}");
    assert_eq!(runtime.block_on(lake.count("staging")), 3);
}

#[tokio::test]
async fn a_copy_a_round_moved_after_the_query_ran_is_still_swept() {
    let lake = lake_with_copies().await;
    let found = found_by_sql(&lake).await;
    // A newer copy of `h` arrives: its round replaces one of `h`'s copies with a row in a
    // partition the list does not name.
    lake.ingest(&[event("h", "x:1", T0 + 60 * DAY, r#","v":"newest""#)])
        .await;
    lake.compact().await;
    assert_eq!(lake.count("staging").await, 5, "h is still staged twice");
    let report = sweep(&lake.lake, &Scope::Found(found), 1_000)
        .await
        .expect("sweep");
    assert_eq!(report.rows_removed, 2, "{report:?}");
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 3);
    assert_eq!(state["h"].0, T0 + 60 * DAY);
    assert!(state["h"].1.contains("newest"));
}
