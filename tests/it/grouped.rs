//! Grouped commits (issue 12, first piece): the committer's core lands many writers'
//! manifests in one commit, exactly once, whatever order and how often they arrive.

use lakehouse_ingest::manifest::{Manifest, commit_manifests};
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::Table;

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
        first_sequence_number: None,
        last_sequence_number: None,
    }
}

#[tokio::test]
async fn manifests_land_once_in_order_per_writer_whatever_their_arrival() {
    let lake = TestLake::new();
    let raw = || async { lake.lake.open(Table::Raw).await.expect("raw") };
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
    let grouped = commit_manifests(&raw().await, first).await.expect("commit");
    assert!(grouped.committed.is_some());
    // w1 v1+v2 and w3 v1 land in one commit; the copy of w1v1 is a duplicate; w2v2 waits.
    assert_eq!((grouped.landed, grouped.already), (3, 1));
    assert_eq!(grouped.waiting, vec![w2v2.clone()]);
    assert_eq!(lake.count("raw").await, 3 + 4 + 7);

    // The committer restarted before acknowledging: everything is handed over again, with
    // the missing manifest now.
    let again = vec![w1v1, w1v2, w3v1, w2v2.clone(), w2v1];
    let grouped = commit_manifests(&raw().await, again).await.expect("commit");
    assert_eq!((grouped.landed, grouped.already), (2, 3));
    assert!(grouped.waiting.is_empty());
    assert_eq!(lake.count("raw").await, 3 + 4 + 7 + 5 + 6);

    // Nothing new: no commit at all.
    let grouped = commit_manifests(&raw().await, vec![w2v2])
        .await
        .expect("commit");
    assert!(grouped.committed.is_none());
    assert_eq!(grouped.already, 1);
    let raw = raw().await;
    let snapshot = raw.snapshot().expect("snapshot");
    for (writer, version) in [("writer-1", 2), ("writer-2", 2), ("writer-3", 1)] {
        let txn = snapshot
            .transaction_version(raw.log_store().as_ref(), writer)
            .await
            .expect("txn");
        assert_eq!(txn, Some(version), "{writer}");
    }
}
