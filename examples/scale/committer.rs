//! The committer, aborted at random moments and started afresh, as a Lambda container
//! that dies would be.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lakehouse_ingest::committer::Committer;
use lakehouse_lake::Table;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Sim;

/// The committer, started afresh after every crash as a new Lambda container would be.
pub(crate) async fn committer_loop(sim: Arc<Sim>) {
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
pub(crate) async fn supervise_committer(sim: Arc<Sim>) {
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
