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

mod latency;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::logstore::object_store::ObjectStore;
use deltalake::logstore::object_store::memory::InMemory;
use lakehouse_ingest::committer::Committer;
use lakehouse_ingest::manifest::Manifest;
use lakehouse_ingest::manifest_log::{
    HandOver, ManifestKey, ManifestLog, StoreManifestLog, hand_over_files,
};
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::log::commit_actions;
use lakehouse_lake::{CommitMetadata, Lake, RawLayout, Table};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
    format!("lakehouse-ingest:sim/shardId-{shard:012}")
}

/// Writes batch `k` of `shard` as a real Parquet file in `raw` (not committed).
async fn write_batch(
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
    })
}

/// One shard's writer in grouped mode, as the ingest Lambda runs it: its checkpoint is its
/// latest manifest, read again after every crash.
async fn grouped_writer(sim: Arc<Sim>, shard: u64) {
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
async fn direct_writer(sim: Arc<Sim>, shard: u64) {
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

/// The committer, started afresh after every crash as a new Lambda container would be.
async fn committer_loop(sim: Arc<Sim>) {
    let window = Duration::from_secs_f64(sim.args.window);
    let mut committer = loop {
        match sim.lake.open(Table::Raw).await {
            Ok(raw) => break Committer::new(raw, sim.log.clone()),
            Err(e) => eprintln!("committer: open: {e}"),
        }
        tokio::time::sleep(window).await;
    };
    loop {
        let started = Instant::now();
        match committer.commit_pending().await {
            Ok(round) => {
                if let Some(c) = round.committed {
                    sim.tally.commits.fetch_add(1, Ordering::Relaxed);
                    sim.tally.retries.fetch_add(c.retries, Ordering::Relaxed);
                }
            }
            Err(e) => {
                sim.tally.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("committer: {e}");
            }
        }
        tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    }
}

/// Runs the committer, aborting it at random moments until `stop` (then once more, intact).
async fn supervise_committer(sim: Arc<Sim>) {
    let mut rng = ChaCha8Rng::seed_from_u64(sim.args.seed ^ 0xC0FFEE);
    let mut task = tokio::spawn(committer_loop(sim.clone()));
    let mean = sim.args.committer_crash_every;
    while !sim.stop.load(Ordering::Relaxed) {
        if mean <= 0.0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let wait = Duration::from_secs_f64(mean * (0.5 + rng.random::<f64>()));
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !sim.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if sim.stop.load(Ordering::Relaxed) {
            break;
        }
        task.abort();
        let _ = task.await;
        sim.tally.committer_crashes.fetch_add(1, Ordering::Relaxed);
        task = tokio::spawn(committer_loop(sim.clone()));
    }
    task.abort();
    let _ = task.await;
}

async fn stopped(sim: &Sim) {
    while !sim.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Reads the whole log (without injected latency): each stored batch must be in the table
/// exactly once. Returns (lost, duplicated, commit lags in seconds).
async fn verify(sim: &Sim, plain: &Lake) -> Result<(u64, u64, Vec<f64>)> {
    let raw = plain.open(Table::Raw).await?;
    let files = sim
        .tally
        .files
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let handed = sim
        .tally
        .handed
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let stored = sim
        .tally
        .stored
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut attempts: HashMap<(u64, u64), HashSet<u64>> = HashMap::new();
    let mut rows = 0u64;
    for add in lakehouse_lake::files::live_files(&raw)? {
        let (shard, k, attempt) = *files
            .get(&add.path)
            .with_context(|| format!("{} in the table was never written", add.path))?;
        attempts.entry((shard, k)).or_default().insert(attempt);
        rows += add
            .get_stats()
            .ok()
            .flatten()
            .map_or(0, |s| s.num_records as u64);
    }
    let stored = match sim.args.mode {
        Mode::Grouped => stored,
        // Direct: every shard's batches 0..=k up to the last one in the table.
        Mode::Direct => {
            let mut last: BTreeMap<u64, u64> = BTreeMap::new();
            for (shard, k) in attempts.keys() {
                let n = last.entry(*shard).or_default();
                *n = (*n).max(k + 1);
            }
            last
        }
    };
    let (mut lost, mut duplicated) = (0, 0);
    for (shard, batches) in &stored {
        for k in 0..*batches {
            match attempts.get(&(*shard, k)).map_or(0, HashSet::len) {
                0 => lost += 1,
                1 => {}
                n => duplicated += n as u64 - 1,
            }
        }
    }
    let batches: u64 = stored.values().sum();
    // Batches beyond those handed over (a writer stopped mid-hand-over) would show here too.
    let extra = attempts.len() as u64 - (batches - lost);
    duplicated += extra;
    let expected_rows = batches * sim.args.rows_per_batch;
    if rows != expected_rows && lost + duplicated == 0 {
        anyhow::bail!("raw holds {rows} rows, expected {expected_rows}");
    }
    let mut lags = Vec::new();
    let head = raw.version().unwrap_or(0) as u64;
    for version in 1..=head {
        let Some(actions) = commit_actions(raw.log_store().as_ref(), version).await? else {
            continue;
        };
        let Some(metadata) = CommitMetadata::from_actions(&actions) else {
            continue;
        };
        let timestamp = actions.iter().find_map(|a| match a {
            deltalake::kernel::Action::CommitInfo(info) => info.timestamp,
            _ => None,
        });
        for batch in metadata.batches.unwrap_or_default() {
            let key = ManifestKey {
                app_id: batch.source,
                version: batch.version,
            };
            if let (Some(at), Some(ts)) = (handed.get(&key), timestamp) {
                lags.push((ts - at).max(0) as f64 / 1000.0);
            }
        }
    }
    Ok((lost, duplicated, lags))
}

fn raw_layout(args: &Args) -> Result<RawLayout> {
    RawLayout::parse(&args.raw_layout).context("--raw-layout: date-type or date")
}

fn latency_model(args: &Args) -> LatencyModel {
    LatencyModel {
        put: Duration::from_millis(args.put_ms),
        get: Duration::from_millis(args.get_ms),
        list: Duration::from_millis(args.list_ms),
        delete: Duration::from_millis(args.delete_ms),
        jitter: args.jitter,
    }
}

/// CPU seconds this process has used (user + system), from /proc.
fn process_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// One batch through the real path on one core: JSON parse, event rules, Arrow, Parquet,
/// and the files' PUTs (with the latency model).
fn measure_batch(args: &Args, batches: u32) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = LatencyStore::new(InMemory::new(), latency_model(args), args.seed);
    let lake = Lake::in_store(url::Url::parse("memory:///lake/")?, Arc::new(store))
        .with_raw_layout(raw_layout(args)?);
    let padding = "x".repeat(1_050);
    let lines: Vec<String> = (0..args.events_per_batch)
        .map(|i| {
            format!(
                r#"{{"event_uuid":"00000000-0000-4000-8000-{i:012}","event_name":"type{}:sub:done","created_at":{},"user_id":{i},"payload":"{padding}"}}"#,
                i % 100,
                1_764_000_000 + i as i64,
            )
        })
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    runtime.block_on(async {
        let raw = lake.open(Table::Raw).await?;
        let quarantine = lake.open(Table::Quarantine).await?;
        let (started, cpu) = (Instant::now(), process_cpu_seconds()?);
        let (mut files, mut manifest_bytes) = (0, 0);
        for _ in 0..batches {
            let mut ingestor =
                Ingestor::with_tables(raw.clone(), quarantine.clone(), IngestOptions::default())?;
            for (i, line) in lines.iter().enumerate() {
                let position = i.to_string();
                let record = SourceRecord {
                    data: line.as_bytes(),
                    source: "bench",
                    position: &position,
                };
                ingestor.push(&record).await?;
            }
            let prepared = ingestor.prepare().await?;
            files += prepared.raw.files();
            let manifest = Manifest {
                app_id: app_id(0),
                version: 1,
                adds: prepared.raw.adds().to_vec(),
                records: args.events_per_batch,
                first_sequence_number: Some(sequence(1)),
                last_sequence_number: Some(sequence(args.events_per_batch)),
            };
            manifest_bytes = serde_json::to_vec(&manifest)?.len();
        }
        let cpu = (process_cpu_seconds()? - cpu) / f64::from(batches);
        let wall = started.elapsed().as_secs_f64() / f64::from(batches);
        println!(
            "{}",
            serde_json::json!({
                "events_per_batch": args.events_per_batch,
                "batch_bytes": bytes,
                "files_per_batch": files / batches as usize,
                "raw_layout": args.raw_layout,
                "manifest_bytes": manifest_bytes,
                "cpu_s_per_batch": (cpu * 1000.0).round() / 1000.0,
                "wall_s_per_batch": (wall * 1000.0).round() / 1000.0,
                "build": if cfg!(debug_assertions) { "debug" } else { "release" },
                "latency_model": latency_model(args).to_string(),
            })
        );
        Ok(())
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(batches) = args.measure_batch {
        return tokio::task::block_in_place(|| measure_batch(&args, batches));
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
            Mode::Grouped => tokio::spawn(grouped_writer(sim.clone(), shard)),
            Mode::Direct => tokio::spawn(direct_writer(sim.clone(), shard)),
        });
    }
    let supervisor =
        (args.mode == Mode::Grouped).then(|| tokio::spawn(supervise_committer(sim.clone())));
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
        Mode::Grouped => verify(&sim, &plain).await?,
        Mode::Direct => {
            let lags = sim
                .tally
                .direct_lags
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default();
            let (lost, duplicated, _) = verify(&sim, &plain).await?;
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
        "commit_lag_p50_s": (percentile(&lags, 0.5) * 100.0).round() / 100.0,
        "commit_lag_p99_s": (percentile(&lags, 0.99) * 100.0).round() / 100.0,
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
