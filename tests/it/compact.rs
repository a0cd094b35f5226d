//! Compaction: one row per event_uuid, the latest created_at wins, exactly once.

use lakehouse_compact::{CompactOptions, Compactor};
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::{Commit, CommitMetadata, Table};

use crate::helpers::{TestLake, event};

const DAY: i64 = 86_400;
const T0: i64 = 1_700_000_000;

#[tokio::test]
async fn duplicates_within_a_batch_and_across_runs_keep_the_latest() {
    let lake = TestLake::new();
    lake.ingest(&[
        event("a", "x:1", T0, r#","v":1"#),
        event("a", "x:1", T0 + 10, r#","v":2"#),
        event("a", "x:1", T0 + 5, r#","v":3"#),
        event("b", "x:1", T0, ""),
        event("b", "x:1", T0, ""),
    ])
    .await;
    let report = lake.compact().await;
    assert_eq!(report.total().inserted, 2);
    assert_eq!(report.total().discarded, 3);
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 2);
    assert_eq!(state["a"].0, T0 + 10);
    assert!(state["a"].1.contains(r#""v":2"#));

    // Across runs: an older copy loses, a newer one replaces.
    lake.ingest(&[
        event("a", "x:1", T0 + 1, r#","v":4"#),
        event("b", "x:1", T0 + 1, r#","v":5"#),
    ])
    .await;
    let report = lake.compact().await;
    assert_eq!(
        (
            report.total().inserted,
            report.total().updated,
            report.total().discarded
        ),
        (0, 1, 1)
    );
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 2);
    assert_eq!(state["a"].0, T0 + 10);
    assert_eq!(state["b"].0, T0 + 1);
    assert_eq!(lake.count("raw").await, 7);
}

#[tokio::test]
async fn a_newer_copy_in_another_partition_moves_the_row() {
    let lake = TestLake::new();
    lake.ingest(&[event("m", "order:placed", T0, "")]).await;
    lake.compact().await;
    // Next day, another event_type: another partition.
    lake.ingest(&[event("m", "payment:captured", T0 + DAY, "")])
        .await;
    lake.compact().await;
    let rows = lake
        .query("SELECT event_type, event_date FROM staging WHERE event_uuid = 'm'")
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["event_type"], "payment");
    assert_eq!(rows[0]["event_date"], "2023-11-15");
}

#[tokio::test]
async fn ties_on_created_at_go_to_the_later_ingest() {
    let lake = TestLake::new();
    // Later in the same input wins.
    lake.ingest(&[
        event("t", "x:1", T0, r#","v":"first""#),
        event("t", "x:1", T0, r#","v":"second""#),
    ])
    .await;
    lake.compact().await;
    assert!(lake.staging_state().await["t"].1.contains("second"));
    // A later ingest wins, even when compacted in the same run as the earlier one.
    lake.ingest(&[event("t", "x:1", T0, r#","v":"third""#)])
        .await;
    lake.ingest(&[event("t", "x:1", T0, r#","v":"fourth""#)])
        .await;
    lake.compact().await;
    assert!(lake.staging_state().await["t"].1.contains("fourth"));
}

#[tokio::test]
async fn the_fraction_of_a_second_decides_before_the_later_ingest() {
    let lake = TestLake::new();
    let line = |uuid: &str, created: &str, v: &str| {
        format!(r#"{{"event_uuid":"{uuid}","event_name":"x:1","created_at":{created},"v":"{v}"}}"#)
    };
    // Across runs: .9 reaches staging first, then .1 arrives (same whole second).
    lake.ingest(&[line("f", "1700000000.9", "later instant")])
        .await;
    lake.compact().await;
    lake.ingest(&[line("f", "1700000000.1", "earlier instant")])
        .await;
    lake.compact().await;
    // Within one run: the earlier instant is ingested last.
    lake.ingest(&[
        line("g", "1700000000.9", "later instant"),
        line("g", "1700000000.1", "earlier instant"),
    ])
    .await;
    lake.compact().await;
    let staging = lake.staging_state().await;
    for uuid in ["f", "g"] {
        assert!(
            staging[uuid].1.contains("later instant"),
            "{uuid}: {:?}",
            staging[uuid]
        );
    }
}

#[tokio::test]
async fn redelivered_duplicates_rewrite_no_staging_file_and_a_second_run_commits_nothing() {
    let lake = TestLake::new();
    let lines: Vec<String> = (0..50)
        .map(|i| event(&format!("r{i}"), "x:1", T0 + i, ""))
        .collect();
    lake.ingest(&lines).await;
    lake.compact().await;
    let staging = lake.lake.open(Table::Staging).await.unwrap();
    let before = staging.version();

    lake.ingest(&lines).await; // the same events again
    let report = lake
        .compact_with(CompactOptions {
            skip_maintenance: true,
            ..Default::default()
        })
        .await;
    let t = report.total();
    assert_eq!(
        (t.source_rows, t.inserted, t.updated, t.discarded),
        (50, 0, 0, 50)
    );
    assert_eq!((t.files_rewritten, t.files_added), (0, 0));
    let after = lake.lake.open(Table::Staging).await.unwrap();
    assert_eq!(
        after.version(),
        before.map(|v| v + 1),
        "one commit recording progress only"
    );
    assert_eq!(lake.staging_state().await.len(), 50);

    // Once maintenance has settled, a run with nothing new commits nothing on any table.
    lake.compact().await;
    let versions = |l: &TestLake| {
        let lake = l.lake.clone();
        async move {
            let mut v = vec![];
            for t in Table::ALL {
                v.push(lake.open(t).await.unwrap().version());
            }
            v
        }
    };
    let v1 = versions(&lake).await;
    let report = lake.compact().await;
    assert!(report.commits.is_empty());
    assert_eq!(versions(&lake).await, v1);
}

#[tokio::test]
async fn a_crash_between_writing_files_and_committing_converges_on_rerun() {
    let lake = TestLake::new();
    lake.ingest(&[event("c1", "x:1", T0, ""), event("c2", "x:1", T0, "")])
        .await;
    lake.compact().await;
    lake.ingest(&[
        event("c1", "x:1", T0 + 5, r#","v":2"#),
        event("c3", "y:1", T0, ""),
    ])
    .await;

    // Write the merge's files, then "crash" before the commit.
    let compactor = Compactor::new(lake.lake.clone(), CompactOptions::default());
    let mut report = Default::default();
    let (prepared, _) = compactor
        .prepare_next(&mut report, None)
        .await
        .unwrap()
        .expect("work to do");
    assert!(!prepared.actions.is_empty());
    drop(prepared);
    assert_eq!(
        lake.staging_state().await.len(),
        2,
        "nothing visible before the commit"
    );

    let report = lake.compact().await;
    assert_eq!(report.commits.len(), 1);
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 3);
    assert_eq!(state["c1"].0, T0 + 5);
    // And again: nothing left to do.
    assert!(lake.compact().await.commits.is_empty());
}

#[tokio::test]
async fn the_horizon_bounds_the_search_and_zero_searches_everything() {
    let far = 30 * DAY;
    for (horizon, expect_rows) in [(7, 2), (0, 1)] {
        let lake = TestLake::new();
        let options = CompactOptions {
            horizon_days: Some(horizon),
            skip_maintenance: true,
            ..Default::default()
        };
        lake.ingest(&[event("h", "x:1", T0, "")]).await;
        lake.compact_with(options.clone()).await;
        lake.ingest(&[event("h", "x:1", T0 + far, "")]).await;
        let report = lake.compact_with(options).await;
        assert_eq!(
            lake.count("staging").await,
            expect_rows,
            "horizon {horizon}"
        );
        if horizon == 7 {
            assert_eq!(
                report.total().files_scanned,
                0,
                "files 30 days away are not read"
            );
        }
    }
}

/// By default the key index finds a staged copy of any age, and reads only the partition
/// it is in; a new event reads no staging file at all (issue 23).
#[tokio::test]
async fn the_key_index_resolves_copies_a_year_apart_and_reads_only_their_partitions() {
    let lake = TestLake::new();
    let dedup_only = CompactOptions {
        skip_maintenance: true,
        ..Default::default()
    };
    let year = 365 * DAY;
    let days: Vec<String> = (0..30)
        .map(|d| event(&format!("d{d}"), "x:1", T0 + d * DAY, ""))
        .collect();
    lake.ingest(&days).await;
    lake.compact_with(dedup_only.clone()).await;

    // New events only: no staging file is read.
    lake.ingest(&[event("fresh", "x:1", T0 + 3 * DAY, "")])
        .await;
    let report = lake.compact_with(dedup_only.clone()).await;
    assert_eq!(report.total().files_scanned, 0);

    // A newer copy a year later replaces d3, an older copy of d4 a year before loses, a
    // redelivery of d5 changes nothing: each reads only its copy's partition.
    lake.ingest(&[
        event("d3", "x:1", T0 + 3 * DAY + year, r#","v":2"#),
        event("d4", "x:1", T0 + 4 * DAY - year, ""),
        event("d5", "x:1", T0 + 5 * DAY, ""),
    ])
    .await;
    let report = lake.compact_with(dedup_only.clone()).await;
    let total = report.total();
    assert_eq!(
        (total.files_scanned, total.updated, total.discarded),
        // Day 3's two files ("fresh" added one), day 4's and day 5's.
        (4, 1, 2),
        "{total:?}"
    );
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 31);
    assert_eq!(state["d3"].0, T0 + 3 * DAY + year);
    assert_eq!(state["d4"].0, T0 + 4 * DAY);
    let check = lakehouse_compact::keys::check_keys(&lake.lake)
        .await
        .expect("check");
    assert!(check.is_exact() && check.index_keys == 31, "{check:?}");
}

#[tokio::test]
async fn the_horizon_is_per_date_so_one_stray_old_event_reads_only_its_own_days() {
    let lake = TestLake::new();
    let dedup_only = CompactOptions {
        skip_maintenance: true,
        horizon_days: Some(7),
        ..Default::default()
    };
    // Staging holds one file per day over 60 days.
    let days: Vec<String> = (0..60)
        .map(|d| event(&format!("d{d}"), "x:1", T0 + d * DAY, ""))
        .collect();
    lake.ingest(&days).await;
    lake.compact_with(dedup_only.clone()).await;
    // New rows on the last day, plus one dated 1970: the files around the last day are
    // read (days 52..59: 8 files), and none around 1970 exist.
    lake.ingest(&[
        event("late", "x:1", T0 + 59 * DAY, ""),
        event("stray", "x:1", 86_400, ""),
    ])
    .await;
    let report = lake.compact_with(dedup_only).await;
    assert_eq!(report.total().files_scanned, 8);
    assert_eq!(lake.count("staging").await, 62);
}

#[tokio::test]
async fn row_budget_splits_a_backlog_into_several_exactly_once_commits() {
    let lake = TestLake::new();
    for batch in 0..4 {
        let lines: Vec<String> = (0..10)
            .map(|i| event(&format!("k{i}"), "x:1", T0 + batch, ""))
            .collect();
        lake.ingest(&lines).await;
    }
    let report = lake
        .compact_with(CompactOptions {
            max_rows_per_commit: 15,
            ..Default::default()
        })
        .await;
    assert_eq!(report.commits.len(), 4);
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 10);
    assert!(state.values().all(|(created, _)| *created == T0 + 3));
}

#[tokio::test]
async fn small_files_are_bin_packed_without_changing_data() {
    let lake = TestLake::new();
    for i in 0..5 {
        lake.ingest(&[event(&format!("s{i}"), "x:1", T0, "")]).await;
    }
    let report = lake.compact().await;
    let raw = report
        .maintenance
        .iter()
        .find(|(t, _)| t == "raw")
        .map(|(_, m)| m.clone())
        .unwrap();
    assert_eq!((raw.files_compacted, raw.files_written), (5, 1));
    assert_eq!(lake.count("raw").await, 5);
    // The bin-packing commit carries no new rows: the next run finds nothing to do.
    assert!(lake.compact().await.commits.is_empty());
    assert_eq!(lake.count("staging").await, 5);
}

#[tokio::test]
async fn rows_in_bin_packed_staging_files_can_still_be_replaced() {
    let lake = TestLake::new();
    let dedup_only = CompactOptions {
        skip_maintenance: true,
        ..Default::default()
    };
    lake.ingest(&[event("p1", "x:1", T0, "")]).await;
    lake.compact_with(dedup_only.clone()).await;
    lake.ingest(&[event("p2", "x:1", T0, "")]).await;
    lake.compact_with(dedup_only).await;
    // Bin-packing rewrites staging's two files into one.
    let report = lake.compact().await;
    let staging = &report.maintenance[1];
    assert_eq!(
        (staging.0.as_str(), staging.1.files_compacted),
        ("staging", 2)
    );

    lake.ingest(&[event("p1", "x:1", T0 + 9, r#","v":2"#)])
        .await;
    let report = lake.compact().await;
    assert_eq!(report.total().updated, 1);
    let state = lake.staging_state().await;
    assert_eq!(state["p1"].0, T0 + 9);
    assert_eq!(state["p2"].0, T0);
}

#[tokio::test]
async fn a_raw_recreated_under_staging_stops_compaction_with_a_clear_error() {
    let lake = TestLake::new();
    for i in 0..3 {
        lake.ingest(&[event(&format!("old{i}"), "x:1", T0, "")])
            .await;
    }
    lake.compact().await;
    // raw is dropped and written anew, past the version staging consumed: its version
    // numbers now name other commits.
    std::fs::remove_dir_all(lake.dir.path().join("raw")).expect("remove raw");
    for i in 0..5 {
        lake.ingest(&[event(&format!("new{i}"), "x:1", T0, "")])
            .await;
    }
    let staging_before = lake.staging_state().await;
    let error = Compactor::new(lake.lake.clone(), CompactOptions::default())
        .run()
        .await
        .expect_err("compaction of a recreated raw must stop");
    let message = error.to_string();
    assert!(message.contains("raw was recreated"), "{message}");
    assert_eq!(
        lake.staging_state().await,
        staging_before,
        "staging unchanged"
    );
}

/// Appends small raw files, like a shard writer, while a run is under way: files that run
/// does not consume.
struct IngestDuringMaintenance {
    lake: lakehouse_lake::Lake,
    calls: std::sync::atomic::AtomicU32,
}

impl lakehouse_compact::CommitFence for IngestDuringMaintenance {
    fn check(&self) -> futures::future::BoxFuture<'_, Result<(), lakehouse_compact::FenceError>> {
        Box::pin(async move {
            // The first call precedes the staging merge: the run has fixed the raw version
            // it consumes, so these files wait for the next run.
            if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                for i in 0..3 {
                    let mut ingestor = lakehouse_ingest::Ingestor::open(
                        &self.lake,
                        lakehouse_ingest::IngestOptions::default(),
                    )
                    .await
                    .expect("open");
                    let line = event(&format!("late{i}"), "x:1", T0, "");
                    let record = lakehouse_ingest::SourceRecord {
                        data: line.as_bytes(),
                        source: "test",
                        position: "1",
                    };
                    ingestor.push(&record).await.expect("push");
                    ingestor.commit().await.expect("commit");
                }
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn maintenance_never_rewrites_raw_files_compaction_has_not_consumed() {
    let lake = TestLake::new();
    for i in 0..3 {
        lake.ingest(&[event(&format!("early{i}"), "x:1", T0, "")])
            .await;
    }
    let no_retention = CompactOptions {
        retention: chrono::Duration::zero(),
        ..Default::default()
    };
    let fence = IngestDuringMaintenance {
        lake: lake.lake.clone(),
        calls: Default::default(),
    };
    let report = Compactor::new(lake.lake.clone(), no_retention.clone())
        .with_fence(std::sync::Arc::new(fence))
        .run()
        .await
        .expect("compact");
    let raw = &report.maintenance[0];
    // The three consumed files are packed into one; the three late ones are left alone,
    // so vacuum (retention zero) cannot delete them before compaction reads them.
    assert_eq!((raw.0.as_str(), raw.1.files_compacted), ("raw", 3));
    let report = lake.compact_with(no_retention).await;
    assert_eq!(report.total().inserted, 3);
    assert_eq!(lake.count("staging").await, 6);
    assert_eq!(lake.count("raw").await, 6);
}

#[tokio::test]
async fn one_raw_commit_bigger_than_the_budget_is_merged_in_parts_exactly_once() {
    let lake = TestLake::new();
    // One raw commit of 120 rows in 12 files; 60 uuids, each twice, the later copy newer.
    let lines: Vec<String> = (0..120)
        .map(|i| {
            event(
                &format!("u{}", i % 60),
                "x:1",
                T0 + i,
                &format!(r#","i":{i}"#),
            )
        })
        .collect();
    let small_files = lakehouse_ingest::IngestOptions {
        file_rows: 10,
        ..Default::default()
    };
    let summary = lake.ingest_with(&lines, small_files).await;
    assert_eq!(summary.raw_files, 12);
    let options = CompactOptions {
        max_rows_per_commit: 25,
        skip_maintenance: true,
        ..Default::default()
    };
    // A run that dies after its first staging commit: part of raw version 1 is in.
    let compactor = Compactor::new(lake.lake.clone(), options.clone());
    let mut report = lakehouse_compact::CompactReport::default();
    let (prepared, _) = compactor
        .prepare_next(&mut report, None)
        .await
        .expect("prepare")
        .expect("work to do");
    assert_eq!(prepared.raw_files_consumed, Some(2));
    lakehouse_compact::merge::commit_merge(prepared, lakehouse_compact::STAGING_APP_ID, None)
        .await
        .expect("first part");

    let report = lake.compact_with(options.clone()).await;
    // 10 more files at 2 per merge; raw version 0 (the table's creation) has none.
    assert_eq!(report.commits.len(), 5);
    let state = lake.staging_state().await;
    assert_eq!(state.len(), 60);
    for (uuid, (created, _)) in &state {
        let i: i64 = uuid[1..].parse().expect("uuid number");
        assert_eq!(*created, T0 + 60 + i, "{uuid} keeps its newer copy");
    }
    assert!(lake.compact_with(options).await.commits.is_empty());
}

#[tokio::test]
async fn ties_within_one_raw_commit_merged_in_parts_still_go_to_the_later_ingest() {
    // Copies of one event at the same instant with different payloads, spread over the
    // files of one raw commit: whatever order the parts are merged in, the copy latest in
    // the input wins.
    for budget in [10, 25, 1_000] {
        let lake = TestLake::new();
        let lines: Vec<String> = (0..120)
            .map(|i| event(&format!("u{}", i % 10), "x:1", T0, &format!(r#","i":{i}"#)))
            .collect();
        let small_files = lakehouse_ingest::IngestOptions {
            file_rows: 10,
            ..Default::default()
        };
        lake.ingest_with(&lines, small_files).await;
        let options = CompactOptions {
            max_rows_per_commit: budget,
            skip_maintenance: true,
            ..Default::default()
        };
        lake.compact_with(options).await;
        let state = lake.staging_state().await;
        for (uuid, (_, payload)) in &state {
            let u: usize = uuid[1..].parse().expect("uuid number");
            let last = 110 + u;
            assert!(
                payload.contains(&format!(r#""i":{last}"#)),
                "budget {budget}: {uuid} {payload}"
            );
        }
    }
}

/// `--vacuum-full` with no retention while a writer holds files it has not committed yet
/// (issue 22 §4): files no commit references are deleted only past their own floor (7 days),
/// so the writer's commit lands and reads back; an orphan older than the floor goes.
#[tokio::test]
async fn vacuum_full_leaves_the_files_a_writer_may_still_commit() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, "")]).await;
    lake.compact().await;
    // A writer mid-run: its files written, its commit to come.
    let mut ingestor = Ingestor::open(&lake.lake, IngestOptions::default())
        .await
        .expect("open");
    for (i, line) in [
        event("b", "x:1", T0, ""),
        event("c", "y:1", T0, ""),
        "no".into(),
    ]
    .iter()
    .enumerate()
    {
        let position = i.to_string();
        let record = SourceRecord {
            data: line.as_bytes(),
            source: "writer",
            position: &position,
        };
        ingestor.push(&record).await.expect("push");
    }
    let prepared = ingestor.prepare().await.expect("prepare");
    let written: Vec<std::path::PathBuf> = prepared
        .raw
        .adds()
        .iter()
        .map(|a| lake.dir.path().join("raw").join(&a.path))
        .collect();
    assert!(written.iter().all(|p| p.exists()));
    // A crashed writer's file from eight days ago.
    let orphan = lake.dir.path().join("raw").join("orphan.parquet");
    std::fs::write(&orphan, b"left by a crash").expect("orphan");
    let eight_days = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .and_then(|f| f.set_modified(eight_days))
        .expect("age the orphan");

    let vacuum_full = CompactOptions {
        retention: chrono::Duration::zero(),
        vacuum_full: true,
        ..CompactOptions::default()
    };
    lake.compact_with(vacuum_full.clone()).await;
    assert!(!orphan.exists(), "the old orphan stays");
    for path in &written {
        assert!(path.exists(), "vacuum deleted {}", path.display());
    }
    prepared
        .raw
        .commit(&prepared.raw_loads, CommitMetadata::records(2))
        .await
        .expect("raw commit");
    prepared
        .quarantine
        .commit(&prepared.quarantine_loads, CommitMetadata::records(1))
        .await
        .expect("quarantine commit");
    lake.compact_with(vacuum_full).await;
    assert_eq!(
        (lake.count("raw").await, lake.count("quarantine").await),
        (3, 1)
    );
    assert_eq!(lake.count("staging").await, 3);
}

/// The commit path never names a file that is gone: files written over an hour before
/// their commit are looked for first, and a missing one fails the commit, which lands
/// nothing (issue 22 §4).
#[tokio::test]
async fn a_commit_naming_an_old_file_that_is_gone_lands_nothing() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, "")]).await;
    let mut ingestor = Ingestor::open(&lake.lake, IngestOptions::default())
        .await
        .expect("open");
    for uuid in ["b", "c"] {
        let line = event(uuid, &format!("{uuid}:1"), T0, "");
        let record = SourceRecord {
            data: line.as_bytes(),
            source: "old writer",
            position: uuid,
        };
        ingestor.push(&record).await.expect("push");
    }
    let prepared = ingestor.prepare().await.expect("prepare");
    let two_hours_ago = chrono::Utc::now().timestamp_millis() - 2 * 3_600_000;
    let adds: Vec<_> = prepared
        .raw
        .adds()
        .iter()
        .cloned()
        .map(|mut add| {
            add.modification_time = two_hours_ago;
            add
        })
        .collect();
    assert_eq!(adds.len(), 2);
    std::fs::remove_file(lake.dir.path().join("raw").join(&adds[0].path)).expect("delete");
    let table = prepared.raw.table();
    let error = Commit::append(table, adds.clone())
        .expect("commit")
        .execute(table)
        .await
        .expect_err("a commit of a missing file");
    assert!(
        error.to_string().contains("is gone: nothing was committed"),
        "{error}"
    );
    assert_eq!(lake.count("raw").await, 1);
    // The old file that is still there commits.
    Commit::append(table, adds[1..].to_vec())
        .expect("commit")
        .execute(table)
        .await
        .expect("an old file that exists commits");
    assert_eq!(lake.count("raw").await, 2);
}

/// A commit that certainly did not land deletes the files it wrote, in the commit path,
/// whoever the writer; a commit of files another process may yet commit (a grouped
/// commit's manifests) keeps them (issue 25).
#[tokio::test]
async fn a_commit_that_loses_deletes_its_files_unless_it_keeps_them() {
    let lake = TestLake::new();
    lake.ingest(&[event("a", "x:1", T0, "")]).await;
    // Three writers of one shard prepare their batch on the same snapshot.
    let mut prepared = Vec::new();
    for writer in ["b", "c", "d"] {
        let mut ingestor = Ingestor::open(&lake.lake, IngestOptions::default())
            .await
            .expect("open");
        let line = event(writer, "x:1", T0, "");
        let record = SourceRecord {
            data: line.as_bytes(),
            source: "shard",
            position: writer,
        };
        ingestor.push(&record).await.expect("push");
        prepared.push(ingestor.prepare().await.expect("prepare"));
    }
    let files = |i: usize| -> Vec<std::path::PathBuf> {
        prepared[i]
            .raw
            .adds()
            .iter()
            .map(|a| lake.dir.path().join("raw").join(&a.path))
            .collect()
    };
    let txn = || deltalake::kernel::Transaction::new("lakehouse-ingest:s/shard-0", 1);
    let commit = |i: usize| {
        let raw = &prepared[i].raw;
        Commit::append(raw.table(), raw.adds().to_vec())
            .expect("commit")
            .with_transaction(txn())
    };
    commit(0)
        .execute(prepared[0].raw.table())
        .await
        .expect("the first lands");
    let lost = commit(1).execute(prepared[1].raw.table()).await;
    assert!(
        lost.as_ref().is_err_and(|e| e.committed_nothing()),
        "{lost:?}"
    );
    let kept = commit(2)
        .keeping_files()
        .execute(prepared[2].raw.table())
        .await;
    assert!(kept.is_err_and(|e| e.committed_nothing()));
    assert!(files(0).iter().all(|p| p.exists()), "the landed files stay");
    assert!(
        !files(1).is_empty() && files(1).iter().all(|p| !p.exists()),
        "the loser's files stay"
    );
    assert!(
        files(2).iter().all(|p| p.exists()),
        "kept files were deleted"
    );
    assert_eq!(lake.count("raw").await, 2);
}
