//! The hot window (`compact --hot-hours H`): rounds look up only the key index's runs
//! indexed within the last H hours; a copy whose staged row is older lands beside it and
//! the sweep resolves it (issue 23).

use lakehouse_compact::CompactOptions;
use lakehouse_compact::keys::check_keys;
use lakehouse_compact::sweep::{Scope, sweep};
use lakehouse_lake::Table;
use lakehouse_lake::keys::indexed_at;

use crate::helpers::{TestLake, event, lakehouse_ok, run_bench_script};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

fn hot(hours: u32) -> CompactOptions {
    CompactOptions {
        hot_hours: Some(hours),
        ..CompactOptions::default()
    }
}

#[tokio::test]
async fn a_copy_within_the_window_is_resolved_by_its_round_an_older_one_by_the_sweep() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, ""), event("b", "x:1", T0, "")])
        .await;
    lake.compact().await;
    // Every index run carries when it was indexed.
    let keys = lake.lake.open(Table::Keys).await.expect("keys");
    let now = chrono::Utc::now().timestamp();
    for add in lakehouse_lake::files::live_files(&keys).expect("files") {
        let at = indexed_at(&add).expect("tagged");
        assert!((now - 60..=now).contains(&at), "{at} vs {now}");
    }

    // Within a one-hour window: `a`'s copy a year later is found and replaces it.
    lake.ingest(&[event("a", "x:1", T0 + 365 * DAY, "")]).await;
    let report = lake.compact_with(hot(1)).await;
    let merged = report.total();
    assert_eq!((merged.updated, merged.files_scanned), (1, 1), "{merged:?}");
    assert_eq!(lake.count("staging").await, 2);

    // A window of 0 hours holds no run: `b`'s copy reads nothing and lands beside it.
    lake.ingest(&[event("b", "x:1", T0 + DAY, "")]).await;
    let report = lake.compact_with(hot(0)).await;
    let merged = report.total();
    assert_eq!(
        (merged.inserted, merged.files_scanned, merged.index_pages),
        (1, 0, 0),
        "{merged:?}"
    );
    assert_eq!(lake.count("staging").await, 3, "older than the window");
    // The index still holds every staged key exactly.
    assert!(check_keys(&lake.lake).await.expect("check").is_exact());

    let swept = sweep(
        &lake.lake,
        &Scope::All {
            rows_per_pass: 1_000,
        },
        1_000,
    )
    .await
    .expect("sweep");
    assert_eq!(swept.rows_removed, 1);
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 2);
    assert_eq!(state["b"].0, T0 + DAY);
    assert_eq!(state["a"].0, T0 + 365 * DAY);
}

#[tokio::test]
async fn the_cli_takes_a_window_and_refuses_it_with_a_horizon() {
    let lake = TestLake::new();
    let path = lake.dir.path().join("in.jsonl");
    std::fs::write(&path, event("a", "x:1", T0, "")).expect("input");
    let path = path.to_str().expect("utf-8");
    lakehouse_ok(&["ingest", "--lake", lake.path(), path], b"");
    lakehouse_ok(
        &["compact", "--lake", lake.path(), "--hot-hours", "24"],
        b"",
    );
    let out = crate::helpers::lakehouse(
        &[
            "compact",
            "--lake",
            lake.path(),
            "--hot-hours",
            "1",
            "--horizon-days",
            "7",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

/// Index runs of `lake` per bucket, oldest written first.
async fn runs_by_bucket(
    lake: &TestLake,
) -> std::collections::BTreeMap<String, Vec<deltalake::kernel::Add>> {
    let keys = lake.lake.open(Table::Keys).await.expect("keys");
    let mut buckets: std::collections::BTreeMap<String, Vec<_>> = Default::default();
    for add in lakehouse_lake::files::live_files(&keys).expect("files") {
        let bucket = add.partition_values[lakehouse_lake::schema::KEY_BUCKET].clone();
        buckets
            .entry(bucket.expect("bucket"))
            .or_default()
            .push(add);
    }
    for runs in buckets.values_mut() {
        runs.sort_by_key(|a| a.modification_time);
    }
    buckets
}

async fn rounds(lake: &TestLake, from: i64, to: i64) {
    let no_maintenance = CompactOptions {
        skip_maintenance: true,
        ..CompactOptions::default()
    };
    for round in from..to {
        let lines: Vec<String> = (0..300)
            .map(|i| event(&format!("r{round}-{i}"), "a:b", T0, ""))
            .collect();
        lake.ingest(&lines).await;
        lake.compact_with(no_maintenance.clone()).await;
    }
}

#[tokio::test]
async fn runs_merge_only_within_their_age_class_and_keep_the_newest_instant() {
    use deltalake::kernel::Action;
    let lake = TestLake::new();
    rounds(&lake, 0, 4).await;
    // The first two rounds' runs indexed 10 hours ago (as a rewrite that changes no data).
    let old = chrono::Utc::now().timestamp() - 10 * 3_600;
    let mut actions = Vec::new();
    for runs in runs_by_bucket(&lake).await.values() {
        for add in runs.iter().take(2) {
            actions.push(Action::Remove(lakehouse_lake::files::remove_of(add, false)));
            // Under a new name: one commit must not remove and add the same path.
            let mut aged = add.clone();
            aged.path = add.path.replace(".parquet", "-aged.parquet");
            let table = lake.dir.path().join(Table::Keys.name());
            std::fs::copy(table.join(&add.path), table.join(&aged.path)).expect("copy");
            aged.data_change = false;
            lakehouse_lake::keys::tag_indexed_at(&mut aged, old);
            actions.push(Action::Add(aged));
        }
    }
    let aged_runs = actions.len() / 2;
    let keys = lake.lake.open(Table::Keys).await.expect("keys");
    let operation = deltalake::protocol::DeltaOperation::Optimize {
        predicate: None,
        target_size: 0,
    };
    lakehouse_lake::Commit::new(operation, actions)
        .execute(&keys)
        .await
        .expect("age runs");

    // Four runs a bucket, but two per class: nothing merges.
    let maintained = |report: lakehouse_compact::CompactReport| {
        report
            .maintenance
            .iter()
            .find(|(table, _)| table == "staging_keys")
            .map(|(_, m)| m.files_compacted)
            .expect("index maintained")
    };
    assert_eq!(maintained(lake.compact().await), 0);
    // Two more rounds: four young runs a bucket merge into one, tagged with the newest;
    // the two old ones stay as they were.
    rounds(&lake, 4, 6).await;
    assert!(maintained(lake.compact().await) > 0);
    let now = chrono::Utc::now().timestamp();
    let mut buckets_with_six = 0;
    for runs in runs_by_bucket(&lake).await.values() {
        let ages: Vec<i64> = runs
            .iter()
            .map(|a| indexed_at(a).expect("tagged"))
            .collect();
        let (aged, young): (Vec<i64>, Vec<i64>) = ages.iter().partition(|&&t| t == old);
        // Old runs never merge with young ones; four young ones always do.
        assert!(aged.len() <= 2 && young.len() < 4, "{ages:?}");
        assert!(
            young.iter().all(|t| (now - 120..=now).contains(t)),
            "{ages:?}"
        );
        buckets_with_six += usize::from(aged.len() == 2 && young.len() == 1);
    }
    assert!(
        buckets_with_six > 32,
        "most buckets had six runs: {buckets_with_six}"
    );
    let aged_after: usize = runs_by_bucket(&lake)
        .await
        .values()
        .flatten()
        .filter(|a| indexed_at(a) == Some(old))
        .count();
    assert_eq!(aged_after, aged_runs, "old runs stay as they were");
    assert!(check_keys(&lake.lake).await.expect("check").is_exact());
}

/// `tests/bench/dedup_curve.sh` (`make bench_dedup_curve`) at a small size, on the example
/// `cargo test --all-targets` builds: it keeps running, finds every copy, and a hot-window
/// round reads the same at 1×, 4× and 16× the index.
#[test]
fn the_dedup_curve_benchmark_runs_small_and_the_hot_round_reads_the_same_at_every_size() {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_lakehouse"))
        .parent()
        .expect("target dir");
    let work = tempfile::tempdir().expect("tempdir");
    let example = bin_dir.join("examples/dedup_scale");
    let (example, work) = (example.to_string_lossy(), work.path().to_string_lossy());
    let stdout = run_bench_script(
        "dedup_curve.sh",
        &[
            ("DEDUP_SCALE_BIN", &example),
            ("BENCH_DIR", &work),
            ("CURVE_BASE", "20000"),
            ("ROUND_KEYS", "2000"),
            ("HOT_KEYS", "2000"),
            ("GET_MS", "1"),
        ],
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let hot_read = |line: &str| {
        // "T s, R MB, G GETs | …": what it read, not how long it took.
        let hot = line.split("hot window: ").nth(1).expect("hot window");
        hot.split(" | ")
            .next()
            .expect("hot figures")
            .split(", ")
            .skip(1)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for line in &lines {
        assert!(line.ends_with("copies missed 0"), "{stdout}");
        assert_eq!(hot_read(line), hot_read(lines[0]), "{stdout}");
    }
}
