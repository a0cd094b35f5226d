//! Overlapping compaction runs (issue 11 §1): however runs overlap, no commit rewrites a
//! file another commit already removed, so each table keeps every row exactly once and
//! staging one row per event.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use lakehouse_compact::maintain::{MaintenanceOptions, maintain};
use lakehouse_compact::optimize::RawGuard;
use lakehouse_compact::{CompactOptions, Compactor};
use lakehouse_lake::{RunRange, Table};

use crate::helpers::{TestLake, event, lakehouse};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

/// What the lake must hold, from what was ingested.
#[derive(Default)]
struct Model {
    raw: i64,
    quarantine: i64,
    /// uuid → greatest created_at.
    staging: BTreeMap<String, i64>,
}

impl Model {
    /// Round `round`'s inputs: several small ingests, each one small file per partition in
    /// raw and quarantine, re-sending earlier rounds' uuids with a later created_at.
    fn round(&mut self, round: i64) -> Vec<Vec<String>> {
        (0..5)
            .map(|input| {
                let mut lines = Vec::new();
                for i in 0..4 {
                    let uuid = format!("e{}", (round * 7 + input * 4 + i) % 30);
                    let created = T0 + (i % 2) * DAY + round * 10 + input;
                    lines.push(event(&uuid, &format!("t{}:x", i % 2), created, ""));
                    let best = self.staging.entry(uuid).or_insert(created);
                    *best = (*best).max(created);
                    self.raw += 1;
                }
                lines.push("not json".to_string());
                self.quarantine += 1;
                lines
            })
            .collect()
    }

    async fn check(&self, lake: &TestLake, when: &str) {
        assert_eq!(lake.count("raw").await, self.raw, "raw {when}");
        assert_eq!(
            lake.count("quarantine").await,
            self.quarantine,
            "quarantine {when}"
        );
        let staging = lake
            .query("SELECT event_uuid, max(created_at) AS c, count(*) AS n FROM staging GROUP BY 1")
            .await;
        let found: BTreeMap<String, i64> = staging
            .iter()
            .map(|r| {
                assert_eq!(r["n"], 1, "one row per uuid {when}: {r}");
                (
                    r["event_uuid"].as_str().unwrap_or_default().to_string(),
                    r["c"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(found, self.staging, "staging {when}");
    }
}

#[test]
fn concurrent_compactions_never_double_a_row() {
    let lake = TestLake::new();
    let mut model = Model::default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for round in 0..4 {
        for input in model.round(round) {
            runtime.block_on(lake.ingest(&input));
        }
        // Each run on its own thread and runtime: truly parallel, as separate processes.
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let lake = lake.lake.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Runtime::new().expect("runtime");
                    runtime.block_on(Compactor::new(lake, CompactOptions::default()).run())
                })
            })
            .collect();
        let mut rewrote = 0;
        for run in runs {
            let report = run
                .join()
                .expect("join")
                .expect("every overlapping run succeeds");
            rewrote += report
                .maintenance
                .iter()
                .map(|(_, m)| m.files_compacted)
                .sum::<u64>();
        }
        assert!(rewrote > 0, "round {round}: some run bin-packed");
        runtime.block_on(model.check(&lake, &format!("after round {round}")));
    }
}

#[test]
fn overlapping_cli_runs_never_double_a_row() {
    let lake = TestLake::new();
    let mut model = Model::default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for round in 0..3 {
        for input in model.round(round) {
            let lines = input.join("\n");
            let out = lakehouse(&["ingest", "--lake", lake.path()], lines.as_bytes());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let runs: Vec<_> = (0..3)
            .map(|_| {
                let path = lake.path().to_string();
                std::thread::spawn(move || lakehouse(&["compact", "--lake", &path], b""))
            })
            .collect();
        for run in runs {
            let out = run.join().expect("join");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "round {round}: {stderr}");
        }
        runtime.block_on(model.check(&lake, &format!("after round {round}")));
    }
}

/// Every kind of compaction and `--vacuum-full` with no retention at once, beside ingests
/// (issue 22 §3, §4): the whole-table run, two type ranges and two key ranges (each range
/// 0 maintains too) race the writers. No vacuum deletes a file a writer is about to commit, no run needs a file
/// another kind's maintenance removed, and every row lands once.
#[test]
fn every_kind_vacuuming_beside_ingests_never_loses_or_doubles_a_row() {
    let lake = TestLake::new();
    let mut model = Model::default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let vacuuming = |range| CompactOptions {
        range,
        retention: chrono::Duration::zero(),
        vacuum_full: true,
        ..CompactOptions::default()
    };
    for round in 0..3 {
        let inputs = model.round(round);
        let ingest = {
            let lake = lake.lake.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                for input in inputs {
                    runtime
                        .block_on(ingest_lines(&lake, &input))
                        .expect("an ingest beside vacuums");
                }
            })
        };
        let kinds = [
            None,
            RunRange::types(0, 2),
            RunRange::types(1, 2),
            RunRange::keys(0, 2),
            RunRange::keys(1, 2),
        ];
        let runs: Vec<_> = kinds
            .into_iter()
            .map(|kind| {
                let (lake, options) = (lake.lake.clone(), vacuuming(kind));
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Runtime::new().expect("runtime");
                    runtime.block_on(Compactor::new(lake, options).run())
                })
            })
            .collect();
        ingest.join().expect("join ingest");
        for (kind, run) in kinds.iter().zip(runs) {
            run.join()
                .expect("join")
                .unwrap_or_else(|e| panic!("round {round} {kind:?}: {e}"));
        }
        // What arrived after the runs started is the next runs' work.
        runtime
            .block_on(Compactor::new(lake.lake.clone(), vacuuming(None)).run())
            .expect("a last run");
        runtime.block_on(model.check(&lake, &format!("after round {round}")));
    }
}

async fn ingest_lines(lake: &lakehouse_lake::Lake, lines: &[String]) -> anyhow::Result<()> {
    let mut ingestor =
        lakehouse_ingest::Ingestor::open(lake, lakehouse_ingest::IngestOptions::default()).await?;
    for (i, line) in lines.iter().enumerate() {
        let position = (i + 1).to_string();
        let record = lakehouse_ingest::SourceRecord {
            data: line.as_bytes(),
            source: "overlap",
            position: &position,
        };
        ingestor.push(&record).await?;
    }
    ingestor.commit().await?;
    Ok(())
}

/// A maintainer planned from a snapshot whose files another maintainer has since rewritten
/// and vacuumed (no retention) yields, for bin-packing and for the key index's run merge
/// alike: the work is done, and failing would fail the whole run.
#[tokio::test(flavor = "multi_thread")]
async fn a_maintainer_whose_files_were_rewritten_and_vacuumed_yields() {
    let lake = TestLake::new();
    let mut model = Model::default();
    let dedup_only = CompactOptions {
        skip_maintenance: true,
        ..CompactOptions::default()
    };
    // Five rounds: several small quarantine files, several index runs per touched bucket.
    for round in 0..5 {
        for input in model.round(round) {
            lake.ingest(&input).await;
        }
        // And 400 new events: every one of the index's 64 buckets gets a run.
        let fresh: Vec<String> = (0..400)
            .map(|i| event(&format!("k{round}-{i}"), "t0:x", T0, ""))
            .collect();
        lake.ingest(&fresh).await;
        model.raw += 400;
        for i in 0..400 {
            model.staging.insert(format!("k{round}-{i}"), T0);
        }
        lake.compact_with(dedup_only.clone()).await;
    }
    for table in [Table::Quarantine, Table::Keys] {
        let stale = lake.lake.open(table).await.expect("open");
        let options = MaintenanceOptions {
            target_file_size: NonZeroU64::new(128 << 20).expect("size"),
            recent: None,
            writer_properties: table.writer_properties(),
            retention: chrono::Duration::zero(),
            vacuum_full: false,
        };
        let fresh = lake.lake.open(table).await.expect("open");
        let (_, first) = maintain(fresh, table, &RawGuard::default(), &options)
            .await
            .expect("maintain");
        assert!(
            first.files_compacted > 1 && first.files_vacuumed > 1,
            "{table:?}: {first:?}"
        );
        let (_, second) = maintain(stale, table, &RawGuard::default(), &options)
            .await
            .unwrap_or_else(|e| panic!("{table:?}: {e}"));
        assert!(
            second.optimize_yielded && second.files_compacted == 0,
            "{table:?}: {second:?}"
        );
    }
    model.check(&lake, "after the yields").await;
    let check = lakehouse_compact::keys::check_keys(&lake.lake)
        .await
        .expect("check keys");
    assert!(check.is_exact(), "{check:?}");
}
