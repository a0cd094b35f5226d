use anyhow::{Result, bail};
use lakehouse_compact::keys::{check_keys, update_keys};
use lakehouse_compact::sweep::sweep;
use lakehouse_lake::Lake;

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
            max_rows_per_commit,
        } => {
            let report = sweep(
                &Lake::parse(&lake.lake)?,
                rows_per_pass,
                max_rows_per_commit,
            )
            .await?;
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
