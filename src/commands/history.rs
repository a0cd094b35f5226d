use anyhow::{Context, Result};
use clap::Args;
use lakehouse_lake::{Lake, Table};
use lakehouse_query::table_history;

use crate::args::{HistoryFormat, LakeArg};

#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    pub format: HistoryFormat,
    /// Newest versions to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// raw, staging or quarantine.
    pub table: String,
}

pub async fn run(args: HistoryArgs) -> Result<()> {
    let HistoryArgs {
        lake,
        format,
        limit,
        table,
    } = args;
    let (lake, table) = (lake.lake, table.as_str());
    let table = Table::from_name(table)
        .with_context(|| format!("unknown table {table:?} (raw, staging, quarantine)"))?;
    let lake = Lake::parse(&lake)?;
    let delta = lake
        .open_existing(table)
        .await?
        .with_context(|| format!("{} does not exist yet in {}", table.name(), lake.root()))?;
    let entries = table_history(&delta, limit).await?;
    match format {
        HistoryFormat::Json => {
            for e in &entries {
                outln!("{}", serde_json::to_string(e)?);
            }
        }
        HistoryFormat::Table => {
            outln!(
                "{:>7}  {:<27}  {:<14}  {:>10}  {:>12}  {:>11}  {:>13}",
                "version",
                "timestamp",
                "operation",
                "rows_added",
                "rows_removed",
                "files_added",
                "files_removed"
            );
            for e in &entries {
                outln!(
                    "{:>7}  {:<27}  {:<14}  {:>10}  {:>12}  {:>11}  {:>13}",
                    e.version,
                    e.timestamp.as_deref().unwrap_or("-"),
                    e.operation,
                    e.rows_added,
                    e.rows_removed.map_or("-".to_string(), |n| n.to_string()),
                    e.files_added,
                    e.files_removed
                );
            }
        }
    }
    Ok(())
}
