//! Many writers at once on emulated AWS: shards ingesting in parallel while compaction
//! runs, two compactions racing for the lease, a lease lost to an overrunning run, and a
//! lease store that fails under a run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lakehouse_compact::{CompactError, CompactOptions, Compactor};
use lakehouse_compact_lambda::lease::{Lease, LeaseError};
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::{Lake, Table};

use super::ingest_lambda::{assert_lake_holds, deliver};
use super::kinesis::Stream;
use super::moto::Moto;
use super::stack::{LAKE, LEASES, Stack, StackOptions};
use super::workload::Workload;

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_shards_ingest_while_compaction_runs() {
    const SHARDS: usize = 8;
    let options = StackOptions {
        ingest_instances: SHARDS,
        ..StackOptions::default()
    };
    let stack = Stack::start(options).await;
    // 50 batches of 10 Kinesis records per shard, one event type (about two files per
    // commit) so the run measures concurrency rather than moto's per-request cost.
    let w = Workload::with_types("many", 3600, SHARDS, 1);
    let stream = Stream::create(&stack.moto, "busy", SHARDS as i32).await;
    stream.put(&w.records).await;
    let mut shards = Vec::new();
    for shard in stream.shard_ids() {
        let records = stream.read_shard(&shard).await;
        shards.push((shard, records));
    }
    let batches: usize = shards.iter().map(|(_, r)| r.len().div_ceil(10)).sum();
    assert!(
        batches >= 8 * 45,
        "about 50 batches per shard, got {batches}"
    );

    let started = Instant::now();
    let ingesting = AtomicBool::new(true);
    let (redeliveries, compactions) = std::thread::scope(|scope| {
        let workers: Vec<_> = shards
            .iter()
            .map(|(shard, records)| scope.spawn(|| deliver(&stack, &stream, shard, records, 10)))
            .collect();
        let compactor = scope.spawn(|| {
            let mut runs = Vec::new();
            while ingesting.load(Ordering::SeqCst) {
                let started = Instant::now();
                let run = stack.compact();
                eprintln!("compaction {} in {:.1?}", run["status"], started.elapsed());
                runs.push(run);
                std::thread::sleep(Duration::from_secs(2));
            }
            runs
        });
        let redeliveries: usize = workers
            .into_iter()
            .map(|w| w.join().expect("shard worker"))
            .sum();
        ingesting.store(false, Ordering::SeqCst);
        (redeliveries, compactor.join().expect("compactor"))
    });
    let elapsed = started.elapsed();
    let compacted = compactions
        .iter()
        .filter(|r| r["status"] == "compacted")
        .count();
    let retries: f64 = stack
        .emulator
        .function_output()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|d| d.get("CommitRetries").and_then(|v| v.as_f64()))
        .sum();
    eprintln!(
        "{batches} batches on {SHARDS} shards in {elapsed:.1?} beside {} compactions: \
         {redeliveries} redeliveries, {retries} commit retries",
        compactions.len()
    );
    let warnings: Vec<_> = stack
        .emulator
        .function_output()
        .into_iter()
        .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
        .collect();
    assert_eq!(
        redeliveries, 0,
        "ingest and compaction failed each other: {warnings:#?}"
    );
    assert!(
        compacted >= 1,
        "compaction ran while ingesting: {compactions:?}"
    );
    assert_eq!(stack.compact()["status"], "compacted");
    assert_lake_holds(&stack, &w);
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_compactions_at_once_one_holds_the_lease() {
    let options = StackOptions {
        compact_instances: 2,
        ..StackOptions::default()
    };
    let stack = Stack::start(options).await;
    let w = Workload::new("race", 3000, 2);
    let stream = Stream::create(&stack.moto, "race", 2).await;
    stream.put(&w.records).await;
    for shard in stream.shard_ids() {
        let records = stream.read_shard(&shard).await;
        assert_eq!(deliver(&stack, &stream, &shard, &records, 500), 0);
    }
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| stack.compact());
        let b = scope.spawn(|| stack.compact());
        (a.join().expect("first"), b.join().expect("second"))
    });
    // The loser finds the lease held ("skipped"), or, had both acquisitions interleaved,
    // would lose its fencing token and stop before its first commit ("stopped").
    let mut statuses = [a["status"].clone(), b["status"].clone()];
    statuses.sort_by_key(|s| s.to_string());
    assert_eq!(statuses[0], "compacted", "{a}\n{b}");
    assert!(
        statuses[1] == "skipped" || statuses[1] == "stopped",
        "{a}\n{b}"
    );
    assert_lake_holds(&stack, &w);
    // The lease was released: the next run gets it at once, with a new fencing token.
    let next = stack.compact();
    assert_eq!(next["status"], "compacted", "{next}");
    let winner = if a["status"] == "compacted" { &a } else { &b };
    assert!(next["lease_token"].as_i64() > winner["lease_token"].as_i64());
}

#[ignore = "needs moto: pip install 'moto[server]' (make test installs it and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lease_commits_nothing() {
    let moto = Moto::start().await;
    moto.create_bucket("lake").await;
    moto.create_key_table(LEASES).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk);
    let key = "compact|test";
    let acquire = |owner: &'static str, ttl: Duration| {
        Lease::acquire(dynamodb.clone(), LEASES, key, owner, ttl)
    };
    // The overrunning run: its lease expires while it works.
    let old = acquire("old", Duration::from_millis(1))
        .await
        .expect("dynamodb")
        .expect("free");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new = acquire("new", Duration::from_secs(60))
        .await
        .expect("dynamodb")
        .expect("expired lease is free");
    assert_eq!(new.token(), old.token() + 1);
    let held = acquire("third", Duration::from_secs(60))
        .await
        .expect("dynamodb")
        .expect_err("held");
    assert_eq!(held.owner, "new");
    assert!(matches!(old.renew().await, Err(LeaseError::Lost { .. })));
    new.renew().await.expect("the holder renews");

    // Compaction fenced by the lost lease stops before its first commit.
    let lake = lake_with_one_event(&moto).await;
    let fenced = Compactor::new(lake.clone(), CompactOptions::default())
        .with_fence(std::sync::Arc::new(old))
        .run()
        .await;
    assert!(matches!(fenced, Err(CompactError::Fenced(_))), "{fenced:?}");
    let staging = lake.open(Table::Staging).await.expect("open staging");
    assert_eq!(
        staging.version(),
        Some(0),
        "nothing committed to staging after its creation"
    );
}

#[ignore = "needs moto: pip install 'moto[server]' (make test installs it and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_cannot_be_renewed_is_an_error_not_a_quiet_stop() {
    let moto = Moto::start().await;
    moto.create_bucket("lake").await;
    moto.create_key_table(LEASES).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk);
    let lease = Lease::acquire(
        dynamodb.clone(),
        LEASES,
        "compact|test",
        "run",
        Duration::from_secs(60),
    )
    .await
    .expect("dynamodb")
    .expect("free");
    // The lease store fails under the run (here: its table is gone).
    dynamodb
        .delete_table()
        .table_name(LEASES)
        .send()
        .await
        .expect("delete the lease table");
    assert!(matches!(
        lease.renew().await,
        Err(LeaseError::Dynamo { .. })
    ));

    let lake = lake_with_one_event(&moto).await;
    let result = Compactor::new(lake.clone(), CompactOptions::default())
        .with_fence(std::sync::Arc::new(lease))
        .run()
        .await;
    assert!(
        matches!(result, Err(CompactError::FenceUnavailable(_))),
        "{result:?}"
    );
    let staging = lake.open(Table::Staging).await.expect("open staging");
    assert_eq!(staging.version(), Some(0), "nothing committed to staging");
}

/// A lake on moto's S3 whose `raw` holds one event, not yet compacted.
async fn lake_with_one_event(moto: &Moto) -> Lake {
    let lake = Lake::parse(LAKE).expect("lake").with_storage_options([
        ("aws_endpoint_url", moto.endpoint.as_str()),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", super::moto::REGION),
    ]);
    let mut ingestor = Ingestor::open(&lake, IngestOptions::default())
        .await
        .expect("open");
    let line = crate::helpers::event("a", "t:s", 1_764_000_000, "");
    let record = SourceRecord {
        data: line.as_bytes(),
        source: "test",
        position: "1",
    };
    ingestor.push(&record).await.expect("push");
    assert_eq!(ingestor.commit().await.expect("commit").appended, 1);
    lake
}
