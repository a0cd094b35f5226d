use std::io::Read;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lakehouse_compact::candidates::Candidates;
use lakehouse_compact::key_build::{BuildPlan, ChunkOutcome, index_build_chunk, plan_build};
use lakehouse_compact::keys::{check_keys, update_keys};
use lakehouse_compact::sweep::{Scope, sweep};
use lakehouse_lake::Lake;
use lakehouse_query::duplicates::duplicated_events;

use crate::args::{HistoryFormat, LakeArg};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Index what staging gained since the index's version (or rebuild the index when it
    /// has none for this staging); compaction does this after every run.
    Update {
        #[command(flatten)]
        lake: LakeArg,
        /// A rebuild commits the entries of about this many staging rows at a time (bounds
        /// memory; an interrupted rebuild goes on from its last commit).
        #[arg(long, default_value_t = lakehouse_compact::CompactOptions::default().max_rows_per_commit,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_rows_per_commit: u64,
    },
    /// Resolve every event_uuid staged more than once to its winning copy, over all of
    /// staging (reads staging's uuids whole): the copies rounds that searched less left
    /// (--horizon-days, a fan-out's ranges). Records the version swept (`status`).
    Sweep {
        #[command(flatten)]
        lake: LakeArg,
        /// Staged rows one pass holds (~24 bytes each); a larger staging takes several
        /// passes, each reading its uuids again.
        #[arg(long, default_value_t = lakehouse_compact::sweep::ROWS_PER_PASS,
              value_parser = clap::value_parser!(u64).range(1..))]
        rows_per_pass: u64,
        /// Sweep only the copies an engine found: the CSV result (with its header) of
        /// sql/queries/duplicated_events.sql, as Athena writes it to S3 or `lakehouse query
        /// --format csv` prints it; `-` reads standard input. Only the partitions it names
        /// are read.
        #[arg(long, value_name = "CSV", requires = "as_of", conflicts_with = "sql")]
        candidates: Option<String>,
        /// With --candidates: a staging version the query read at least (the version
        /// `lakehouse status` showed before it started); recorded as swept.
        #[arg(long, value_name = "VERSION", requires = "candidates")]
        as_of: Option<u64>,
        /// Find the copies with DataFusion, running sql/queries/duplicated_events.sql on
        /// staging's latest version (the query Athena runs at scale), then sweep those.
        #[arg(long, conflicts_with = "by_index")]
        sql: bool,
        /// Find the copies through the key index: the rows staged since the last sweep, the
        /// partitions the index names for their keys, and their own (reads what arrived,
        /// not all of staging). Needs one earlier sweep.
        #[arg(long, conflicts_with = "candidates")]
        by_index: bool,
        /// The key index is brought up to staging afterwards; a rebuild commits the
        /// entries of about this many staging rows at a time.
        #[arg(long, default_value_t = lakehouse_compact::CompactOptions::default().max_rows_per_commit,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_rows_per_commit: u64,
    },
    /// Build the index in chunks that may run at once, anywhere (`update` builds them one
    /// after another): `--plan` starts a build when the index needs one and lists pending
    /// chunks; `--as-of V --files A..B` indexes one chunk, exactly once. The next `update`
    /// (or compaction) records the finished build. The keys-build state machine's steps.
    Build {
        #[command(flatten)]
        lake: LakeArg,
        /// Start a build if the index needs one, and list the chunks still to index.
        #[arg(long, conflicts_with_all = ["as_of", "files"])]
        plan: bool,
        /// The staging version being built, as the plan said.
        #[arg(long, value_name = "VERSION", requires = "files")]
        as_of: Option<u64>,
        /// The chunk to index: files FROM..TO of that version's live files in path order.
        #[arg(long, value_name = "FROM..TO", requires = "as_of", value_parser = parse_chunk)]
        files: Option<lakehouse_compact::key_build::Chunk>,
        /// A chunk holds the files of about this many staging rows.
        #[arg(long, default_value_t = lakehouse_compact::key_build::ROWS_PER_CHUNK,
              value_parser = clap::value_parser!(u64).range(1..))]
        rows_per_chunk: u64,
        /// Chunks listed at most; plan again once they are done.
        #[arg(long, default_value_t = lakehouse_compact::key_build::CHUNKS_PER_PLAN,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_chunks: u64,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
    },
    /// Compare every key of the index with staging at the version the index holds (reads
    /// both tables whole); fails when they differ.
    Check {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
    },
}

fn parse_chunk(text: &str) -> Result<lakehouse_compact::key_build::Chunk, String> {
    let bad = || format!("{text:?}: expected FROM..TO, file numbers with FROM < TO");
    let (from, to) = text.split_once("..").ok_or_else(bad)?;
    let (from, to) = (
        from.parse().map_err(|_| bad())?,
        to.parse().map_err(|_| bad())?,
    );
    if from >= to {
        return Err(bad());
    }
    Ok(lakehouse_compact::key_build::Chunk { from, to })
}

pub async fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Update {
            lake,
            max_rows_per_commit,
        } => {
            let update = update_keys(&Lake::parse(&lake.lake)?, max_rows_per_commit).await?;
            let before = update
                .indexed_before
                .map_or("none".to_string(), |v| format!("v{v}"));
            let (how, build) = match (update.rebuilt, update.build_resumed_after) {
                (false, _) => ("updated", String::new()),
                (true, resumed) => (
                    "rebuilt",
                    format!(
                        " (build: {} files in {} commits{})",
                        update.build_files,
                        update.build_commits,
                        resumed.map_or(String::new(), |n| format!(", resumed after {n}"))
                    ),
                ),
            };
            outln!(
                "keys {how}: staging {before}..v{} files read {} entries added {} files added {} removed {}{build}",
                update.indexed,
                update.staging_files_read,
                update.entries_added,
                update.files_added,
                update.files_removed
            );
        }
        KeysCommand::Sweep {
            lake,
            rows_per_pass,
            candidates,
            as_of,
            sql,
            by_index,
            max_rows_per_commit,
        } => {
            let lake = Lake::parse(&lake.lake)?;
            let scope = match (candidates, as_of, sql) {
                _ if by_index => Scope::ByIndex,
                (Some(spec), Some(as_of), _) => Scope::Found(load(&lake, &spec, as_of).await?),
                (None, _, true) => {
                    let Some(found) = duplicated_events(&lake).await? else {
                        bail!("no staging table to sweep: run `lakehouse compact` first");
                    };
                    Scope::Found(Candidates::from_batches(
                        &found.batches,
                        found.staging_version,
                    )?)
                }
                _ => Scope::All { rows_per_pass },
            };
            if let Scope::Found(found) = &scope {
                outln!(
                    "candidates: {} copies of {} events, found as of staging v{}",
                    found.rows,
                    found.events(),
                    found.as_of
                );
            }
            let report = sweep(&lake, &scope, max_rows_per_commit).await?;
            let Some(committed) = report.committed else {
                bail!("no staging table to sweep: run `lakehouse compact` first");
            };
            outln!(
                "swept staging v{}: {} rows in {} files ({} pass{}); {} events staged more than once, {} rows removed, {} files rewritten ({:.1} MB); committed v{committed}; keys at staging v{}",
                report.swept,
                report.rows_read,
                report.files_read,
                report.passes,
                if report.passes == 1 { "" } else { "es" },
                report.duplicated_events,
                report.rows_removed,
                report.files_rewritten,
                report.bytes_rewritten as f64 / 1e6,
                report.keys.indexed
            );
        }
        KeysCommand::Build {
            lake,
            plan,
            as_of,
            files,
            rows_per_chunk,
            max_chunks,
            format,
        } => {
            let lake = Lake::parse(&lake.lake)?;
            match (plan, as_of, files) {
                (true, _, _) => {
                    let plan = plan_build(&lake, rows_per_chunk, max_chunks).await?;
                    match format {
                        HistoryFormat::Json => outln!("{}", serde_json::to_string(&plan)?),
                        HistoryFormat::Table => outln!("{}", describe_plan(&plan)),
                    }
                }
                (false, Some(as_of), Some(chunk)) => {
                    let outcome = index_build_chunk(&lake, as_of, chunk).await?;
                    match format {
                        HistoryFormat::Json => outln!("{}", serde_json::to_string(&outcome)?),
                        HistoryFormat::Table => outln!(
                            "chunk {}..{} of the build of staging v{as_of}: {}",
                            chunk.from,
                            chunk.to,
                            describe_outcome(&outcome)
                        ),
                    }
                }
                _ => bail!("keys build: give --plan, or --as-of VERSION --files FROM..TO"),
            }
        }
        KeysCommand::Check { lake, format } => {
            let check = check_keys(&Lake::parse(&lake.lake)?).await?;
            match format {
                HistoryFormat::Json => outln!("{}", serde_json::to_string_pretty(&check)?),
                HistoryFormat::Table => {
                    let indexed = check
                        .indexed
                        .map_or("none".to_string(), |v| format!("v{v}"));
                    outln!(
                        "keys at staging {indexed} (staging is at v{}): staged rows {} index entries {} keys {} missing {} wrong {} extra {}",
                        check.staging_version,
                        check.staging_rows,
                        check.index_entries,
                        check.index_keys,
                        check.missing,
                        check.wrong,
                        check.extra
                    );
                }
            }
            if check.indexed.is_none() {
                bail!("no key index for this staging: run `lakehouse keys update` or compact");
            }
            if !check.is_exact() {
                bail!(
                    "the key index differs from staging: {}; `lakehouse keys update` after \
                     removing the staging_keys table rebuilds it",
                    check.examples.join(", ")
                );
            }
        }
    }
    Ok(())
}

fn describe_plan(plan: &BuildPlan) -> String {
    let Some(as_of) = plan.as_of else {
        return "no build needed: the key index is trusted (`lakehouse keys update` follows \
                staging)"
            .to_string();
    };
    let chunks: Vec<String> = plan
        .chunks
        .iter()
        .map(|c| format!("{}..{}", c.from, c.to))
        .collect();
    format!(
        "build of staging v{as_of}{}: {} files, {} indexed; {} chunks to index{}{}{}",
        if plan.begun { " (begun now)" } else { "" },
        plan.files,
        plan.files_done,
        chunks.len(),
        if plan.more { " (more after them)" } else { "" },
        if chunks.is_empty() { "" } else { ": " },
        chunks.join(" ")
    )
}

fn describe_outcome(outcome: &ChunkOutcome) -> String {
    match outcome {
        ChunkOutcome::Indexed {
            files,
            entries,
            completed,
        } => format!(
            "indexed {files} files, {entries} entries{}",
            if *completed {
                "; the build is complete"
            } else {
                ""
            }
        ),
        ChunkOutcome::AlreadyDone => "already indexed; nothing to do".to_string(),
        ChunkOutcome::Lost => {
            "another run committed it (or the build's end) first; nothing to do".to_string()
        }
        ChunkOutcome::NotUnderWay { building: None } => {
            "no build of that version is under way (it finished); nothing to do".to_string()
        }
        ChunkOutcome::NotUnderWay {
            building: Some(other),
        } => format!(
            "no build of that version is under way (staging v{other} is being built: plan \
             again); nothing to do"
        ),
    }
}

/// The candidates CSV: standard input for `-`, an S3 object, or a file (a named pipe too).
async fn load(lake: &Lake, spec: &str, as_of: u64) -> Result<Candidates> {
    if spec.starts_with("s3://") {
        return Ok(Candidates::from_s3(lake, spec, as_of).await?);
    }
    let mut bytes = Vec::new();
    if spec == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading the candidates from standard input")?;
    } else {
        bytes = std::fs::read(spec).with_context(|| format!("reading the candidates {spec}"))?;
    }
    Ok(Candidates::from_csv(&bytes, as_of)?)
}
