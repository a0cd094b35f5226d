//! The crash harness (issue 11 §4): ingest and compaction processes are SIGKILLed at seeded
//! random moments, everything is rerun to completion, and the three tables are compared
//! with an independent model. Compaction runs of different kinds take turns, each
//! vacuuming with no retention (issue 22 §3, §4), the key index is rebuilt a few files a
//! commit (issue 23), and one subject is erased between two ingests (issue 24). `make
//! crash` runs 200 trials; `make test` runs a few.
//! `LAKEHOUSE_CRASH_TRIALS` and `LAKEHOUSE_CRASH_SEED` set the number and the first seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lakehouse_lake::Table;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::helpers::TestLake;

const T0: i64 = 1_700_000_000;
const FILES: usize = 3;

/// The subject the plan erases, and how many inputs were ingested when it does.
const ERASED: &str = "s0";
const ERASED_AFTER_INPUTS: usize = 2;

/// One valid line of the inputs.
struct Copy {
    uuid: String,
    micros: i64,
    n: i64,
    input: usize,
    subject: String,
}

/// What the lake must hold after everything ran once to completion.
#[derive(Default)]
struct Model {
    quarantine: i64,
    copies: Vec<Copy>,
}

impl Model {
    /// The copies the erasure leaves: all but the erased subject's among the inputs
    /// ingested before it (a later one's are new events).
    fn kept(&self) -> impl Iterator<Item = &Copy> {
        self.copies
            .iter()
            .filter(|c| !(c.subject == ERASED && c.input < ERASED_AFTER_INPUTS))
    }

    fn raw(&self) -> i64 {
        self.kept().count() as i64
    }

    /// uuid → the line number (`n`) of its winning copy: the greatest instant.
    fn staging(&self) -> BTreeMap<String, i64> {
        let mut best: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for c in self.kept() {
            let b = best.entry(c.uuid.clone()).or_insert((c.micros, c.n));
            if c.micros > b.0 {
                *b = (c.micros, c.n);
            }
        }
        best.into_iter().map(|(uuid, (_, n))| (uuid, n)).collect()
    }
}

/// Writes the trial's input files; every instant is unique, so the winner is the model's
/// plain maximum.
fn inputs(dir: &Path, rng: &mut ChaCha8Rng, model: &mut Model) -> Vec<PathBuf> {
    let mut n = 0i64;
    (0..FILES)
        .map(|f| {
            let lines: Vec<String> = (0..rng.random_range(20..400))
                .map(|_| {
                    n += 1;
                    if rng.random_bool(0.1) {
                        model.quarantine += 1;
                        return format!("broken {n}");
                    }
                    // A uuid keeps its type: type ranges share no event (their one limit).
                    let u = rng.random_range(0..80);
                    let uuid = format!("u{u}");
                    // The second input 400 days later: the horizon run that merges it
                    // leaves the first input's copies, for the sweep.
                    let later = if f == 1 { 400 * 86_400 } else { 0 };
                    let second = T0 + later + rng.random_range(0..3 * 86_400);
                    let micros = second * 1_000_000 + n;
                    // A uuid keeps its subject too.
                    let subject = format!("s{}", u % 5);
                    let line = format!(
                        r#"{{"event_uuid":"{uuid}","event_name":"t{}:x","created_at":{second}.{n:06},"n":{n},"user_id":"{subject}"}}"#,
                        u % 4
                    );
                    model.copies.push(Copy {
                        uuid,
                        micros,
                        n,
                        input: f,
                        subject,
                    });
                    line
                })
                .collect();
            let path = dir.join(format!("input{f}.jsonl"));
            std::fs::write(&path, lines.join("\n")).expect("write input");
            path
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Ingest(usize),
    /// A compaction with no retention and `--vacuum-full`: the whole table (no flag), or
    /// one of two type ranges or key ranges (`--types I/2`, `--keys I/2`).
    Compact(&'static [&'static str]),
    /// The key index removed, then rebuilt by `keys update`, a few staging files a commit
    /// (a killed rebuild's rerun goes on from its last commit).
    Rebuild,
    /// A whole-table compaction searching only one day around each new row's date: copies
    /// further apart stay (inputs span three days) until the sweep.
    Horizon,
    /// A range's compaction with a hot window of 0 hours: it looks up no index run, so
    /// every copy of a staged uuid lands beside it until the sweep.
    Cold(&'static str),
    /// `keys sweep`: every uuid staged twice resolved to its winner.
    Sweep,
    /// `erase` of [`ERASED`]: its rows in raw, staging and quarantine gone.
    Erase,
}

/// The run a trial makes. Kinds of compaction take turns: both type ranges, then the
/// whole-table run maintains while the ranges lag, then a key range (its sibling never
/// runs) and the type ranges again; every compaction vacuums with no retention.
const PLAN: [Step; 13] = [
    Step::Ingest(0),
    Step::Compact(&["--types", "0/2"]),
    Step::Compact(&["--types", "1/2"]),
    Step::Ingest(1),
    // Staging holds input 0, raw inputs 0 and 1: the erasure reaches both, and the next
    // compaction reads input 1 from the files it rewrote.
    Step::Erase,
    Step::Horizon,
    Step::Compact(&[]),
    Step::Rebuild,
    Step::Ingest(2),
    Step::Compact(&["--keys", "1/2"]),
    Step::Compact(&["--types", "1/2"]),
    Step::Cold("0/2"),
    Step::Sweep,
];

fn spawn(step: Step, lake: &str, files: &[PathBuf]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lakehouse"));
    match step {
        Step::Ingest(f) => command.args(["ingest", "--lake", lake]).arg(&files[f]),
        Step::Compact(range) => command
            .args([
                "compact",
                "--lake",
                lake,
                "--retention-hours",
                "0",
                "--vacuum-full",
            ])
            .args(range),
        Step::Rebuild => command.args([
            "keys",
            "update",
            "--lake",
            lake,
            "--max-rows-per-commit",
            "20",
        ]),
        Step::Cold(types) => command.args([
            "compact",
            "--lake",
            lake,
            "--retention-hours",
            "0",
            "--vacuum-full",
            "--types",
            types,
            "--hot-hours",
            "0",
        ]),
        Step::Horizon => command.args([
            "compact",
            "--lake",
            lake,
            "--horizon-days",
            "1",
            "--no-maintenance",
        ]),
        Step::Sweep => command.args(["keys", "sweep", "--lake", lake, "--rows-per-pass", "200"]),
        Step::Erase => command.args([
            "erase",
            "--lake",
            lake,
            "--subject",
            ERASED,
            "--request-id",
            "crash",
        ]),
    };
    command
        .env_remove("LAKEHOUSE_LAKE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lakehouse")
}

fn run_ok(step: Step, lake: &str, files: &[PathBuf]) {
    let out = spawn(step, lake, files).wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{step:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (raw, quarantine, staging) row counts, and the key index's commits; zeros before any
/// table exists.
type Counts = (i64, i64, i64, usize);

async fn counts(lake: &TestLake) -> Counts {
    let first_commit = "_delta_log/00000000000000000000.json";
    let any_table = ["raw", "quarantine", "staging"]
        .iter()
        .any(|t| lake.dir.path().join(t).join(first_commit).exists());
    if !any_table {
        return (0, 0, 0, 0);
    }
    let index_log = lake.dir.path().join(Table::Keys.name()).join("_delta_log");
    let index_commits = std::fs::read_dir(index_log).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .count()
    });
    (
        lake.count("raw").await,
        lake.count("quarantine").await,
        lake.count("staging").await,
        index_commits,
    )
}

/// Where a kill landed, told by what the tables held right after it.
fn landing(step: Step, before: Counts, after: Counts, exited: bool) -> String {
    let changed = |same: bool| if same { "no" } else { "yes" };
    match step {
        _ if exited => "after the process had exited".to_string(),
        Step::Ingest(_) => format!(
            "ingest: raw committed {}, quarantine committed {}",
            changed(before.0 == after.0),
            changed(before.1 == after.1)
        ),
        Step::Compact(_) | Step::Horizon | Step::Cold(_) | Step::Sweep => format!(
            "{}: staging committed {}, key index committed {}",
            match step {
                Step::Sweep => "sweep",
                Step::Horizon => "compact --horizon-days",
                Step::Cold(_) => "compact --hot-hours 0",
                _ => "compact",
            },
            changed(before.2 == after.2),
            changed(before.3 == after.3)
        ),
        Step::Rebuild => format!(
            "rebuild: {} index commits landed",
            after.3.saturating_sub(before.3)
        ),
        Step::Erase => format!(
            "erase: raw changed {}, staging changed {}",
            changed(before.0 == after.0),
            changed(before.2 == after.2)
        ),
    }
}

/// Per step: the total time of its uninterrupted runs, and their number.
type Durations = BTreeMap<Step, (Duration, u32)>;

async fn trial(seed: u64, durations: &mut Durations) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lake = TestLake::new();
    let path = lake.path().to_string();
    let mut model = Model::default();
    let files = inputs(lake.dir.path(), &mut rng, &mut model);
    let victim = rng.random_range(0..PLAN.len());
    let mut landed = String::new();
    for (i, &step) in PLAN.iter().enumerate() {
        if step == Step::Rebuild {
            let index = lake.dir.path().join(Table::Keys.name());
            std::fs::remove_dir_all(index).expect("remove the key index");
        }
        if i != victim {
            let started = Instant::now();
            let (p, f) = (path.clone(), files.clone());
            tokio::task::spawn_blocking(move || run_ok(step, &p, &f))
                .await
                .expect("join");
            let (total, runs) = durations.entry(step).or_default();
            *total += started.elapsed();
            *runs += 1;
            continue;
        }
        let before = counts(&lake).await;
        // Anywhere from before start-up to the end of a run of average length.
        let mean = match durations.get(&step) {
            Some((total, runs)) => *total / *runs,
            None => Duration::from_millis(300),
        };
        let delay = rng.random_range(0..=mean.as_millis() as u64);
        let mut child = spawn(step, &path, &files);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let exited = child.try_wait().expect("try_wait").is_some();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        landed = landing(step, before, counts(&lake).await, exited);
        // Run the killed step again, to completion.
        let (p, f) = (path.clone(), files.clone());
        tokio::task::spawn_blocking(move || run_ok(step, &p, &f))
            .await
            .expect("join");
    }

    let (raw, quarantine, _, _) = counts(&lake).await;
    assert_eq!(
        (raw, quarantine),
        (model.raw(), model.quarantine),
        "seed {seed}: {landed}"
    );
    let rows = lake
        .query("SELECT event_uuid, created_datetime, payload FROM staging")
        .await;
    let staging: BTreeMap<String, i64> = rows
        .iter()
        .map(|r| {
            let payload: serde_json::Value =
                serde_json::from_str(r["payload"].as_str().unwrap_or("{}")).expect("payload");
            (
                r["event_uuid"].as_str().unwrap_or_default().to_string(),
                payload["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(rows.len(), staging.len(), "seed {seed}: one row per uuid");
    let expected = model.staging();
    assert_eq!(staging, expected, "seed {seed}: staging ({landed})");
    // The key index converged with staging too, whatever step the kill hit.
    let check = lakehouse_compact::keys::check_keys(&lake.lake)
        .await
        .expect("check keys");
    assert!(
        check.is_exact() && check.index_keys == expected.len() as u64,
        "seed {seed}: key index {check:?} ({landed})"
    );
    // The typed tables converge with staging too: one more mirror (the last steps
    // rewrite staging after compaction's) leaves each event's row exactly once.
    let staging_table = lake.lake.open(Table::Staging).await.expect("staging");
    lakehouse_lake::typed::mirror(&lake.lake, &staging_table, Default::default())
        .await
        .expect("mirror");
    let mut typed: BTreeMap<String, i64> = BTreeMap::new();
    let mut typed_rows = 0;
    for (name, _) in
        lakehouse_lake::typed::table::named(lake.lake.typed_tables().await.expect("typed"))
    {
        for r in lake
            .query(&format!("SELECT event_uuid, n FROM {name}"))
            .await
        {
            typed_rows += 1;
            let uuid = r["event_uuid"].as_str().unwrap_or_default().to_string();
            typed.insert(uuid, r["n"].as_i64().unwrap_or(-1));
        }
    }
    assert_eq!(
        typed_rows,
        typed.len(),
        "seed {seed}: one typed row per uuid ({landed})"
    );
    assert_eq!(typed, expected, "seed {seed}: typed tables ({landed})");
    landed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_rerun_to_exactly_the_model() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let trials = env("LAKEHOUSE_CRASH_TRIALS", 6);
    let first_seed = env("LAKEHOUSE_CRASH_SEED", 1);
    let mut durations = Durations::new();
    let mut landings: BTreeMap<String, u64> = BTreeMap::new();
    for seed in first_seed..first_seed + trials {
        *landings
            .entry(trial(seed, &mut durations).await)
            .or_default() += 1;
    }
    println!("crash harness: {trials} trials from seed {first_seed}, every one exact");
    for (landed, n) in &landings {
        println!("  {n:4}  killed {landed}");
    }
}
