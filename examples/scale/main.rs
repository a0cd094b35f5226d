//! `make bench_scale`: the commit protocol at 1B events/hour, in real time on one machine.
//!
//! Simulated shards each hand over a batch every `--interval` seconds through the real
//! writer code (an `Ingestor` writes the batch's Parquet file, `hand_over_files` stores its
//! manifest) and one real `Committer` lands them in `raw`, all against an in-memory object
//! store with S3-like latency ([`latency::LatencyStore`]). A batch's file holds
//! `--rows-per-batch` real rows and stands for `--events-per-batch` events (a 6 MB Lambda
//! payload), so the protocol runs at full scale while the encoding fits two cores.
//!
//! Crashes are injected: writers die after writing their files (before the hand-over) and
//! after the hand-over (before learning it was stored), and the committer is aborted every
//! `--committer-crash-every` seconds at whatever it is doing, then started afresh. At the
//! end every batch handed over must be in the table exactly once: the last stdout line is a
//! JSON summary.
//!
//! `--mode direct` runs today's path instead: every shard commits its own batch.
//!
//! - [`writers`]: the simulated shards; [`committer`]: the committer and its crashes;
//! - [`verify`]: exactly once, and commit lag from the log; [`measure`]: one batch's CPU;
//! - [`latency`]: the S3-like store.

mod committer;
mod cpu;
mod latency;
mod measure;
mod verify;
mod writers;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use deltalake::DeltaTable;
use deltalake::logstore::object_store::ObjectStore;
use deltalake::logstore::object_store::memory::InMemory;
use lakehouse_ingest::committer::Committer;
use lakehouse_ingest::manifest_log::{ManifestKey, ManifestLog, StoreManifestLog};
use lakehouse_lake::{Lake, RawLayout, Table};

use latency::{LatencyModel, LatencyStore};

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Mode {
    Grouped,
    Direct,
}

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long, value_enum, default_value = "grouped")]
    mode: Mode,
    #[arg(long, default_value_t = 350)]
    shards: u64,
    #[arg(long, default_value_t = 300.0)]
    seconds: f64,
    /// Seconds between one shard's batches (a 6 MB batch of 1.2 KB events at 1 MB/s).
    #[arg(long, default_value_t = 5.4)]
    interval: f64,
    #[arg(long, default_value_t = 5000)]
    events_per_batch: u64,
    #[arg(long, default_value_t = 20)]
    rows_per_batch: u64,
    /// The committer's batching window: seconds between its rounds.
    #[arg(long, default_value_t = 1.0)]
    window: f64,
    /// Mean seconds between committer crashes; 0 for none.
    #[arg(long, default_value_t = 20.0)]
    committer_crash_every: f64,
    /// Chance of a writer crash at each of its two crash points, per batch.
    #[arg(long, default_value_t = 0.005)]
    writer_crash: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 60)]
    put_ms: u64,
    #[arg(long, default_value_t = 25)]
    get_ms: u64,
    #[arg(long, default_value_t = 40)]
    list_ms: u64,
    #[arg(long, default_value_t = 30)]
    delete_ms: u64,
    #[arg(long, default_value_t = 0.5)]
    jitter: f64,
    /// raw's layout: date-type or date.
    #[arg(long, default_value = "date-type")]
    raw_layout: String,
    /// Instead of simulating: CPU seconds of the real decode -> Parquet path for one batch of
    /// `--events-per-batch` events of ~1.2 KB over 100 types, averaged over this many batches.
    #[arg(long)]
    measure_batch: Option<u32>,
}

/// What the run saw, shared by every task.
#[derive(Default)]
struct Tally {
    /// Each stored manifest's hand-over time (Unix ms).
    handed: Mutex<HashMap<ManifestKey, i64>>,
    /// Each data file written: (shard, batch, attempt).
    files: Mutex<HashMap<String, (u64, u64, u64)>>,
    /// Batches each shard handed over (or, in direct mode, committed).
    stored: Mutex<BTreeMap<u64, u64>>,
    /// Direct mode: commit lag per batch, seconds.
    direct_lags: Mutex<Vec<f64>>,
    commits: AtomicU64,
    retries: AtomicU64,
    writer_crashes: AtomicU64,
    committer_crashes: AtomicU64,
    errors: AtomicU64,
}

struct Sim {
    args: Args,
    lake: Lake,
    raw: DeltaTable,
    quarantine: DeltaTable,
    log: Arc<dyn ManifestLog>,
    tally: Tally,
    stop: AtomicBool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sequence numbers as zero-padded decimals, so they order as text too.
fn sequence(n: u64) -> String {
    format!("{n:020}")
}

fn app_id(shard: u64) -> String {
    lakehouse_lake::app_ids::ingest_app_id(&format!("sim/shardId-{shard:012}"))
}

pub(crate) fn raw_layout(args: &Args) -> Result<RawLayout> {
    RawLayout::parse(&args.raw_layout).context("--raw-layout: date-type or date")
}

pub(crate) fn latency_model(args: &Args) -> LatencyModel {
    LatencyModel {
        put: Duration::from_millis(args.put_ms),
        get: Duration::from_millis(args.get_ms),
        list: Duration::from_millis(args.list_ms),
        delete: Duration::from_millis(args.delete_ms),
        jitter: args.jitter,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(batches) = args.measure_batch {
        return tokio::task::block_in_place(|| measure::measure_batch(&args, batches));
    }
    let model = latency_model(&args);
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let slow: Arc<dyn ObjectStore> = Arc::new(LatencyStore::new(memory.clone(), model, args.seed));
    let root = url::Url::parse("memory:///lake/")?;
    let lake = Lake::in_store(root.clone(), slow).with_raw_layout(raw_layout(&args)?);
    let plain = Lake::in_store(root, memory).with_raw_layout(raw_layout(&args)?);
    // Created without latency: setting up is not what is measured.
    plain.open(Table::Raw).await?;
    plain.open(Table::Quarantine).await?;
    let raw = lake.open(Table::Raw).await?;
    let quarantine = lake.open(Table::Quarantine).await?;
    let log: Arc<dyn ManifestLog> = Arc::new(StoreManifestLog::of(&raw));
    let sim = Arc::new(Sim {
        args: args.clone(),
        lake,
        raw,
        quarantine,
        log,
        tally: Tally::default(),
        stop: AtomicBool::new(false),
    });

    let started = Instant::now();
    let mut writers = Vec::new();
    for shard in 0..args.shards {
        writers.push(match args.mode {
            Mode::Grouped => tokio::spawn(writers::grouped_writer(sim.clone(), shard)),
            Mode::Direct => tokio::spawn(writers::direct_writer(sim.clone(), shard)),
        });
    }
    let supervisor = (args.mode == Mode::Grouped)
        .then(|| tokio::spawn(committer::supervise_committer(sim.clone())));
    let run = Duration::from_secs_f64(args.seconds);
    while started.elapsed() < run {
        tokio::time::sleep(Duration::from_secs(10).min(run.saturating_sub(started.elapsed())))
            .await;
        let stored: u64 = sim
            .tally
            .stored
            .lock()
            .map(|s| s.values().sum())
            .unwrap_or(0);
        eprintln!(
            "{:>5.0} s: {stored} batches, {} commits, {} retries, crashes {} writer / {} committer, {} errors",
            started.elapsed().as_secs_f64(),
            sim.tally.commits.load(Ordering::Relaxed),
            sim.tally.retries.load(Ordering::Relaxed),
            sim.tally.writer_crashes.load(Ordering::Relaxed),
            sim.tally.committer_crashes.load(Ordering::Relaxed),
            sim.tally.errors.load(Ordering::Relaxed),
        );
    }
    sim.stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let commits_in_run = sim.tally.commits.load(Ordering::Relaxed);
    let batches_in_run: u64 = sim
        .tally
        .stored
        .lock()
        .map(|s| s.values().sum())
        .unwrap_or(0);
    for writer in writers {
        writer.await?;
    }
    if let Some(supervisor) = supervisor {
        supervisor.await?;
        // Drain: one intact committer lands whatever is left.
        let mut committer = Committer::new(sim.lake.open(Table::Raw).await?, sim.log.clone());
        committer.commit_pending().await?;
    }
    let (lost, duplicated, lags) = match args.mode {
        Mode::Grouped => verify::verify(&sim, &plain).await?,
        Mode::Direct => {
            let lags = sim
                .tally
                .direct_lags
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default();
            let (lost, duplicated, _) = verify::verify(&sim, &plain).await?;
            (lost, duplicated, lags)
        }
    };
    let mut lags = lags;
    lags.sort_by(f64::total_cmp);
    let per_s = batches_in_run as f64 / elapsed;
    let crashes = sim.tally.writer_crashes.load(Ordering::Relaxed)
        + sim.tally.committer_crashes.load(Ordering::Relaxed);
    let summary = serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "shards": args.shards,
        "minutes": (elapsed / 60.0 * 100.0).round() / 100.0,
        "manifests_per_s": (per_s * 100.0).round() / 100.0,
        "events_per_s": (per_s * args.events_per_batch as f64).round(),
        "commits": commits_in_run,
        "commits_per_s": (commits_in_run as f64 / elapsed * 100.0).round() / 100.0,
        "commit_lag_p50_s": (verify::percentile(&lags, 0.5) * 100.0).round() / 100.0,
        "commit_lag_p99_s": (verify::percentile(&lags, 0.99) * 100.0).round() / 100.0,
        "commit_retries": sim.tally.retries.load(Ordering::Relaxed),
        "crashes_injected": crashes,
        "writer_crashes": sim.tally.writer_crashes.load(Ordering::Relaxed),
        "committer_crashes": sim.tally.committer_crashes.load(Ordering::Relaxed),
        "errors": sim.tally.errors.load(Ordering::Relaxed),
        "lost": lost,
        "duplicated": duplicated,
        "latency_model": model.to_string(),
    });
    println!("{summary}");
    if lost + duplicated > 0 {
        anyhow::bail!("{lost} batches lost, {duplicated} duplicated");
    }
    Ok(())
}
