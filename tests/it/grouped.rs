//! Grouped mode: writers hand manifests over through a table's manifest log; one committer
//! lands many writers' files in one commit, exactly once, whatever order and how often they
//! arrive, through retried writers and crashed committers.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use lakehouse_ingest::committer::Committer;
use lakehouse_ingest::manifest::{Manifest, commit_manifests};
use lakehouse_ingest::manifest_log::{HandOver, ManifestLog, StoreManifestLog, hand_over_files};
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::log::txn_version;
use lakehouse_lake::{CommitMetadata, Table};

use crate::helpers::{TestLake, event};

const T0: i64 = 1_700_000_000;

/// Writer `shard`'s batch `version`: `n` events written to raw, not committed.
async fn manifest(lake: &TestLake, shard: usize, version: i64, n: usize) -> Manifest {
    let mut ingestor = Ingestor::open(&lake.lake, IngestOptions::default())
        .await
        .expect("open");
    for i in 0..n {
        let line = event(&format!("s{shard}-v{version}-{i}"), "x:1", T0, "");
        let position = i.to_string();
        let record = SourceRecord {
            data: line.as_bytes(),
            source: "test",
            position: &position,
        };
        ingestor.push(&record).await.expect("push");
    }
    let prepared = ingestor.prepare().await.expect("prepare");
    Manifest {
        app_id: format!("writer-{shard}"),
        version,
        adds: prepared.raw.adds().to_vec(),
        records: n as u64,
        first_sequence_number: Some(format!("{version}000")),
        last_sequence_number: Some(format!("{version}999")),
        reasons: Default::default(),
    }
}

async fn txn_versions(raw: &DeltaTable, writers: &[&str]) -> HashMap<String, i64> {
    let mut versions = HashMap::new();
    for writer in writers {
        let version = txn_version(raw, writer).await.expect("txn");
        versions.extend(version.map(|v| (writer.to_string(), v)));
    }
    versions
}

#[tokio::test]
async fn manifests_land_once_in_order_per_writer_whatever_their_arrival() {
    let lake = TestLake::new();
    let raw = || async { lake.lake.open(Table::Raw).await.expect("raw") };
    let writers = ["writer-1", "writer-2", "writer-3"];
    // Three writers; writer 2's version 2 arrives before its version 1 is handed over.
    let w1v1 = manifest(&lake, 1, 1, 3).await;
    let w1v2 = manifest(&lake, 1, 2, 4).await;
    let w2v1 = manifest(&lake, 2, 1, 5).await;
    let w2v2 = manifest(&lake, 2, 2, 6).await;
    let w3v1 = manifest(&lake, 3, 1, 7).await;

    let first = vec![
        w1v2.clone(),
        w3v1.clone(),
        w1v1.clone(),
        w2v2.clone(),
        w1v1.clone(),
    ];
    let table = raw().await;
    let grouped = commit_manifests(&table, &txn_versions(&table, &writers).await, first)
        .await
        .expect("commit");
    // w1 v1+v2 and w3 v1 land in one commit; the copy of w1v1 is a duplicate; w2v2 waits.
    assert!(grouped.committed.is_some());
    assert_eq!((grouped.landed.len(), grouped.already), (3, 1));
    assert_eq!(grouped.waiting, vec![w2v2.clone()]);
    assert_eq!(lake.count("raw").await, 3 + 4 + 7);

    // The committer restarted before acknowledging: everything is handed over again, with
    // the missing manifest now.
    let again = vec![w1v1, w1v2, w3v1, w2v2.clone(), w2v1];
    let table = raw().await;
    let grouped = commit_manifests(&table, &txn_versions(&table, &writers).await, again)
        .await
        .expect("commit");
    assert_eq!((grouped.landed.len(), grouped.already), (2, 3));
    assert!(grouped.waiting.is_empty());
    assert_eq!(lake.count("raw").await, 3 + 4 + 7 + 5 + 6);

    // Nothing new: no commit at all.
    let table = raw().await;
    let grouped = commit_manifests(&table, &txn_versions(&table, &writers).await, vec![w2v2])
        .await
        .expect("commit");
    assert!(grouped.committed.is_none());
    assert_eq!(grouped.already, 1);
    let table = raw().await;
    let expected = HashMap::from([
        ("writer-1".to_string(), 2),
        ("writer-2".to_string(), 2),
        ("writer-3".to_string(), 1),
    ]);
    assert_eq!(txn_versions(&table, &writers).await, expected);
}

/// The writer's side as the ingest Lambda runs it: its checkpoint is its latest manifest.
async fn next_version(log: &dyn ManifestLog, writer: &str) -> i64 {
    let latest = log.latest(writer).await.expect("latest");
    latest.map_or(0, |m| m.version) + 1
}

#[tokio::test]
async fn the_manifest_log_carries_each_batch_once_through_retried_writers_and_crashed_committers() {
    let lake = TestLake::new();
    let table = lake.lake.open(Table::Raw).await.expect("raw");
    let log: Arc<dyn ManifestLog> = Arc::new(StoreManifestLog::of(&table));
    let writers = ["writer-1", "writer-2"];
    let mut expected = 0;

    // Each writer hands over two batches.
    for shard in 1..=2 {
        for _ in 0..2 {
            let version = next_version(log.as_ref(), writers[shard - 1]).await;
            let m = manifest(&lake, shard, version, 10 * shard).await;
            let handed = hand_over_files(log.as_ref(), &table, &m).await;
            assert_eq!(handed.expect("hand over"), HandOver::Stored);
            expected += 10 * shard as i64;
        }
    }
    assert_eq!(next_version(log.as_ref(), "writer-1").await, 3);

    // Writer 1 is retried after its hand-over was stored but before it learnt so: its second
    // attempt at version 2 finds the first one, and its own files are deleted.
    let retry = manifest(&lake, 1, 2, 10).await;
    let handed = hand_over_files(log.as_ref(), &table, &retry).await;
    match handed.expect("hand over") {
        HandOver::Taken(stored) => assert_ne!(stored.adds, retry.adds),
        other => panic!("expected Taken, got {other:?}"),
    }
    for add in &retry.adds {
        let path = format!("{}/raw/{}", lake.path(), add.path);
        assert!(!std::path::Path::new(&path).exists(), "{path} discarded");
    }

    // A committer crashes after its commit, before forgetting: the next one lands nothing
    // twice, and forgets.
    let keys = log.keys().await.expect("keys");
    assert_eq!(keys.len(), 4);
    let manifests = futures::future::join_all(keys.iter().map(|k| log.get(k))).await;
    let manifests = manifests
        .into_iter()
        .map(|m| m.expect("get").expect("stored"));
    let table_now = lake.lake.open(Table::Raw).await.expect("raw");
    commit_manifests(&table_now, &HashMap::new(), manifests.collect())
        .await
        .expect("crashed round's commit");
    assert_eq!(lake.count("raw").await, expected);

    let mut committer = Committer::new(table.clone(), log.clone());
    let round = committer.commit_pending().await.expect("round");
    assert_eq!((round.landed.len(), round.already), (0, 4));
    assert!(round.committed.is_none());
    assert_eq!(lake.count("raw").await, expected);
    // Only each writer's latest manifest is left: the checkpoint.
    let left: Vec<_> = log.keys().await.expect("keys");
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|k| k.version == 2));

    // New batches land in one commit with both writers' txns and their lineage.
    for shard in 1..=2 {
        let version = next_version(log.as_ref(), writers[shard - 1]).await;
        assert_eq!(version, 3);
        let mut m = manifest(&lake, shard, version, 5).await;
        // What a writer's quarantine manifest carries: its rows by reason kind.
        m.reasons = [("invalid JSON".to_string(), shard as u64)].into();
        hand_over_files(log.as_ref(), &table, &m)
            .await
            .expect("hand over");
        expected += 5;
    }
    let round = committer.commit_pending().await.expect("round");
    assert_eq!(
        (round.landed.len(), round.writers, round.records),
        (2, 2, 10)
    );
    assert_eq!(lake.count("raw").await, expected);
    let version = round.committed.expect("a commit").version;
    let actions = lakehouse_lake::log::commit_actions(table.log_store().as_ref(), version)
        .await
        .expect("read")
        .expect("commit");
    let metadata = CommitMetadata::from_actions(&actions).expect("metadata");
    // The grouped commit sums its manifests' reasons, for `lakehouse status`.
    assert_eq!(
        metadata.reasons,
        Some([("invalid JSON".to_string(), 3)].into())
    );
    let batches = metadata.batches.expect("lineage");
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].last_sequence_number.as_deref(), Some("3999"));
    let raw = lake.lake.open(Table::Raw).await.expect("raw");
    let expected_txns = HashMap::from([("writer-1".to_string(), 3), ("writer-2".to_string(), 3)]);
    assert_eq!(txn_versions(&raw, &writers).await, expected_txns);

    // A notification that names only version 5 (version 4's was lost): both land, in order.
    for version in [4, 5] {
        let m = manifest(&lake, 1, version, 2).await;
        hand_over_files(log.as_ref(), &table, &m)
            .await
            .expect("hand over");
        expected += 2;
    }
    let only_five = vec![lakehouse_ingest::manifest_log::ManifestKey {
        app_id: "writer-1".into(),
        version: 5,
    }];
    let round = committer.commit_keys(only_five).await.expect("round");
    assert_eq!((round.landed.len(), round.waiting), (2, 0));
    assert_eq!(lake.count("raw").await, expected);
}

/// `make bench_scale`'s simulation, short: 20 shards handing over a batch a second for 15 s
/// with writers and the committer crashing; then direct mode briefly. The full run and its
/// figures: docs/scaling.md.
#[test]
fn the_scale_simulation_loses_and_doubles_nothing_through_crashes() {
    let examples = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("examples").join("scale")))
        .expect("the target directory");
    assert!(
        examples.exists(),
        "{} is missing: `cargo test --all-targets` (make test) builds it",
        examples.display()
    );
    let run = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(&examples)
            .args(args)
            .output()
            .expect("run the simulation");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stdout}\n{stderr}");
        let last = stdout.lines().last().expect("a summary line");
        serde_json::from_str(last).expect("the last line is JSON")
    };
    let grouped = run(&[
        "--shards",
        "20",
        "--seconds",
        "15",
        "--interval",
        "1",
        "--window",
        "0.5",
        "--committer-crash-every",
        "3",
        "--writer-crash",
        "0.05",
        "--seed",
        "7",
    ]);
    assert_eq!(
        (grouped["lost"].as_u64(), grouped["duplicated"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(
        grouped["committer_crashes"].as_u64() >= Some(2),
        "{grouped}"
    );
    assert!(grouped["writer_crashes"].as_u64() >= Some(1), "{grouped}");
    // Many manifests per commit: 20 writers at ~1 batch/s each, a commit every ~0.5 s.
    let (manifests, commits) = (
        grouped["manifests_per_s"].as_f64(),
        grouped["commits_per_s"].as_f64(),
    );
    assert!(manifests > Some(10.0) && commits < manifests, "{grouped}");

    let direct = run(&[
        "--mode",
        "direct",
        "--shards",
        "4",
        "--seconds",
        "5",
        "--interval",
        "1",
    ]);
    assert_eq!(
        (direct["lost"].as_u64(), direct["duplicated"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(direct["commits"].as_u64() > Some(4), "{direct}");
}

/// Two committers at once (a reserved concurrency raised by mistake, or a CLI committer
/// beside the Lambda), both planning on the same version of raw: one lands the batches, the
/// other commits nothing and says so, and a next round finds them landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_committers_at_once_land_every_batch_once() {
    let lake = TestLake::new();
    let table = lake.lake.open(Table::Raw).await.expect("raw");
    let log: Arc<dyn ManifestLog> = Arc::new(StoreManifestLog::of(&table));
    let mut expected = 0;
    for round in 1..=3 {
        let mut manifests = Vec::new();
        for shard in 1..=4 {
            let m = manifest(&lake, shard, round, 3).await;
            hand_over_files(log.as_ref(), &table, &m)
                .await
                .expect("hand over");
            manifests.push(m);
            expected += 3;
        }
        // Both read the table and the writers' txn versions before either commits.
        let raw = lake.lake.open(Table::Raw).await.expect("raw");
        let writers: Vec<String> = (1..=4).map(|s| format!("writer-{s}")).collect();
        let names: Vec<&str> = writers.iter().map(String::as_str).collect();
        let committed = txn_versions(&raw, &names).await;
        let (a, b) = tokio::join!(
            commit_manifests(&raw, &committed, manifests.clone()),
            commit_manifests(&raw, &committed, manifests.clone()),
        );
        let landed: Vec<usize> = [&a, &b]
            .iter()
            .map(|outcome| match outcome {
                Ok(grouped) => grouped.landed.len(),
                Err(e) => {
                    assert!(e.to_string().contains("nothing was committed"), "{e}");
                    0
                }
            })
            .collect();
        assert_eq!(landed.iter().sum::<usize>(), 4, "round {round}: {landed:?}");
        // The loser's next round, as the stream mapping retries it: nothing more lands.
        let mut again = Committer::new(lake.lake.open(Table::Raw).await.expect("raw"), log.clone());
        let round_again = again.commit_pending().await.expect("next round");
        assert_eq!(round_again.landed.len(), 0, "round {round}");
        assert_eq!(lake.count("raw").await, expected, "round {round}");
    }
}
