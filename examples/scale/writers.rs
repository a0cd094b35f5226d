//! The simulated shards: each writes its batches' Parquet files through the real
//! `Ingestor`, then hands them over (grouped) or commits them (direct).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use lakehouse_ingest::manifest::Manifest;
use lakehouse_ingest::manifest_log::{HandOver, hand_over_files};
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::CommitMetadata;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Sim, app_id, now_ms, sequence};

/// Writes batch `k` of `shard` as a real Parquet file in `raw` (not committed).
pub(crate) async fn write_batch(
    sim: &Sim,
    raw: &DeltaTable,
    shard: u64,
    k: u64,
    attempt: u64,
) -> Result<Manifest> {
    let mut ingestor = Ingestor::with_tables(
        raw.clone(),
        sim.quarantine.clone(),
        IngestOptions::default(),
    )?;
    let created_at = 1_764_000_000 + k as i64;
    for i in 0..sim.args.rows_per_batch {
        let line = format!(
            r#"{{"event_uuid":"s{shard}-b{k}-{i}","event_name":"sim:batch","created_at":{created_at}}}"#
        );
        let position = i.to_string();
        let record = SourceRecord {
            data: line.as_bytes(),
            source: "sim",
            position: &position,
        };
        ingestor.push(&record).await?;
    }
    let prepared = ingestor.prepare().await?;
    let adds = prepared.raw.adds().to_vec();
    if let Ok(mut files) = sim.tally.files.lock() {
        for add in &adds {
            files.insert(add.path.clone(), (shard, k, attempt));
        }
    }
    let per_batch = sim.args.events_per_batch;
    Ok(Manifest {
        app_id: app_id(shard),
        version: 0,
        adds,
        records: sim.args.rows_per_batch,
        first_sequence_number: Some(sequence(k * per_batch + 1)),
        last_sequence_number: Some(sequence((k + 1) * per_batch)),
        reasons: Default::default(),
    })
}

/// One shard's writer in grouped mode, as the ingest Lambda runs it: its checkpoint is its
/// latest manifest, read again after every crash.
pub(crate) async fn grouped_writer(sim: Arc<Sim>, shard: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(sim.args.seed.wrapping_mul(1_000_003) ^ shard);
    let interval = Duration::from_secs_f64(sim.args.interval);
    let mut tick = Instant::now() + interval.mul_f64(rng.random::<f64>());
    tokio::time::sleep_until(tick.into()).await;
    let app = app_id(shard);
    let mut checkpoint: Option<(i64, u64)> = None;
    let (mut k, mut attempt) = (0u64, 0u64);
    while !sim.stop.load(Ordering::Relaxed) {
        attempt += 1;
        let result: Result<bool> = async {
            let (version, done) = match checkpoint {
                Some(c) => c,
                None => match sim.log.latest(&app).await? {
                    Some(m) => {
                        let last = m.last_sequence_number.as_deref().unwrap_or("0").parse()?;
                        (m.version, last)
                    }
                    None => (0, 0),
                },
            };
            checkpoint = Some((version, done));
            if done >= (k + 1) * sim.args.events_per_batch {
                return Ok(true); // an earlier attempt handed this batch over
            }
            let mut manifest = write_batch(&sim, &sim.raw, shard, k, attempt).await?;
            if rng.random_bool(sim.args.writer_crash) {
                anyhow::bail!("crash after writing files");
            }
            manifest.version = version + 1;
            match hand_over_files(sim.log.as_ref(), &sim.raw, &manifest).await? {
                HandOver::Stored => {}
                HandOver::Taken(_) => anyhow::bail!("version taken: reload the checkpoint"),
            }
            if let Ok(mut handed) = sim.tally.handed.lock() {
                handed.insert(manifest.key(), now_ms());
            }
            if let Ok(mut stored) = sim.tally.stored.lock() {
                *stored.entry(shard).or_default() += 1;
            }
            if rng.random_bool(sim.args.writer_crash) {
                anyhow::bail!("crash after the hand-over");
            }
            checkpoint = Some((version + 1, (k + 1) * sim.args.events_per_batch));
            Ok(true)
        }
        .await;
        match result {
            Ok(_) => {
                k += 1;
                tick += interval;
                tokio::time::sleep_until(tick.into()).await;
            }
            Err(e) => {
                // A crash or an error: the Lambda retries the batch with a fresh state.
                if e.to_string().starts_with("crash") {
                    sim.tally.writer_crashes.fetch_add(1, Ordering::Relaxed);
                } else if !e.to_string().starts_with("version taken") {
                    sim.tally.errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("writer {shard}: {e:#}");
                }
                checkpoint = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One shard in direct mode, as today's ingest Lambda: bring raw up to date, write, commit
/// with the shard's txn.
pub(crate) async fn direct_writer(sim: Arc<Sim>, shard: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(sim.args.seed.wrapping_mul(1_000_003) ^ shard);
    let interval = Duration::from_secs_f64(sim.args.interval);
    let mut tick = Instant::now() + interval.mul_f64(rng.random::<f64>());
    tokio::time::sleep_until(tick.into()).await;
    let mut raw = sim.raw.clone();
    let (mut k, mut version, mut attempt) = (0u64, 0i64, 0u64);
    while !sim.stop.load(Ordering::Relaxed) {
        attempt += 1;
        let result: Result<()> = async {
            raw.update_incremental(None).await?;
            let manifest = write_batch(&sim, &raw, shard, k, attempt).await?;
            let ready = Instant::now();
            let adds = manifest.adds.clone();
            let metadata = CommitMetadata::records(manifest.records);
            let commit = lakehouse_lake::Commit::append(&raw, adds)?
                .with_metadata(metadata)
                .with_transaction(Transaction::new(&manifest.app_id, version + 1));
            // At the end of the run a commit still racing is abandoned, as a Lambda timing
            // out would: what it did or did not land is read back from the table.
            let committed = tokio::select! {
                committed = commit.execute(&raw) => committed?,
                () = stopped(&sim) => return Ok(()),
            };
            sim.tally.commits.fetch_add(1, Ordering::Relaxed);
            sim.tally
                .retries
                .fetch_add(committed.retries, Ordering::Relaxed);
            if let Ok(mut lags) = sim.tally.direct_lags.lock() {
                lags.push(ready.elapsed().as_secs_f64());
            }
            if let Ok(mut stored) = sim.tally.stored.lock() {
                *stored.entry(shard).or_default() += 1;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                k += 1;
                version += 1;
                tick += interval;
                // A shard that fell behind sends its next batch at once, as Kinesis would.
                tokio::time::sleep_until(tick.into()).await;
            }
            Err(e) => {
                sim.tally.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("shard {shard}: {e:#}");
            }
        }
    }
}

pub(crate) async fn stopped(sim: &Sim) {
    while !sim.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
