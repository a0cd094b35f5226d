//! How many commits per second one Delta log takes from W concurrent writers: the
//! ceiling every ingest Lambda shares on `raw`. `make bench_commits` runs it against moto's
//! S3 (single-threaded, so conditional PUTs are atomic as on S3); pass any S3 endpoint and
//! lake to measure elsewhere.
//!
//! Usage: commit_rate <lake s3://bucket/prefix> <writers,…> <commits per writer>
//! (AWS settings from the environment, e.g. AWS_ENDPOINT_URL for moto).

use std::time::{Duration, Instant};

use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::{CommitMetadata, Lake, Table};

struct WriterStats {
    commits: u64,
    /// Commits that ran out of retries (a Lambda would report its batch failed).
    failed: u64,
    retries: u64,
    latencies: Vec<Duration>,
}

async fn writer(lake: Lake, id: usize, commits: usize) -> anyhow::Result<WriterStats> {
    let mut stats = WriterStats {
        commits: 0,
        failed: 0,
        retries: 0,
        latencies: Vec::new(),
    };
    let mut raw = lake.open(Table::Raw).await?;
    let quarantine = lake.open(Table::Quarantine).await?;
    for n in 0..commits {
        // As a warm Lambda does: catch the table up, write a small batch, commit.
        raw.update_incremental(None).await?;
        let mut ingestor =
            Ingestor::with_tables(raw.clone(), quarantine.clone(), IngestOptions::default())?;
        for i in 0..10 {
            let line = format!(
                r#"{{"event_uuid":"w{id}-{n}-{i}","event_name":"bench:commit","created_at":1764000000}}"#
            );
            let position = i.to_string();
            let record = SourceRecord {
                data: line.as_bytes(),
                source: "bench",
                position: &position,
            };
            ingestor.push(&record).await?;
        }
        let prepared = ingestor.prepare().await?;
        let started = Instant::now();
        match prepared.raw.commit(&[], CommitMetadata::default()).await {
            Ok(Some(c)) => {
                stats.latencies.push(started.elapsed());
                stats.commits += 1;
                stats.retries += c.retries;
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("writer {id}: commit failed: {e}");
                stats.failed += 1;
            }
        }
    }
    Ok(stats)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, lake, writers, commits] = args.as_slice() else {
        anyhow::bail!(
            "usage: commit_rate <lake s3://bucket/prefix> <writers,…> <commits per writer>"
        );
    };
    let commits: usize = commits.parse()?;
    println!("writers commits failed seconds commits/s retries/commit p50_ms p95_ms");
    for w in writers.split(',') {
        let w: usize = w.parse()?;
        let lake = Lake::parse(&format!("{}/w{w}", lake.trim_end_matches('/')))?;
        // Created first, so the run measures appends, not the creation race.
        lake.open(Table::Raw).await?;
        lake.open(Table::Quarantine).await?;
        let started = Instant::now();
        let tasks: Vec<_> = (0..w)
            .map(|id| tokio::spawn(writer(lake.clone(), id, commits)))
            .collect();
        let (mut total, mut failed, mut retries, mut latencies) = (0, 0, 0, Vec::new());
        for task in tasks {
            let stats = task.await??;
            total += stats.commits;
            failed += stats.failed;
            retries += stats.retries;
            latencies.extend(stats.latencies);
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort();
        println!(
            "{w} {total} {failed} {seconds:.1} {:.2} {:.2} {:.0} {:.0}",
            total as f64 / seconds,
            retries as f64 / total.max(1) as f64,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
        );
    }
    Ok(())
}
