//! The sweep by the key index (`lakehouse keys sweep --by-index`): the rows staged since
//! the last sweep, looked up in the index, and only the partitions it names read, whatever
//! the index's run merges did meanwhile (issue 23).

use lakehouse_compact::CompactOptions;
use lakehouse_compact::keys::check_keys;
use lakehouse_compact::sweep::{Scope, SweepReport, sweep};
use lakehouse_lake::Table;
use lakehouse_lake::files::live_files;

use crate::helpers::{TestLake, event, lakehouse, lakehouse_ok, run_bench_script};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

async fn by_index(lake: &TestLake) -> SweepReport {
    sweep(&lake.lake, &Scope::ByIndex, 1_000)
        .await
        .expect("sweep by the index")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_by_the_index_resolves_what_rounds_left_reading_what_arrived() {
    let lake = TestLake::new();
    // 20 types × 30 events on one day, staged and swept once: the record later sweeps
    // go from.
    let base: Vec<String> = (0..600)
        .map(|i| event(&format!("a{i}"), &format!("t{}:x", i % 20), T0 + i, ""))
        .collect();
    lake.ingest(&base).await;
    lake.compact().await;
    lakehouse_ok(&["keys", "sweep", "--lake", lake.path()], b"");

    // Four rounds with a window of 0 hours, each 200 fresh events of one partition and
    // a copy it leaves beside its row: a3 a year later (another date), a5 a minute later
    // (its own partition), and n1 twice, ten and eleven days on.
    let copies = [
        event("a3", "t3:x", T0 + 3 + 365 * DAY, r#","v":2"#),
        event("a5", "t5:x", T0 + 5 + 60, r#","v":2"#),
        event("n1", "t1:x", T0 + 10 * DAY, ""),
        event("n1", "t1:x", T0 + 11 * DAY, r#","v":2"#),
    ];
    let window_of_none = CompactOptions {
        hot_hours: Some(0),
        skip_maintenance: true,
        ..CompactOptions::default()
    };
    for (round, copy) in copies.into_iter().enumerate() {
        let mut lines: Vec<String> = (0..200)
            .map(|i| event(&format!("f{round}-{i}"), "t0:x", T0 + 200 * DAY + i, ""))
            .collect();
        lines.push(copy);
        lake.ingest(&lines).await;
        lake.compact_with(window_of_none.clone()).await;
    }
    assert_eq!(lake.count("staging").await, 600 + 800 + 4);

    // Maintenance merges the runs of every bucket holding four or more (nearly all): a
    // merge that kept one entry per key and type would drop a3's older entry (its copy
    // has the same type).
    let keys = lake.lake.open(Table::Keys).await.expect("keys");
    assert!(live_files(&keys).expect("files").len() > 64 * 4);
    lake.compact().await;
    let keys = lake.lake.open(Table::Keys).await.expect("keys");
    let merged = live_files(&keys).expect("files").len();
    assert!(merged < 64 + 8, "merged: {merged}");

    let report = by_index(&lake).await;
    assert_eq!(
        (report.duplicated_events, report.rows_removed),
        (3, 3),
        "{report:?}"
    );
    // What arrived and the partitions of its keys, not all of staging.
    assert!(report.rows_read < 1_000, "{report:?}");
    assert_eq!(lake.count("staging").await, 600 + 800 + 1);
    let rows = lake
        .query("SELECT event_uuid, created_at FROM staging WHERE event_uuid IN ('a3', 'a5', 'n1') ORDER BY event_uuid")
        .await;
    let kept: Vec<i64> = rows
        .iter()
        .map(|r| r["created_at"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(kept, [T0 + 3 + 365 * DAY, T0 + 5 + 60, T0 + 11 * DAY]);
    assert!(check_keys(&lake.lake).await.expect("check").is_exact());

    // Nothing arrived since: nothing to read, nothing removed.
    let again = by_index(&lake).await;
    assert_eq!((again.rows_read, again.rows_removed), (0, 0), "{again:?}");
}

#[tokio::test]
async fn a_sweep_by_the_index_needs_an_earlier_sweep() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, "")]).await;
    lake.compact().await;
    let out = lakehouse(&["keys", "sweep", "--by-index", "--lake", lake.path()], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.starts_with("error: a sweep by the key index: no sweep is recorded yet"),
        "{stderr}"
    );
    lakehouse_ok(&["keys", "sweep", "--lake", lake.path()], b"");
    let out = lakehouse_ok(&["keys", "sweep", "--by-index", "--lake", lake.path()], b"");
    assert!(out.contains("0 rows removed"), "{out}");
}

/// `tests/bench/sweep.sh` (`make bench_sweep`) at a small size, through the CLI: both
/// sweeps remove every copy (the script fails otherwise), and the sweep by the index
/// reads less than the whole one.
#[test]
fn the_sweep_benchmark_runs_small_and_both_sweeps_remove_every_copy() {
    let stdout = run_bench_script(
        "sweep.sh",
        &[
            ("BENCH_SIZES", "1 2"),
            ("BENCH_STEP", "3000"),
            ("BENCH_NEW", "200"),
            ("BENCH_COPIES", "3"),
        ],
    );
    let read = |name: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        let field = line.split("rows_read=").nth(1).expect("rows_read");
        field
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number")
    };
    for size in [1, 2] {
        let (by_index, whole) = (
            read(&format!("by_index-{size} ")),
            read(&format!("whole-{size} ")),
        );
        assert!(by_index < whole, "{stdout}");
    }
}
