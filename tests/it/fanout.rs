//! Compaction fanned out over ranges of event types or of keys: M runs at once, each merging
//! only its range under its own `txn`, never fail each other's commits for what the other
//! added, and together build the same staging as one run over the whole table (by key,
//! even for an event staged under two types).

use deltalake::arrow::array::AsArray;
use lakehouse_compact::{CompactOptions, Compactor};
use lakehouse_lake::files::{live_files, read_file};
use lakehouse_lake::log::txn_version;
use lakehouse_lake::{KEY_RANGE_TAG, RunRange, Table};

use crate::helpers::{TestLake, event, run_bench_script};

const T0: i64 = 1_764_000_000;
const RANGES: u32 = 4;

/// Round `round` of input: 12 types, copies of earlier rounds' events (later or equal
/// instants), and an invalid record.
fn round_lines(round: i64) -> Vec<String> {
    let mut lines: Vec<String> = (0..240)
        .map(|i| {
            let n = round * 100 + i;
            let uuid = format!("u{}", n % 400);
            let kind = format!("type{}:x", (n % 400) % 12); // a uuid keeps its type
            event(&uuid, &kind, T0 + (n % 5) * 3_600 + round, "")
        })
        .collect();
    lines.push("{broken".into());
    lines
}

/// Round `round`: 240 events never seen before (`fresh`), or newer copies of round 0's
/// first 150 under other types (a producer that renamed an event), 90 of them twice.
fn moving_lines(round: i64, fresh: bool) -> Vec<String> {
    (0..240)
        .map(|i| {
            let n = if fresh { round * 1000 + i } else { i % 150 };
            let kind = format!("type{}:x", (round * 7 + i) % 12);
            event(&format!("m{n}"), &kind, T0 + round * 60 + i % 3, "")
        })
        .collect()
}

fn types(index: u32) -> RunRange {
    RunRange::types(index, RANGES).expect("range")
}

fn keys(index: u32) -> RunRange {
    RunRange::keys(index, RANGES).expect("range")
}

/// Runs every range of `range`'s kind at once, each on its own thread and runtime (truly
/// parallel, as separate Lambdas); returns each one's replans.
fn run_at_once(lake: &lakehouse_lake::Lake, range: RunRange) -> Vec<u32> {
    let runs: Vec<_> = range
        .siblings()
        .map(|range| {
            let lake = lake.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                runtime.block_on(Compactor::new(lake, options(Some(range), false)).run())
            })
        })
        .collect();
    runs.into_iter()
        .enumerate()
        .map(|(i, run)| {
            let report = run.join().expect("join").expect("a range's run");
            assert!(!report.commits.is_empty(), "range {i} merged");
            report.replans
        })
        .collect()
}

/// Checks that every staging file tagged with a key range holds only that range's events
/// (ranges skip each other's files on that word); returns the tagged files and all files.
async fn key_range_files(lake: &lakehouse_lake::Lake) -> (usize, usize) {
    let staging = lake.open(Table::Staging).await.expect("staging");
    let files = live_files(&staging).expect("files");
    let mut tagged = 0;
    for add in &files {
        let Some(name) = add.tags.as_ref().and_then(|t| t.get(KEY_RANGE_TAG)) else {
            continue;
        };
        let range = name.as_deref().and_then(RunRange::of_name);
        let range = range.unwrap_or_else(|| panic!("{}: tag {name:?}", add.path));
        let store = staging.object_store();
        for batch in read_file(store, Table::Staging, add, None)
            .await
            .expect("read")
        {
            let uuids = batch.column_by_name("event_uuid").expect("uuids");
            assert!(
                uuids
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .all(|u| range.holds_uuid(u)),
                "{} ({range}) holds another range's events",
                add.path
            );
        }
        tagged += 1;
    }
    (tagged, files.len())
}

fn options(range: Option<RunRange>, maintain: bool) -> CompactOptions {
    CompactOptions {
        range,
        skip_maintenance: !maintain,
        max_rows_per_commit: 150, // several merges per run, partial commits included
        ..CompactOptions::default()
    }
}

#[test]
fn four_type_ranges_compact_at_once_without_failing_each_other() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (fanned, whole) = (TestLake::new(), TestLake::new());
    for round in 0..3 {
        let lines = round_lines(round);
        runtime.block_on(async {
            fanned.ingest(&lines).await;
            whole.ingest(&lines).await;
            whole.compact_with(options(None, false)).await;
        });
        let replans = run_at_once(&fanned.lake, types(0));
        assert_eq!(
            replans, [0; RANGES as usize],
            "a range lost a commit to another"
        );
        runtime.block_on(async {
            assert_eq!(
                fanned.staging_state().await,
                whole.staging_state().await,
                "round {round}"
            );
        });
    }
    runtime.block_on(async {
        // Every range recorded raw's last version under its own app id.
        let raw = fanned.lake.open(Table::Raw).await.expect("raw");
        let staging = fanned.lake.open(Table::Staging).await.expect("staging");
        let head = raw.version().expect("raw version") as i64;
        for i in 0..RANGES {
            let app_id = format!("lakehouse-compact:raw:types-{i}-of-{RANGES}");
            let version = txn_version(&staging, &app_id).await.expect("txn");
            assert_eq!(version, Some(head), "{app_id}");
        }
        // Run again: nothing new, nothing committed; range 0 maintains the tables.
        for i in 0..RANGES {
            let report = Compactor::new(fanned.lake.clone(), options(Some(types(i)), true))
                .run()
                .await
                .expect("rerun");
            assert!(report.commits.is_empty(), "range {i} committed again");
            assert_eq!(report.maintenance.is_empty(), i != 0, "range {i}");
        }
        assert_eq!(fanned.staging_state().await, whole.staging_state().await);
        assert_eq!(fanned.count("staging").await, 400);
    });
}

/// Four key ranges at once: every copy of an event falls in one range, so an event whose
/// copies arrive under different types keeps one row (a type range keeps one per range),
/// and staging is what one whole-table run builds. Rounds of new events only never make a
/// range plan again: a sibling's commit is told apart by its tag (without it, every range
/// but the first to commit would re-plan).
#[test]
fn four_key_ranges_compact_at_once_and_keep_one_row_per_event_across_types() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (fanned, whole) = (TestLake::new(), TestLake::new());
    for round in 0..4 {
        // Even rounds are new events only; odd ones are copies of round 0's, under new types.
        let fresh = round % 2 == 0;
        let lines = moving_lines(round, fresh);
        runtime.block_on(async {
            fanned.ingest(&lines).await;
            whole.ingest(&lines).await;
            whole.compact_with(options(None, false)).await;
        });
        let replans = run_at_once(&fanned.lake, keys(0));
        if fresh {
            assert_eq!(replans, [0; RANGES as usize], "round {round}");
        }
        runtime.block_on(async {
            assert_eq!(
                fanned.staging_state().await,
                whole.staging_state().await,
                "round {round}"
            );
            // Rows, not only uuids: a second row of a moved event would hide in the state.
            let rows = fanned.count("staging").await;
            assert_eq!(rows, whole.count("staging").await, "round {round}");
        });
    }
    runtime.block_on(async {
        let distinct = 2 * 240;
        assert_eq!(whole.count("staging").await, distinct);
        assert_eq!(fanned.count("staging").await, distinct);
        let staging = fanned.lake.open(Table::Staging).await.expect("staging");
        let raw = fanned.lake.open(Table::Raw).await.expect("raw");
        let head = raw.version().map(|v| v as i64);
        for range in keys(0).siblings() {
            let app_id = format!("lakehouse-compact:raw:{}", range.name());
            let version = txn_version(&staging, &app_id).await.expect("txn");
            assert_eq!(version, head, "{app_id}");
        }
        // Range 0 maintains: optimize packs each range's files apart, so every staging file
        // is still one range's (tagged by the commit path) and holds only its events.
        let report = Compactor::new(fanned.lake.clone(), options(Some(keys(0)), true))
            .run()
            .await
            .expect("maintain");
        let packed = report.maintenance.iter().find(|(t, _)| t == "staging");
        assert!(
            packed.is_some_and(|(_, m)| m.files_compacted > 0),
            "{report:?}"
        );
        let (tagged, files) = key_range_files(&fanned.lake).await;
        assert_eq!(tagged, files, "every file is one range's");
        assert_eq!(fanned.count("staging").await, distinct);
    });
}

/// A lake compacted by one run switches to four ranges (and back): each range starts where
/// the whole-table run got, so nothing is merged twice or skipped.
#[tokio::test]
async fn switching_between_one_run_and_ranges_loses_and_repeats_nothing() {
    let (lake, model) = (TestLake::new(), TestLake::new());
    for round in 0..4 {
        let lines = round_lines(round);
        lake.ingest(&lines).await;
        model.ingest(&lines).await;
        model.compact_with(options(None, false)).await;
        if round % 2 == 0 {
            lake.compact_with(options(None, false)).await;
        } else {
            // Odd rounds by types, the others by keys.
            let kind = if round % 4 == 1 { types(0) } else { keys(0) };
            for range in kind.siblings() {
                lake.compact_with(options(Some(range), false)).await;
            }
        }
        assert_eq!(
            lake.staging_state().await,
            model.staging_state().await,
            "round {round}"
        );
        // Key ranges rewrote files the other kinds wrote: what they carried out of them is
        // not tagged as theirs.
        key_range_files(&lake.lake).await;
    }
}

/// Kinds of compaction taking turns under a zero retention (issue 22 §3): a range that lags
/// while the whole-table run maintains, a whole-table run after ranges, a change of N and
/// back. Each run starts from the most any record says of its types, and maintenance
/// removes raw files only behind what every kind consumed, so no run ever needs a file
/// vacuum deleted (before: `error: reading …parquet … not found`), nothing is merged twice,
/// and staging is what one whole-table run builds.
#[tokio::test]
async fn kinds_taking_turns_under_a_zero_retention_never_need_a_vacuumed_file() {
    let (lake, model) = (TestLake::new(), TestLake::new());
    let range = |i, n| RunRange::types(i, n);
    let key = |i, n| RunRange::keys(i, n);
    let maintaining = |range| CompactOptions {
        range,
        retention: chrono::Duration::zero(),
        max_rows_per_commit: 150,
        ..CompactOptions::default()
    };
    // Each step ingests a round, then runs these kinds in order; every step covers all
    // types, so staging must equal the model after it.
    let steps: Vec<Vec<Option<RunRange>>> = vec![
        vec![range(0, 2), range(1, 2)],
        vec![None],
        vec![range(1, 2), range(0, 2)],
        vec![range(0, 3), range(1, 3), range(2, 3)],
        vec![key(1, 2), key(0, 2)],
        vec![None],
        vec![range(1, 2), range(0, 2)],
        vec![key(3, 4), key(0, 4), key(2, 4), key(1, 4)],
        vec![range(2, 3), range(0, 3), range(1, 3)],
        vec![key(0, 2), key(1, 2)],
    ];
    // The raw version of the last round every kind has merged.
    let mut merged_round = None;
    for (step, kinds) in steps.iter().enumerate() {
        let lines = round_lines(step as i64);
        lake.ingest(&lines).await;
        model.ingest(&lines).await;
        model.compact_with(options(None, false)).await;
        let raw = lake.lake.open(Table::Raw).await.expect("raw");
        let this_round = raw.version().expect("raw version");
        for &kind in kinds {
            let report = Compactor::new(lake.lake.clone(), maintaining(kind))
                .run()
                .await
                .unwrap_or_else(|e| panic!("step {step} {kind:?}: {e}"));
            // Whatever kind ran last, no run reads a round every kind has merged.
            let start = report.raw_consumed_before.map_or(0, |v| v + 1);
            assert!(
                merged_round.is_none_or(|merged| start > merged),
                "step {step} {kind:?} started at raw v{start}, at or before v{merged_round:?}"
            );
        }
        merged_round = Some(this_round);
        assert_eq!(
            lake.staging_state().await,
            model.staging_state().await,
            "step {step}"
        );
    }
    // Every kind has consumed everything; status says so.
    let status = lakehouse_query::status::lake_status(&lake.lake, &Default::default())
        .await
        .expect("status");
    let lag = status.compaction.expect("compaction lag");
    assert_eq!(lag.commits_behind, 0, "{lag:?}");
}

/// `tests/bench/key_ranges.sh` (`make bench_key_ranges`) at a small size, through the CLI:
/// it keeps running, and every staging it builds holds one row per event.
#[test]
fn the_key_ranges_benchmark_runs_small_and_keeps_one_row_per_event() {
    let stdout = run_bench_script(
        "key_ranges.sh",
        &[("BENCH_BASE", "3000"), ("BENCH_NEW", "400")],
    );
    let counts: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("staging rows, distinct: "))
        .collect();
    // Two stagings, fresh events and late copies, one run and ranges.
    assert_eq!(counts.len(), 8, "{stdout}");
    for count in counts {
        let (rows, distinct) = count.split_once(',').expect("rows,distinct");
        assert_eq!(rows, distinct, "{stdout}");
    }
    assert!(stdout.contains("keys 3/4: compacted:"), "{stdout}");
}
