//! `make bench_dedup_scale`: the key index's lookups at scale, on an object store with
//! S3-like latency (issue 23).
//!
//! Builds a key index of `--keys` entries on local disk (once; reused while it has the same
//! size): one sorted run per bucket, as the tier merge leaves a bucket, through the lake's
//! own writer. Among them are the keys of the copies the rounds will bring. Then each round
//! looks up `--round-keys` new keys (`--copies-percent` of them staged copies) through
//! `compact::keys::lookup`, the merge's own code, reading through [`latency::LatencyStore`]
//! (GETs counted and coalesced as object_store does for S3). A second kind of round, a
//! quarter the size, separates what a lookup costs per indexed key (a) from what it costs
//! per new key (b). Every copy must be found (`duplicates`: copies missed)
//! and no new key (`lost`: new keys taken for staged ones).
//!
//! From a and b it projects compaction at 1k, 1M and 1B events/hour (`sizing:` lines) and
//! at 1B in the JSON: the whole index and a hot window. A last round measures the hot
//! window itself: `--hot-keys` fresh keys written as runs tagged now beside the cold index,
//! looked up through `compact --hot-hours`' filter (then removed again). The last stdout
//! line is one JSON object; `docs/scaling.md` explains the projection.

#[path = "scale/cpu.rs"]
mod cpu;
#[path = "scale/latency.rs"]
mod latency;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use deltalake::kernel::Action;
use deltalake::logstore::object_store::ObjectStore;
use deltalake::logstore::object_store::local::LocalFileSystem;
use deltalake::protocol::{DeltaOperation, SaveMode};
use lakehouse_compact::keys::{Runs, lookup};
use lakehouse_lake::files::remove_of;
use lakehouse_lake::keys::{KEY_BUCKETS, Key, KeyEntry, bucket_name, keys_batch, tag_indexed_at};
use lakehouse_lake::schema::KEY_BUCKET;
use lakehouse_lake::write::{FileWriter, PartitionKey};
use lakehouse_lake::{Commit, Lake, Table};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use cpu::process_cpu_seconds;
use latency::{LatencyModel, LatencyStore};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 100_000_000)]
    keys: u64,
    #[arg(long, default_value_t = 1_000_000)]
    round_keys: u64,
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    #[arg(long, default_value_t = 5)]
    copies_percent: u64,
    #[arg(long, default_value = "bench-data/dedup_scale")]
    dir: PathBuf,
    #[arg(long, default_value_t = 25)]
    get_ms: u64,
    /// Cores a 10 GB Lambda has, for the projection.
    #[arg(long, default_value_t = 6.0)]
    range_cores: f64,
    /// What one range reads from S3 per second, in MB (assumed, not measured here).
    #[arg(long, default_value_t = 100.0)]
    range_mb_s: f64,
    /// Rows a merge takes per commit (compaction's `--max-rows-per-commit`).
    #[arg(long, default_value_t = 1_000_000.0)]
    rows_per_commit: f64,
    /// The hot window: rounds probe only this many hours of keys (projection).
    #[arg(long, default_value_t = 1.0)]
    hot_hours: f64,
    /// Keys of the measured hot-window round's window: written as fresh runs (tagged as
    /// indexed now) beside the cold index, looked up with `compact --hot-hours`' filter,
    /// and removed again.
    #[arg(long, default_value_t = 4_000_000)]
    hot_keys: u64,
}

/// One measured round.
#[derive(Debug, Default)]
struct Round {
    seconds: f64,
    cpu_seconds: f64,
    gets: u64,
    bytes: u64,
    duplicates: u64,
    lost: u64,
}

fn copy_uuid(round: u64, i: u64) -> String {
    format!("copy-{round}-{i}")
}

/// A lookup's cost as a·K + b·N per cost kind (K indexed keys it reads, N keys it
/// seeks), and what one range can do.
struct Model {
    bytes: (f64, f64),
    gets: (f64, f64),
    cpu: (f64, f64),
    cores: f64,
    bytes_per_s: f64,
    /// Rows a merge takes per commit: each merge looks its keys up once.
    chunk: f64,
}

/// A compaction round on ranges of 10 GB, split by key bucket (planned): each range reads
/// its share of the index once per merge of `chunk` rows.
struct Projection {
    /// Ranges that fit the round in its period.
    ranges: f64,
    /// Wall time of the round on `ranges`, and on 16 ranges.
    round_s: f64,
    round_s_16: f64,
    /// Bytes the round reads, on `ranges`.
    bytes: f64,
    /// Lambda (arm64, 10 GB) and GET requests of one round, on `ranges`.
    usd: f64,
}

impl Model {
    /// (seconds, bytes, GETs) of one range's share of a round of `n` new keys on `ranges`.
    fn range(&self, k: f64, n: f64, ranges: f64) -> (f64, f64, f64) {
        let (k, n) = (k / ranges, n / ranges);
        let merges = (n / self.chunk).ceil().max(1.0);
        let seek = n.min(self.chunk);
        let cost = |(a, b): (f64, f64)| merges * (a * k + b * seek);
        let (cpu, bytes, gets) = (cost(self.cpu), cost(self.bytes), cost(self.gets));
        (
            (cpu / self.cores).max(bytes / self.bytes_per_s),
            bytes,
            gets,
        )
    }

    fn project(&self, k: f64, n: f64, period_s: f64) -> Projection {
        let mut ranges = 1.0;
        while self.range(k, n, ranges).0 > period_s && ranges < 1e6 {
            ranges += 1.0;
        }
        let (seconds, bytes, gets) = self.range(k, n, ranges);
        // $0.0000133334 per GB-second of arm64 Lambda, $0.0004 per 1,000 GETs.
        Projection {
            ranges,
            round_s: seconds,
            round_s_16: self.range(k, n, 16.0).0,
            bytes: bytes * ranges,
            usd: ranges * (seconds * 10.0 * 0.000_013_333_4 + gets * 0.000_000_4),
        }
    }
}

/// Compaction at 1k, 1M and 1B events/hour (rounds of 1 h, 15 min, 5 min), looking up
/// the whole index after 7 days and after a year, or a hot window of `hot_hours`.
fn print_sizing(model: &Model, hot_hours: f64) {
    println!(
        "sizing: events/hour | index | keys | new keys/round | read/round | ranges | round | $/month"
    );
    for (rate, period) in [(1e3, 3600.0), (1e6, 900.0), (1e9, 300.0)] {
        let n = rate * period / 3600.0;
        for (index, hours) in [("7 days", 168.0), ("1 year", 8760.0), ("hot", hot_hours)] {
            let p = model.project(rate * hours, n, period);
            println!(
                "sizing: {rate:e} | {index} | {:.3e} | {n:.3e} | {:.1} GB | {} | {:.0} s | {:.2}",
                rate * hours,
                p.bytes / 1e9,
                p.ranges,
                p.round_s,
                p.usd * 30.0 * 86_400.0 / period,
            );
        }
    }
}

async fn build(args: &Args, copies: u64) -> Result<u64> {
    let lake = Lake::parse(&args.dir.to_string_lossy())?;
    let keys = lake.open(Table::Keys).await?;
    let writer = FileWriter::for_table(Table::Keys, &keys)?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let types: Vec<Arc<str>> = (0..100).map(|t| Arc::from(format!("type{t}"))).collect();
    let mut copy_keys: Vec<Vec<Key>> = vec![Vec::new(); KEY_BUCKETS as usize];
    for round in 0..args.rounds {
        for i in 0..copies {
            let key = Key::of(&copy_uuid(round, i));
            copy_keys[key.bucket() as usize].push(key);
        }
    }
    let shift = 64 - KEY_BUCKETS.trailing_zeros();
    let mut actions = Vec::new();
    let mut bytes = 0;
    for bucket in 0..KEY_BUCKETS {
        let share = args.keys / u64::from(KEY_BUCKETS);
        let mut bucket_keys = copy_keys[bucket as usize].clone();
        bucket_keys.extend((0..share).map(|_| Key {
            hi: ((u64::from(bucket) << shift) | (rng.random::<u64>() >> (64 - shift))) as i64,
            lo: rng.random(),
        }));
        // Staged in the 7 days from 2025-12-01, of 100 types.
        let mut entries: Vec<KeyEntry> = bucket_keys
            .into_iter()
            .map(|key| KeyEntry {
                key,
                created_micros: Some(1_764_547_200_000_000 + rng.random_range(0..604_800_000_000)),
                event_type: types[rng.random_range(0..types.len())].clone(),
            })
            .collect();
        entries.sort_unstable_by_key(|e| e.key);
        let partition = PartitionKey {
            date: 0,
            name: bucket_name(bucket).into(),
        };
        for add in writer
            .write(&partition, keys_batch(bucket, &entries)?)
            .await?
        {
            bytes += add.size.max(0) as u64;
            actions.push(Action::Add(add));
        }
        eprintln!("bucket {bucket:02x}: {} entries", entries.len());
    }
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(vec![KEY_BUCKET.to_string()]),
        predicate: None,
    };
    Commit::new(operation, actions).execute(&keys).await?;
    Ok(bytes)
}

/// Writes `keys` fresh entries (the hot round's copies among them) as one run per bucket,
/// tagged as indexed now; returns their adds, committed.
async fn write_hot(lake: &Lake, keys: u64, copies: u64) -> Result<Vec<Action>> {
    let table = lake.open(Table::Keys).await?;
    let writer = FileWriter::for_table(Table::Keys, &table)?;
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut buckets: Vec<Vec<KeyEntry>> = vec![Vec::new(); KEY_BUCKETS as usize];
    let entry = |key: Key| KeyEntry {
        key,
        created_micros: Some(1_765_152_000_000_000),
        event_type: Arc::from("type0"),
    };
    for i in 0..copies {
        let key = Key::of(&copy_uuid(HOT_ROUND, i));
        buckets[key.bucket() as usize].push(entry(key));
    }
    for _ in copies..keys {
        let key = Key::of(&format!("hot-{:032x}", rng.random::<u128>()));
        buckets[key.bucket() as usize].push(entry(key));
    }
    let now = chrono::Utc::now().timestamp();
    let mut adds = Vec::new();
    for (bucket, mut entries) in (0..KEY_BUCKETS).zip(buckets) {
        entries.sort_unstable_by_key(|e| e.key);
        let partition = PartitionKey {
            date: 0,
            name: bucket_name(bucket).into(),
        };
        for mut add in writer
            .write(&partition, keys_batch(bucket, &entries)?)
            .await?
        {
            tag_indexed_at(&mut add, now);
            adds.push(Action::Add(add));
        }
    }
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(vec![KEY_BUCKET.to_string()]),
        predicate: None,
    };
    Commit::new(operation, adds.clone()).execute(&table).await?;
    Ok(adds)
}

/// Removes the hot runs again, so the next run measures the same cold index.
async fn remove_hot(lake: &Lake, adds: Vec<Action>) -> Result<()> {
    let table = lake.open(Table::Keys).await?;
    let removes = adds
        .iter()
        .filter_map(|a| match a {
            Action::Add(add) => Some(Action::Remove(remove_of(add, true))),
            _ => None,
        })
        .collect();
    let operation = DeltaOperation::Delete { predicate: None };
    Commit::new(operation, removes).execute(&table).await?;
    Ok(())
}

/// The round whose copies the hot runs hold.
const HOT_ROUND: u64 = 999;

async fn round(
    lake: &Lake,
    store: &LatencyStore<LocalFileSystem>,
    round: u64,
    new_keys: u64,
    copies: u64,
    runs: Runs,
) -> Result<Round> {
    let mut rng = ChaCha8Rng::seed_from_u64(1_000 + round);
    let copies: Vec<Key> = (0..copies).map(|i| Key::of(&copy_uuid(round, i))).collect();
    let fresh: Vec<Key> = (copies.len() as u64..new_keys)
        .map(|_| Key::of(&format!("new-{round}-{:032x}", rng.random::<u128>())))
        .collect();
    let wanted: HashSet<Key> = copies.iter().chain(&fresh).copied().collect();
    let (gets, bytes) = store.gets();
    let (cpu, started) = (process_cpu_seconds()?, Instant::now());
    // Opening the table (its log) is part of a round, as in a merge.
    let keys = lake.open(Table::Keys).await?;
    let (found, _) = lookup(&keys, &wanted, None, runs).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds()? - cpu;
    let (gets_after, bytes_after) = store.gets();
    Ok(Round {
        seconds,
        cpu_seconds,
        gets: gets_after - gets,
        bytes: bytes_after - bytes,
        duplicates: copies.iter().filter(|k| !found.contains_key(k)).count() as u64,
        lost: fresh.iter().filter(|k| found.contains_key(k)).count() as u64,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let copies = args.round_keys * args.copies_percent / 100;
    let marker = args
        .dir
        .join(format!("built-{}-{}x{}", args.keys, args.rounds, copies));
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&args.dir);
        std::fs::create_dir_all(&args.dir)?;
        let started = Instant::now();
        let bytes = build(&args, copies).await?;
        std::fs::write(&marker, bytes.to_string())?;
        eprintln!(
            "built {} keys in {:.0} s",
            args.keys,
            started.elapsed().as_secs_f64()
        );
    }
    let index_bytes: u64 = std::fs::read_to_string(&marker)?.trim().parse()?;
    let keys_indexed = args.keys + args.rounds * copies;

    let model = LatencyModel {
        put: Duration::from_millis(60),
        get: Duration::from_millis(args.get_ms),
        list: Duration::from_millis(40),
        delete: Duration::from_millis(30),
        jitter: 0.5,
    };
    let store = Arc::new(LatencyStore::new(LocalFileSystem::new(), model, 1));
    let root = url::Url::from_directory_path(std::fs::canonicalize(&args.dir)?)
        .map_err(|()| anyhow::anyhow!("not a path: {}", args.dir.display()))?;
    let lake = Lake::in_store(root, store.clone() as Arc<dyn ObjectStore>);
    println!("{model}; index of {keys_indexed} keys, {index_bytes} bytes");

    let mut full = Vec::new();
    for r in 0..args.rounds {
        let measured = round(&lake, &store, r, args.round_keys, copies, Runs::All).await?;
        println!("round {r}: {measured:?}");
        full.push(measured);
    }
    // A quarter-size round (its copies are the first round's, found again).
    let quarter = round(&lake, &store, 0, args.round_keys / 4, copies / 4, Runs::All).await?;
    println!("quarter round: {quarter:?}");
    // A round with a hot window: the same lookup reading only runs indexed within it.
    let since = chrono::Utc::now().timestamp() - 1;
    let hot_adds = write_hot(&lake, args.hot_keys, copies).await?;
    let hot_round = round(
        &lake,
        &store,
        HOT_ROUND,
        args.round_keys,
        copies,
        Runs::IndexedAfter(since),
    )
    .await;
    remove_hot(&lake, hot_adds).await?;
    let hot_round = hot_round?;
    println!(
        "hot-window round ({} keys in the window): {hot_round:?}",
        args.hot_keys
    );

    let mean = |f: fn(&Round) -> f64| full.iter().map(f).sum::<f64>() / full.len() as f64;
    let (n, k) = (args.round_keys as f64, keys_indexed as f64);
    // Fit cost = a·K + b·N (K indexed keys, N new keys) through the full and the quarter
    // round, for bytes, GETs and CPU.
    let fit = |full: f64, quarter: f64| {
        let b = ((full - quarter) / (0.75 * n)).max(0.0);
        (((full - b * n) / k).max(0.0), b)
    };
    let model = Model {
        bytes: fit(mean(|r| r.bytes as f64), quarter.bytes as f64),
        gets: fit(mean(|r| r.gets as f64), quarter.gets as f64),
        cpu: fit(mean(|r| r.cpu_seconds), quarter.cpu_seconds),
        cores: args.range_cores,
        bytes_per_s: args.range_mb_s * 1e6,
        chunk: args.rows_per_commit,
    };
    // 1B events/hour: 84M new keys a 5-minute round, looked up in the whole index of 7
    // days (168B keys; what is built), or in a hot window of `--hot-hours` (planned).
    let n_1b = 1e9 / 12.0;
    let all = model.project(1e9 * 24.0 * 7.0, n_1b, 300.0);
    let hot = model.project(1e9 * args.hot_hours, n_1b, 300.0);
    print_sizing(&model, args.hot_hours);
    let summary = serde_json::json!({
        "keys_indexed": keys_indexed,
        "new_keys_per_round": args.round_keys,
        "round_s": mean(|r| r.seconds),
        "cpu_s_per_round": mean(|r| r.cpu_seconds),
        "bytes_read_per_new_key": mean(|r| r.bytes as f64) / n,
        "requests_per_new_key": mean(|r| r.gets as f64) / n,
        "index_bytes_per_key": index_bytes as f64 / k,
        "bytes_per_indexed_key_per_round": model.bytes.0,
        "bytes_per_new_key_marginal": model.bytes.1,
        "requests_per_million_indexed_keys_per_round": model.gets.0 * 1e6,
        "cpu_us_per_indexed_key_per_round": model.cpu.0 * 1e6,
        "cpu_us_per_new_key_marginal": model.cpu.1 * 1e6,
        // On 16 ranges; ranges: what fits the round in 5 minutes.
        "projected_1b_round_s": all.round_s_16,
        "projected_1b_ranges": all.ranges,
        "projected_1b_usd_per_million": all.usd / (n_1b / 1e6),
        "projected_1b_hot_window_round_s": hot.round_s_16,
        "projected_1b_hot_window_ranges": hot.ranges,
        "projected_1b_hot_window_usd_per_million": hot.usd / (n_1b / 1e6),
        "hot_window_keys": args.hot_keys,
        "hot_window_round_s": hot_round.seconds,
        "hot_window_round_bytes": hot_round.bytes,
        "hot_window_round_gets": hot_round.gets,
        "duplicates": full.iter().map(|r| r.duplicates).sum::<u64>()
            + quarter.duplicates
            + hot_round.duplicates,
        "lost": full.iter().map(|r| r.lost).sum::<u64>() + quarter.lost + hot_round.lost,
    });
    println!("{}", serde_json::to_string(&summary).context("summary")?);
    Ok(())
}
