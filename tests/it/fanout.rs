//! Compaction fanned out over ranges of event types: M runs at once, each merging only its
//! types under its own `txn`, never fail each other's commits and together build the same
//! staging as one run over the whole table.

use lakehouse_compact::{CompactOptions, Compactor};
use lakehouse_lake::log::txn_version;
use lakehouse_lake::{Table, TypeRange};

use crate::helpers::{TestLake, event};

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

fn options(types: Option<TypeRange>, maintain: bool) -> CompactOptions {
    CompactOptions {
        types,
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
        // Each range on its own thread and runtime: truly parallel, as separate Lambdas.
        let runs: Vec<_> = (0..RANGES)
            .map(|i| {
                let lake = fanned.lake.clone();
                let range = TypeRange::new(i, RANGES).expect("range");
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Runtime::new().expect("runtime");
                    runtime.block_on(Compactor::new(lake, options(Some(range), false)).run())
                })
            })
            .collect();
        for (i, run) in runs.into_iter().enumerate() {
            let report = run.join().expect("join").expect("a range's run");
            assert_eq!(
                report.replans, 0,
                "range {i} lost a commit to another range"
            );
            assert!(!report.commits.is_empty(), "range {i} merged its types");
        }
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
            let range = TypeRange::new(i, RANGES).expect("range");
            let report = Compactor::new(fanned.lake.clone(), options(Some(range), true))
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
            for i in 0..RANGES {
                let range = TypeRange::new(i, RANGES).expect("range");
                lake.compact_with(options(Some(range), false)).await;
            }
        }
        assert_eq!(
            lake.staging_state().await,
            model.staging_state().await,
            "round {round}"
        );
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
    let range = |i, n| TypeRange::new(i, n);
    let maintaining = |types| CompactOptions {
        types,
        retention: chrono::Duration::zero(),
        max_rows_per_commit: 150,
        ..CompactOptions::default()
    };
    // Each step ingests a round, then runs these kinds in order; every step covers all
    // types, so staging must equal the model after it.
    let steps: Vec<Vec<Option<TypeRange>>> = vec![
        vec![range(0, 2), range(1, 2)],
        vec![None],
        vec![range(1, 2), range(0, 2)],
        vec![range(0, 3), range(1, 3), range(2, 3)],
        vec![None],
        vec![range(1, 2), range(0, 2)],
        vec![range(2, 3), range(0, 3), range(1, 3)],
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
    let status = lakehouse_compact::status::lake_status(&lake.lake, &Default::default())
        .await
        .expect("status");
    let lag = status.compaction.expect("compaction lag");
    assert_eq!(lag.commits_behind, 0, "{lag:?}");
}
