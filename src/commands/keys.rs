use std::io::Read;

use anyhow::{Context, Result, bail};
use lakehouse_compact::candidates::Candidates;
use lakehouse_compact::key_build::{BuildPlan, ChunkOutcome, index_build_chunk, plan_build};
use lakehouse_compact::keys::{check_keys, update_keys};
use lakehouse_compact::sweep::{Scope, sweep};
use lakehouse_lake::Lake;
use lakehouse_query::duplicates::duplicated_events;

use crate::cli::{HistoryFormat, KeysCommand};

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
