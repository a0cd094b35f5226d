//! Grouped mode on emulated AWS: ingest Lambdas on 8 shards hand their files over as
//! manifests to a DynamoDB table; its stream, read from moto as the event source mapping
//! reads it, invokes the committer Lambda, which is killed mid-invocation (before its
//! commit, and after it) and restarted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde_json::{Value, json};

use super::ingest_lambda::{assert_lake_holds, deliver, metric_sum, stream_with};
use super::lambda::{COMMIT, COMPACT, INGEST, invoke};
use super::moto::Moto;
use super::proxy::Action;
use super::stack::{GLUE_DATABASE, LAKE, MANIFESTS, Stack, StackOptions};
use super::workload::Workload;
use lakehouse_lake::Table;

/// Compaction's fan-out in the end-to-end test: ranges of event types run at once.
const RANGES: u32 = 4;

/// The manifest table's stream, read shard by shard from the oldest record.
struct ManifestStream {
    client: aws_sdk_dynamodbstreams::Client,
    iterators: Vec<Option<String>>,
}

impl ManifestStream {
    async fn open(moto: &Moto, table: &str) -> ManifestStream {
        let arn = aws_sdk_dynamodb::Client::new(&moto.sdk)
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe the manifest table")
            .table()
            .and_then(|t| t.latest_stream_arn().map(str::to_string))
            .expect("the manifest table has a stream");
        let client = aws_sdk_dynamodbstreams::Client::new(&moto.sdk);
        let description = client
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .expect("describe the stream");
        let mut iterators = Vec::new();
        for shard in description
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let iterator = client
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard.shard_id().unwrap_or_default())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("shard iterator");
            iterators.push(iterator.shard_iterator().map(str::to_string));
        }
        assert!(!iterators.is_empty(), "the stream has shards");
        ManifestStream { client, iterators }
    }

    /// The records since the last call, as the event source mapping hands them to Lambda.
    async fn next_records(&mut self) -> Vec<Value> {
        let mut records = Vec::new();
        for iterator in &mut self.iterators {
            let Some(current) = iterator.take() else {
                continue;
            };
            let output = self
                .client
                .get_records()
                .shard_iterator(&current)
                .send()
                .await
                .expect("get records");
            for record in output.records() {
                let Some(change) = record.dynamodb() else {
                    continue;
                };
                let keys: serde_json::Map<String, Value> = change
                    .keys()
                    .map(|keys| {
                        keys.iter()
                            .map(|(name, value)| (name.clone(), attribute_json(value)))
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(json!({
                    "eventName": record.event_name().map(|n| n.as_str()).unwrap_or_default(),
                    "eventSource": "aws:dynamodb",
                    "dynamodb": {
                        "Keys": keys,
                        "SequenceNumber": change.sequence_number().unwrap_or_default(),
                        "StreamViewType": "KEYS_ONLY",
                    },
                }));
            }
            *iterator = output.next_shard_iterator().map(str::to_string);
        }
        records
    }
}

fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        other => json!({ "unexpected": format!("{other:?}") }),
    }
}

/// Where a round's committer is killed: while it reads the manifests (before its commit), or
/// once raw's commit has landed and before it could acknowledge anything.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kill {
    BeforeCommit,
    AfterCommit,
}

fn kill_in(round: usize, rounds: usize) -> Option<Kill> {
    if round == rounds / 3 {
        Some(Kill::BeforeCommit)
    } else if round == 2 * rounds / 3 {
        Some(Kill::AfterCommit)
    } else {
        None
    }
}

/// Invokes the committer with `records` and kills it at `kill`, on cue from the fault
/// proxy holding the request the kill must come during.
fn invoke_and_kill(stack: &mut Stack, records: &[Value], kill: Kill) {
    let proxy = stack.proxy.as_ref().expect("the fault proxy");
    let hold = Duration::from_secs(3);
    let seen = proxy.triggered();
    match kill {
        // The committer's first DynamoDB call of a round reads a manifest.
        Kill::BeforeCommit => proxy.inject("POST", "/", Action::HoldBefore(hold), 1),
        Kill::AfterCommit => {
            proxy.inject("PUT", "/events/raw/_delta_log/", Action::HoldAfter(hold), 1)
        }
    }
    let (port, event) = (stack.emulator.port, json!({ "Records": records }));
    let pending = std::thread::spawn(move || invoke(port, COMMIT, &event, hold * 2));
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.triggered() == seen {
        assert!(
            Instant::now() < deadline,
            "the committer never reached {kill:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stack.emulator.kill_function(COMMIT);
    let outcome = pending.join().expect("the invocation thread");
    assert!(
        outcome.is_err(),
        "killed at {kill:?}, yet it answered: {outcome:?}"
    );
    proxy.clear();
    stack.emulator.start_function(COMMIT, 1, &stack.env);
}

/// Invokes the committer with `records` until it succeeds, as the event source mapping
/// retries a stream batch; returns the failed attempts.
fn commit_until_done(stack: &Stack, records: &[Value]) -> usize {
    let event = json!({ "Records": records });
    for attempt in 0..5 {
        match stack.emulator.invoke(COMMIT, &event) {
            Ok(_) => return attempt,
            Err(e) => eprintln!("committer attempt {attempt} failed: {e}"),
        }
    }
    panic!("the committer keeps failing on the same records");
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_mode_lands_every_batch_once_through_a_killed_committer() {
    // At the volume grouped mode is for, raw is partitioned by date only (docs/scaling.md):
    // this runs both together, with compaction and the Glue sync on top.
    let options = StackOptions {
        grouped: true,
        fault_proxy: true,
        raw_layout: Some("date"),
        compact_instances: RANGES as usize,
        ..StackOptions::default()
    };
    let mut stack = Stack::start(options).await;
    let w = Workload::new("grouped", 2400, 8);
    let (stream, shards) = stream_with(&stack, "events", 8, &w).await;
    let mut manifests = ManifestStream::open(&stack.moto, MANIFESTS).await;
    let batches: Vec<Vec<_>> = shards
        .iter()
        .map(|(_, records)| records.chunks(60).map(<[_]>::to_vec).collect())
        .collect();
    let rounds = batches.iter().map(Vec::len).max().unwrap_or(0);
    assert!(rounds >= 4, "several batches per shard");
    let (mut invocations, mut handed, mut kills) = (0, 0, 0);
    for round in 0..rounds {
        // Every shard's next batch: the writers hand over, nobody commits.
        for ((shard, _), shard_batches) in shards.iter().zip(&batches) {
            if let Some(batch) = shard_batches.get(round) {
                assert_eq!(deliver(&stack, &stream, shard, batch, 60), 0, "{shard}");
                handed += 1;
            }
        }
        let records = manifests.next_records().await;
        if let Some(kill) = kill_in(round, rounds) {
            invoke_and_kill(&mut stack, &records, kill);
            kills += 1;
            // The mapping retries the same records on a fresh instance.
            let retry = stack
                .emulator
                .invoke(COMMIT, &json!({ "Records": records }))
                .expect("the retry lands");
            let raw = &retry["raw"];
            let raw_manifests = records
                .iter()
                .filter(|r| {
                    let writer = r["dynamodb"]["Keys"]["writer"]["S"].as_str();
                    let raw = writer.is_some_and(|w| w.starts_with(&format!("{LAKE}/raw/|")));
                    raw && r["eventName"] == "INSERT"
                })
                .count();
            assert!(raw_manifests > 0);
            let landed = raw["landed"].as_array().map(Vec::len);
            if kill == Kill::AfterCommit {
                // Raw's commit had landed: its retry finds every manifest in the table.
                assert_eq!(landed, Some(0), "{retry}");
                assert_eq!(
                    raw["already"].as_u64(),
                    Some(raw_manifests as u64),
                    "{retry}"
                );
            } else {
                assert_eq!(landed, Some(raw_manifests), "{retry}");
            }
            invocations += 2;
            continue;
        }
        invocations += 1 + commit_until_done(&stack, &records);
    }
    // The mapping delivers what is left (the last hand-overs' records came with the last
    // round; a retry of nothing is harmless).
    let rest = manifests.next_records().await;
    if !rest.is_empty() {
        invocations += 1 + commit_until_done(&stack, &rest);
    }

    assert_eq!(kills, 2);
    // Each batch handed over its raw manifest (and most a quarantine one too).
    assert!(metric_sum(&stack, "HandedOver") as usize >= handed);
    assert!(metric_sum(&stack, "ManifestsLanded") > 0.0);
    // Grouped: raw took one commit per committer round, not one per batch.
    let lake = stack.moto.lake(LAKE);
    let raw = lake.open(Table::Raw).await.expect("raw");
    let commits = raw.version().unwrap_or(0) as usize;
    assert!(
        commits <= invocations + 1,
        "{commits} raw commits for {invocations} rounds"
    );
    assert!(
        commits * 4 < handed,
        "{commits} raw commits for {handed} batches"
    );
    // Compaction fanned out as Terraform's default split: one invocation per range of keys,
    // all at once.
    let port = stack.emulator.port;
    let runs: Vec<_> = (0..RANGES)
        .map(|i| {
            let event = json!({ "source": "aws.events", "keys": format!("{i}/{RANGES}") });
            std::thread::spawn(move || invoke(port, COMPACT, &event, Duration::from_secs(300)))
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let compacted = run.join().expect("join").expect("a range's compaction");
        // Range 0 also maintains the tables meanwhile, and ranges may replace rows in one
        // file: a merge may plan again (never for another range's new events: fanout.rs
        // checks that), but lands.
        assert_eq!(compacted["status"], "compacted", "range {i}: {compacted}");
    }
    assert_lake_holds(&stack, &w);
    let partitions = |delta: &deltalake::DeltaTable| {
        let snapshot = delta.snapshot().expect("snapshot");
        snapshot.metadata().partition_columns().to_vec()
    };
    assert_eq!(partitions(&raw), ["event_date"]);
    let staging = lake.open(Table::Staging).await.expect("staging");
    assert_eq!(partitions(&staging), ["event_date", "event_type"]);
    let glue = aws_sdk_glue::Client::new(&stack.moto.sdk)
        .get_table()
        .database_name(GLUE_DATABASE)
        .name("raw")
        .send()
        .await
        .expect("raw in Glue");
    let keys: Vec<_> = glue
        .table()
        .map(|t| {
            t.partition_keys()
                .iter()
                .map(|k| k.name().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(keys, ["event_date"], "Glue follows raw's layout");

    // The manifest table keeps each writer's latest manifest (its checkpoint), no more.
    let items = aws_sdk_dynamodb::Client::new(&stack.moto.sdk)
        .scan()
        .table_name(MANIFESTS)
        .send()
        .await
        .expect("scan manifests")
        .items()
        .to_vec();
    let mut per_writer: BTreeMap<String, usize> = BTreeMap::new();
    for item in &items {
        let writer = item["writer"].as_s().expect("writer").clone();
        *per_writer.entry(writer).or_default() += 1;
    }
    assert_eq!(
        per_writer.len(),
        16,
        "8 shards x (raw, quarantine): {per_writer:?}"
    );
    assert!(per_writer.values().all(|n| *n == 1), "{per_writer:?}");
    eprintln!("{handed} batches handed over, {invocations} committer invocations");
}

/// Switching a running stack from direct to grouped mode (a Terraform variable): the first
/// grouped batch of each shard resumes after its last direct commit, so a redelivery across
/// the switch adds nothing and nothing is skipped.
#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_direct_to_grouped_mode_resumes_each_shard_exactly() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let w = Workload::new("switch", 400, 2);
    let (stream, shards) = stream_with(&stack, "events", 2, &w).await;
    let halves: Vec<(&String, Vec<_>, Vec<_>)> = shards
        .iter()
        .map(|(shard, records)| {
            let (a, b) = records.split_at(records.len() / 2);
            (shard, a.to_vec(), b.to_vec())
        })
        .collect();
    for (shard, first, _) in &halves {
        assert_eq!(deliver(&stack, &stream, shard, first, 100), 0);
    }

    // Redeploy in grouped mode: a manifest table, the committer, the ingest Lambda's mode.
    stack.moto.create_manifest_table(MANIFESTS).await;
    stack.env.push(("LAKEHOUSE_COMMIT_MODE", "grouped".into()));
    stack
        .env
        .push(("LAKEHOUSE_MANIFEST_TABLE", MANIFESTS.into()));
    stack.emulator.kill_function(INGEST);
    stack.emulator.start_function(INGEST, 1, &stack.env);
    stack.emulator.start_function(COMMIT, 1, &stack.env);
    let mut manifests = ManifestStream::open(&stack.moto, MANIFESTS).await;

    let already = metric_sum(&stack, "AlreadyCommitted");
    for (shard, first, second) in &halves {
        // The last direct batch again (the mapping retried it across the deployment).
        let last_batch = first[first.len().saturating_sub(100)..].to_vec();
        assert_eq!(deliver(&stack, &stream, shard, &last_batch, 100), 0);
        assert_eq!(deliver(&stack, &stream, shard, second, 100), 0);
    }
    let redelivered: usize = halves
        .iter()
        .map(|(_, first, _)| first.len().min(100))
        .sum();
    assert!(metric_sum(&stack, "AlreadyCommitted") - already >= redelivered as f64);
    let records = manifests.next_records().await;
    assert!(!records.is_empty(), "the second halves were handed over");
    commit_until_done(&stack, &records);
    assert_eq!(stack.compact()["status"], "compacted");
    assert_lake_holds(&stack, &w);
}

/// A manifest too large for a DynamoDB item (a batch spanning thousands of partitions) is
/// stored in the table's `_manifests/bodies/`, read back through the item, and deleted with
/// it; a second attempt at the same version is refused with the stored one.
#[ignore = "needs moto: pip install 'moto[server]' (make test installs it and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_too_large_for_an_item_goes_to_s3_and_back() {
    use lakehouse_dynamo_manifests::DynamoManifestLog;
    use lakehouse_ingest::manifest::Manifest;
    use lakehouse_ingest::manifest_log::{HandOver, ManifestKey, ManifestLog};

    let moto = Moto::start().await;
    moto.create_bucket("lake").await;
    moto.create_manifest_table(MANIFESTS).await;
    let lake = moto.lake(LAKE);
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk);
    let (log, raw) = DynamoManifestLog::open(client, MANIFESTS, &lake, Table::Raw)
        .await
        .expect("open");
    let add = |i: usize| deltalake::kernel::Add {
        path: format!("event_date=2025-11-24/event_type=t{i:05}/part-{i:05}.parquet"),
        size: 1_000,
        stats: Some(format!(
            r#"{{"numRecords":1,"minValues":{{"event_uuid":"{:0>64}"}}}}"#,
            i
        )),
        data_change: true,
        ..Default::default()
    };
    let manifest = |version: i64, files: usize| Manifest {
        app_id: "lakehouse-ingest:events/shardId-000000000000".into(),
        version,
        adds: (0..files).map(add).collect(),
        records: files as u64,
        first_sequence_number: Some(format!("{version}00")),
        last_sequence_number: Some(format!("{version}99")),
        reasons: Default::default(),
    };
    let big = manifest(1, 3_000);
    assert!(serde_json::to_vec(&big).expect("json").len() > 400 * 1024);
    assert_eq!(
        log.hand_over(&big).await.expect("hand over"),
        HandOver::Stored
    );
    let bodies = raw
        .object_store()
        .list_with_delimiter(Some(&"_manifests/bodies".into()))
        .await
        .expect("list");
    assert!(!bodies.common_prefixes.is_empty(), "the body is in S3");
    assert_eq!(
        log.latest(&big.app_id).await.expect("latest"),
        Some(big.clone())
    );

    // A retried attempt at version 1 (other files) is refused with the stored manifest.
    let retry = manifest(1, 3_001);
    match log.hand_over(&retry).await.expect("hand over") {
        HandOver::Taken(stored) => assert_eq!(*stored, big),
        other => panic!("expected Taken, got {other:?}"),
    }

    // A small one stays inline; forgetting below it deletes the big item and its body.
    let small = manifest(2, 3);
    assert_eq!(
        log.hand_over(&small).await.expect("hand over"),
        HandOver::Stored
    );
    log.forget(&big.app_id, 2).await.expect("forget");
    let keys = log.keys().await.expect("keys");
    let expected = ManifestKey {
        app_id: big.app_id.clone(),
        version: 2,
    };
    assert_eq!(keys, vec![expected]);
    let left: Vec<_> = futures::TryStreamExt::try_collect(
        raw.object_store().list(Some(&"_manifests/bodies".into())),
    )
    .await
    .expect("list");
    // The refused attempt deleted its own body; forgetting deleted the stored one.
    assert!(left.is_empty(), "{left:?}");
}
