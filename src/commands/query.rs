use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use lakehouse_lake::{Lake, Table};
use lakehouse_query::{OutputFormat, TableSelection, open_session, run_query, write_batches};

use crate::args::{self, LakeArg};

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Read TABLE at version N (time travel), e.g. --version staging=3.
    #[arg(long = "version", value_name = "TABLE=N")]
    pub versions: Vec<String>,
    /// Read every table as of this instant (RFC 3339, e.g. 2025-11-24T10:00:00Z).
    #[arg(long)]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value_t = args::OutputFormat::Table)]
    pub format: args::OutputFormat,
    /// Read the SQL from this file instead of the argument.
    #[arg(long, conflicts_with = "sql")]
    pub file: Option<PathBuf>,
    /// The SQL statement.
    #[arg(required_unless_present = "file")]
    pub sql: Option<String>,
}

pub async fn run(args: QueryArgs) -> Result<()> {
    let QueryArgs {
        lake,
        versions,
        as_of,
        format,
        file,
        sql,
    } = args;
    let lake = lake.lake.as_str();
    let selection = selection(&versions, as_of.as_deref())?;
    let sql = match (file, sql) {
        (Some(path), _) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        (None, Some(sql)) => sql,
        (None, None) => bail!("no SQL given"),
    };
    let lake = Lake::parse(lake)?;
    let (ctx, _) = open_session(&lake, &selection).await?;
    let batches = run_query(&ctx, &sql).await?;
    let format = match format {
        args::OutputFormat::Table => OutputFormat::Table,
        args::OutputFormat::Csv => OutputFormat::Csv,
        args::OutputFormat::Json => OutputFormat::Json,
    };
    let mut out = crate::output::stdout();
    write_batches(&batches, format, &mut out)?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

pub fn selection(versions: &[String], as_of: Option<&str>) -> Result<TableSelection> {
    let mut selection = TableSelection::default();
    for spec in versions {
        let (name, version) = spec
            .split_once('=')
            .with_context(|| format!("--version {spec:?}: expected TABLE=N, e.g. staging=3"))?;
        let table = Table::from_name(name).with_context(|| {
            format!("--version {spec:?}: unknown table {name:?} (raw, staging, quarantine)")
        })?;
        let version: u64 = version
            .parse()
            .ok()
            .with_context(|| format!("--version {spec:?}: {version:?} is not a version number"))?;
        selection.versions.insert(table, version);
    }
    if let Some(at) = as_of {
        let at = DateTime::parse_from_rfc3339(at).with_context(|| {
            format!("--as-of {at:?}: expected RFC 3339, e.g. 2025-11-24T10:00:00Z")
        })?;
        selection.as_of = Some(at.with_timezone(&Utc));
    }
    Ok(selection)
}
