//! The ingest and compaction Lambdas end to end on emulated AWS: Kinesis → ingest Lambda →
//! Delta on S3 → compaction Lambda → `lakehouse query` over S3.

use std::collections::BTreeMap;

use super::kinesis::{ShardRecords, Stream};
use super::proxy::Action;
use super::stack::{CHECKPOINTS, Stack, StackOptions};
use super::workload::Workload;

/// Delivers one shard's records in batches like the event source mapping: a batch that
/// reports failures is redelivered from the first failed record. Returns redeliveries.
pub fn deliver(
    stack: &Stack,
    stream: &Stream,
    shard: &str,
    records: &ShardRecords,
    batch: usize,
) -> usize {
    let mut redeliveries = 0;
    for chunk in records.chunks(batch) {
        let mut pending: &[_] = chunk;
        loop {
            let failed = stack.ingest(&stream.event_document(shard, pending));
            let Some(first) = failed.first() else { break };
            redeliveries += 1;
            assert!(
                redeliveries < 20,
                "{shard}: batch keeps failing from {first}"
            );
            let at = pending
                .iter()
                .position(|(sequence, _, _)| sequence == first)
                .unwrap_or_else(|| panic!("reported failure {first} is not in the batch"));
            pending = &pending[at..];
        }
    }
    redeliveries
}

/// The lake holds exactly what the workload says: every raw row once, every invalid
/// record in quarantine, the latest copy of every event in staging.
pub fn assert_lake_holds(stack: &Stack, w: &Workload) {
    let raw = by_uuid(
        stack,
        "SELECT event_uuid, count(*) AS v FROM raw GROUP BY event_uuid",
    );
    assert_eq!(raw.values().sum::<i64>(), w.raw_rows(), "raw rows");
    assert!(
        raw == w.raw,
        "raw differs from the input: a row was lost or doubled"
    );
    assert_eq!(stack.count("quarantine"), w.quarantine, "quarantine rows");
    let staging = by_uuid(stack, "SELECT event_uuid, created_at AS v FROM staging");
    assert_eq!(staging.len(), w.staging.len(), "staging rows");
    assert!(
        staging == w.staging,
        "staging does not hold the latest copy of every event"
    );
}

/// Rows of `sql` (columns `event_uuid` and `v`) as a map.
fn by_uuid(stack: &Stack, sql: &str) -> BTreeMap<String, i64> {
    stack
        .query(sql)
        .into_iter()
        .map(|r| {
            let uuid = r["event_uuid"].as_str().unwrap_or_default().to_string();
            (uuid, r["v"].as_i64().unwrap_or(-1))
        })
        .collect()
}

pub async fn stream_with(
    stack: &Stack,
    name: &str,
    shards: i32,
    w: &Workload,
) -> (Stream, Vec<(String, ShardRecords)>) {
    let stream = Stream::create(&stack.moto, name, shards).await;
    stream.put(&w.records).await;
    let mut per_shard = Vec::new();
    for shard in stream.shard_ids() {
        let records = stream.read_shard(&shard).await;
        per_shard.push((shard, records));
    }
    (stream, per_shard)
}

pub fn metric_sum(stack: &Stack, name: &str) -> f64 {
    stack
        .emulator
        .function_output()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .filter_map(|doc| doc.get(name).and_then(|v| v.as_f64()))
        .sum()
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_to_lake_exactly_once_and_redelivery_adds_nothing() {
    let stack = Stack::start(StackOptions::default()).await;
    let w = Workload::new("e2e", 2500, 4);
    let (stream, shards) = stream_with(&stack, "events", 4, &w).await;
    let total: usize = shards.iter().map(|(_, r)| r.len()).sum();
    assert_eq!(total, w.records.len(), "moto returned every record");
    let started = std::time::Instant::now();
    for (shard, records) in &shards {
        assert_eq!(
            deliver(&stack, &stream, shard, records, 100),
            0,
            "{shard}: no failures"
        );
    }
    let batches: usize = shards.iter().map(|(_, r)| r.len().div_ceil(100)).sum();
    eprintln!("ingest: {batches} batches in {:.1?}", started.elapsed());
    let started = std::time::Instant::now();
    let compacted = stack.compact();
    eprintln!("compaction: {:.1?}", started.elapsed());
    assert_eq!(compacted["status"], "compacted", "{compacted}");
    // The compaction Lambda registers the tables in Glue, then only checks them.
    assert_eq!(compacted["catalog"]["changed"], true, "{compacted}");
    assert_lake_holds(&stack, &w);
    // Every checkpoint carries the TTL attribute Terraform enables: last write + 400 days.
    let items = aws_sdk_dynamodb::Client::new(&stack.moto.sdk)
        .scan()
        .table_name(CHECKPOINTS)
        .send()
        .await
        .expect("scan checkpoints")
        .items()
        .to_vec();
    assert_eq!(items.len(), 8, "4 shards x (raw, quarantine)");
    let expected = chrono::Utc::now().timestamp() + 400 * 86_400;
    for item in &items {
        let ttl: i64 = item["expires_at"]
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .expect("expires_at");
        assert!((expected - ttl).abs() < 3_600, "{item:?}");
    }
    let reasons =
        stack.query("SELECT error, count(*) AS n FROM quarantine GROUP BY error ORDER BY error");
    assert!(
        reasons.iter().any(
            |r| r["error"] == "corrupt KPL aggregate: MD5 checksum does not match" && r["n"] == 1
        ),
        "{reasons:?}"
    );
    assert!(
        metric_sum(&stack, "UserRecords") > w.records.len() as f64,
        "aggregates were unpacked"
    );

    // Redeliver every batch (Lambda retries after a timeout, say): nothing is added.
    let versions = stack.query("SELECT count(*) AS n FROM raw");
    for (shard, records) in &shards {
        assert_eq!(deliver(&stack, &stream, shard, records, 100), 0);
    }
    assert_eq!(stack.query("SELECT count(*) AS n FROM raw"), versions);
    assert_eq!(
        metric_sum(&stack, "AlreadyCommitted") as usize,
        metric_sum(&stack, "UserRecords") as usize / 2
    );
    let again = stack.compact();
    assert_eq!(
        again["report"]["commits"].as_array().map(Vec::len),
        Some(0),
        "{again}"
    );
    assert_eq!(again["catalog"]["changed"], false, "{again}");
    assert_lake_holds(&stack, &w);
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_out_of_order_is_reported_not_skipped_as_committed() {
    let stack = Stack::start(StackOptions::default()).await;
    let w = Workload::new("order", 80, 1);
    let (stream, shards) = stream_with(&stack, "events", 1, &w).await;
    let (shard, records) = &shards[0];
    // ParallelizationFactor 2: the batch of odd positions commits before the batch of even
    // positions, whose records are then all at or below the checkpoint.
    let odd: ShardRecords = records.iter().skip(1).step_by(2).cloned().collect();
    let even: ShardRecords = records.iter().step_by(2).cloned().collect();
    assert!(stack.ingest(&stream.event_document(shard, &odd)).is_empty());
    let raw = stack.count("raw");
    for _ in 0..2 {
        let failed = stack.ingest(&stream.event_document(shard, &even));
        assert_eq!(
            failed.first(),
            Some(&even[0].0),
            "reported from its first record"
        );
        assert_eq!(
            stack.count("raw"),
            raw,
            "nothing of it written, nothing skipped"
        );
    }
    let errors: Vec<String> = stack
        .emulator
        .function_output()
        .into_iter()
        .filter(|l| l.contains("batches arrive out of order"))
        .collect();
    assert!(!errors.is_empty(), "the failure is logged with its cause");
    // A redelivery of the batch that did commit is still recognised as such.
    assert!(stack.ingest(&stream.event_document(shard, &odd)).is_empty());
    assert_eq!(stack.count("raw"), raw);
}

#[ignore = "needs moto and cargo-lambda: pip install 'moto[server]' cargo-lambda (make test installs both and runs it)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_mid_batch_are_reported_and_the_retry_lands_once() {
    let options = StackOptions {
        fault_proxy: true,
        ..StackOptions::default()
    };
    let stack = Stack::start(options).await;
    let proxy = stack.proxy.as_ref().expect("proxy");
    let w = Workload::new("fault", 600, 1);
    let (stream, shards) = stream_with(&stack, "faults", 1, &w).await;
    let (shard, records) = &shards[0];
    let batches: Vec<_> = records.chunks(50).collect();
    assert!(batches.len() >= 6);
    // A healthy first batch creates the tables.
    assert_eq!(deliver(&stack, &stream, shard, &batches[0].to_vec(), 50), 0);

    // 1. S3 refuses the raw commit: nothing is committed, the whole batch is reported.
    proxy.inject("PUT", "/events/raw/_delta_log/", Action::Respond(403), 1);
    let failed = stack.ingest(&stream.event_document(shard, batches[1]));
    assert_eq!(
        failed,
        vec![batches[1][0].0.clone()],
        "reported from the first record"
    );
    assert_eq!(proxy.triggered(), 1);
    assert_eq!(deliver(&stack, &stream, shard, &batches[1].to_vec(), 50), 0);

    // 2. The raw commit lands but its response is lost: the store's retry of the
    //    conditional write finds the version taken, and the commit path knows its own
    //    commit there by its id (issue 25: before, the invocation failed and its retry
    //    repaired the checkpoint; a commit that landed is now never taken for one that
    //    lost, whose files the commit path deletes). Delivered again, it adds nothing.
    proxy.inject("PUT", "/events/raw/_delta_log/", Action::LoseResponse, 1);
    let failed = stack.ingest(&stream.event_document(shard, batches[2]));
    assert_eq!(proxy.triggered(), 2);
    assert!(
        failed.is_empty(),
        "a commit that landed is reported done: {failed:?}"
    );
    assert_eq!(deliver(&stack, &stream, shard, &batches[2].to_vec(), 50), 0);

    // 2b. The raw commit lands but DynamoDB refuses the checkpoint's completion (the
    //     update that REMOVEs the pending fields): the batch is done, its data and txn
    //     committed, and the next batch finds the pending version in the Delta log and
    //     completes the checkpoint.
    let repaired_before = metric_sum(&stack, "RepairedCheckpoints");
    proxy.inject_body("POST", "/", "REMOVE", Action::Respond(400), 1);
    let failed = stack.ingest(&stream.event_document(shard, batches[3]));
    assert_eq!(proxy.triggered(), 3);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(deliver(&stack, &stream, shard, &batches[4].to_vec(), 50), 0);
    assert_eq!(
        metric_sum(&stack, "RepairedCheckpoints"),
        repaired_before + 1.0,
        "the next batch repaired the checkpoint"
    );

    // 3. DynamoDB fails at the start of a batch: reported, retried, landed.
    proxy.inject("POST", "/", Action::Respond(400), 1);
    let failed = stack.ingest(&stream.event_document(shard, batches[5]));
    assert_eq!(failed, vec![batches[5][0].0.clone()]);
    proxy.clear();
    for batch in &batches[5..] {
        assert_eq!(deliver(&stack, &stream, shard, &batch.to_vec(), 50), 0);
    }
    assert_eq!(stack.compact()["status"], "compacted");
    assert_lake_holds(&stack, &w);
}

/// Starts a Lambda binary outside the emulator with `env` (and without the lake's variables
/// it does not name): whether it ran on, and everything it printed.
fn start_up(name: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = std::process::Command::new(super::lambda::binary(name));
    for variable in [
        "LAKEHOUSE_LAKE",
        "LAKEHOUSE_CHECKPOINT_TABLE",
        "LAKEHOUSE_LEASE_TABLE",
        "LAKEHOUSE_MANIFEST_TABLE",
    ] {
        command.env_remove(variable);
    }
    let out = command
        .envs(env.iter().copied())
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run the Lambda binary");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn a_lambda_without_its_configuration_stops_at_start_up_naming_it() {
    for (name, missing) in [
        (super::lambda::INGEST, "LAKEHOUSE_LAKE"),
        (super::lambda::COMPACT, "LAKEHOUSE_LEASE_TABLE"),
        (super::lambda::COMMIT, "LAKEHOUSE_MANIFEST_TABLE"),
    ] {
        let lake = if name == super::lambda::INGEST {
            ""
        } else {
            "s3://lake/x"
        };
        let (ran, said) = start_up(name, &[("LAKEHOUSE_LAKE", lake)]);
        assert!(!ran, "{name} started without {missing}");
        assert!(
            said.contains(missing),
            "{name} did not name {missing}: {said}"
        );
    }
    // A value that is set but wrong stops it too, naming the variable and what it expects.
    for (variable, value) in [
        ("LAKEHOUSE_RAW_LAYOUT", "hourly"),
        ("LAKEHOUSE_COMMIT_MODE", "batched"),
        // `lakehouse ingest --buffer-mb`, read from its variable.
        ("LAKEHOUSE_BUFFER_MB", "lots"),
        ("LAKEHOUSE_MAX_RECORD_BYTES", "0"),
    ] {
        let env = [
            ("LAKEHOUSE_LAKE", "s3://lake/x"),
            ("LAKEHOUSE_CHECKPOINT_TABLE", "checkpoints"),
            (variable, value),
        ];
        let (ran, said) = start_up(super::lambda::INGEST, &env);
        assert!(!ran, "started with {variable}={value}");
        assert!(said.contains(variable) && said.contains(value), "{said}");
    }
    // The compaction Lambda reads `lakehouse compact`'s flags from their variables: a value
    // that does not parse is named, an empty one is unset (Terraform's "none").
    let base = [
        ("LAKEHOUSE_LAKE", "s3://lake/x"),
        ("LAKEHOUSE_LEASE_TABLE", "leases"),
    ];
    let bad = [&base[..], &[("LAKEHOUSE_RECENT_DAYS", "soon")]].concat();
    let (ran, said) = start_up(super::lambda::COMPACT, &bad);
    assert!(!ran, "started with LAKEHOUSE_RECENT_DAYS=soon");
    assert!(
        said.contains("LAKEHOUSE_RECENT_DAYS") && said.contains("soon"),
        "{said}"
    );
    let empty = [
        &base[..],
        &[("LAKEHOUSE_HORIZON_DAYS", ""), ("LAKEHOUSE_HOT_HOURS", "")],
    ]
    .concat();
    let (_, said) = start_up(super::lambda::COMPACT, &empty);
    assert!(!said.contains("bad configuration"), "{said}");
}
