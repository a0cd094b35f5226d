use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::SessionContext;
use lakehouse_ingest::IngestOptions;
use lakehouse_ingest::backfill::Backfill;
use lakehouse_ingest::redrive::{Offered, RedriveSummary, redrive};
use lakehouse_lake::read::{register_empty, register_table};
use lakehouse_lake::redrive::{QuarantinedRecord, fixed_records, keys_path, redriven_keys};
use lakehouse_lake::{Lake, Table};
use lakehouse_query::quarantine::{QuarantineFilter, quarantined};
use serde::Serialize;

use crate::args::{HistoryFormat, LakeArg, parse_duration};

/// Which quarantine rows a command takes.
#[derive(Args, Clone)]
pub struct QuarantineSelection {
    /// An SQL condition over quarantine's columns (error, source, source_position, raw,
    /// ingested_at, ingest_seq, ingest_date), e.g. "error LIKE 'missing field%'".
    #[arg(long = "where", value_name = "SQL")]
    pub where_sql: Option<String>,
    /// Only rows quarantined at or after this: RFC 3339, or a duration back from now
    /// (e.g. 24h, 7d).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Rejected rows by reason: how many, how many re-driven, first and last seen.
    List {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        selection: QuarantineSelection,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
    },
    /// The selected records' bytes exactly, one per line, oldest first, to fix them.
    /// Records already re-driven are left out unless --all. With --out F, F.keys names
    /// each line's quarantine row, for `redrive --file F`.
    Export {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        selection: QuarantineSelection,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        all: bool,
    },
    /// Re-drive the selected rows through the current event rules into raw (each row at
    /// most once; rows still invalid stay as they are), or, with --file, load fixed lines.
    Redrive {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        selection: QuarantineSelection,
        /// Fixed records as JSON Lines. Beside an export's F.keys (one line per exported
        /// record, fixed in place; an empty line skips one): each becomes the re-drive of
        /// the quarantine row it names, at most once. Without one: loaded like `ingest`.
        #[arg(long, conflicts_with_all = ["where_sql", "since"])]
        file: Option<PathBuf>,
    },
}

pub(crate) fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let back = parse_duration(text)
        .map_err(|_| format!("{text:?}: expected RFC 3339 or a duration such as 24h"))?;
    chrono::Utc::now()
        .checked_sub_signed(back)
        .ok_or_else(|| format!("{text:?}: too far back"))
}

pub async fn run(command: QuarantineCommand) -> Result<()> {
    match command {
        QuarantineCommand::List {
            lake,
            selection,
            format,
        } => list(&Lake::parse(&lake.lake)?, &filter(selection), format).await,
        QuarantineCommand::Export {
            lake,
            selection,
            out,
            all,
        } => {
            let (mut sink, keys): (Box<dyn Write>, Option<Box<dyn Write>>) = match &out {
                Some(path) => (create(path)?, Some(create(&keys_path(path))?)),
                None => (Box::new(crate::output::stdout()), None),
            };
            let lake = Lake::parse(&lake.lake)?;
            export(&lake, &filter(selection), all, &mut sink, keys).await
        }
        QuarantineCommand::Redrive {
            lake,
            selection,
            file,
        } => {
            let lake = Lake::parse(&lake.lake)?;
            match file {
                Some(file) if keys_path(&file).exists() => redrive_fixed(&lake, &file).await,
                Some(file) => super::ingest::load(&lake, &[file], &Backfill::default()).await,
                None => redrive_selected(&lake, &filter(selection)).await,
            }
        }
    }
}

fn create(path: &Path) -> Result<Box<dyn Write>> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::new(file)))
}

fn filter(selection: QuarantineSelection) -> QuarantineFilter {
    QuarantineFilter {
        where_sql: selection.where_sql,
        since: selection.since,
    }
}

/// A session over raw and quarantine as opened here, so that what is selected and what is
/// left out as re-driven come from the same snapshots; a raw never written reads as empty.
async fn session(raw: Option<&DeltaTable>, quarantine: &DeltaTable) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    match raw {
        Some(raw) => register_table(&ctx, Table::Raw, raw).await?,
        None => register_empty(&ctx, Table::Raw)?,
    }
    register_table(&ctx, Table::Quarantine, quarantine).await?;
    Ok(ctx)
}

async fn open_quarantine(lake: &Lake) -> Result<DeltaTable> {
    lake.open_existing(Table::Quarantine)
        .await?
        .with_context(|| {
            format!(
                "nothing is quarantined in {}: no quarantine table",
                lake.root()
            )
        })
}

/// Quarantine rows `filter` selects and the keys of those re-driven, for the readers.
async fn selected(
    lake: &Lake,
    filter: &QuarantineFilter,
    with_bytes: bool,
) -> Result<(Vec<QuarantinedRecord>, HashSet<(String, String)>)> {
    let quarantine = open_quarantine(lake).await?;
    let raw = lake.open_existing(Table::Raw).await?;
    let ctx = session(raw.as_ref(), &quarantine).await?;
    let records = quarantined(&ctx, filter, with_bytes).await?;
    let redriven = match &raw {
        Some(raw) => redriven_keys(raw).await?,
        None => HashSet::new(),
    };
    Ok((records, redriven))
}

#[derive(Serialize)]
struct ReasonRow {
    error: String,
    rows: u64,
    redriven: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

async fn list(lake: &Lake, filter: &QuarantineFilter, format: HistoryFormat) -> Result<()> {
    let (records, redriven) = selected(lake, filter, false).await?;
    let mut by_error: BTreeMap<&str, ReasonRow> = BTreeMap::new();
    for r in &records {
        let at = DateTime::from_timestamp_micros(r.ingested_at_micros).unwrap_or_default();
        let row = by_error.entry(&r.error).or_insert_with(|| ReasonRow {
            error: r.error.clone(),
            rows: 0,
            redriven: 0,
            first: at,
            last: at,
        });
        row.rows += 1;
        row.redriven += u64::from(redriven.contains(&r.redriven_key()));
        row.first = row.first.min(at);
        row.last = row.last.max(at);
    }
    let mut rows: Vec<ReasonRow> = by_error.into_values().collect();
    rows.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.error.cmp(&b.error)));
    match format {
        HistoryFormat::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
        HistoryFormat::Table => {
            outln!(
                "{:>8}  {:>9}  {:<19}  {:<19}  error",
                "rows",
                "redriven",
                "first (UTC)",
                "last (UTC)"
            );
            for r in &rows {
                outln!(
                    "{:>8}  {:>9}  {:<19}  {:<19}  {}",
                    r.rows,
                    r.redriven,
                    crate::args::utc_seconds(r.first),
                    crate::args::utc_seconds(r.last),
                    r.error
                );
            }
            let total: u64 = rows.iter().map(|r| r.rows).sum();
            outln!("{total} rows, {} reasons", rows.len());
        }
    }
    Ok(())
}

async fn export(
    lake: &Lake,
    filter: &QuarantineFilter,
    all: bool,
    out: &mut dyn Write,
    mut keys: Option<Box<dyn Write>>,
) -> Result<()> {
    let (records, redriven) = selected(lake, filter, true).await?;
    let (mut written, mut left_out, mut multi_line) = (0u64, 0u64, 0u64);
    for r in &records {
        if !all && redriven.contains(&r.redriven_key()) {
            left_out += 1;
            continue;
        }
        multi_line += u64::from(r.raw.contains(&b'\n'));
        out.write_all(&r.raw)?;
        out.write_all(b"\n")?;
        if let Some(keys) = keys.as_mut() {
            writeln!(keys, "{}", r.key_line())?;
        }
        written += 1;
    }
    out.flush()?;
    if let Some(keys) = keys.as_mut() {
        keys.flush()?;
    }
    eprintln!("exported {written} records ({left_out} already re-driven left out)");
    if multi_line > 0 {
        eprintln!(
            "warning: {multi_line} records hold a line break (Kinesis records may) and span \
             more than one line of the export"
        );
    }
    Ok(())
}

async fn redrive_selected(lake: &Lake, filter: &QuarantineFilter) -> Result<()> {
    let quarantine = open_quarantine(lake).await?;
    let raw = lake.open(Table::Raw).await?;
    let ctx = session(Some(&raw), &quarantine).await?;
    let records = quarantined(&ctx, filter, true).await?;
    report(
        &redrive(
            raw,
            quarantine,
            Offered::Stored(records),
            IngestOptions::default(),
        )
        .await?,
    )
}

/// Fixed records of an export, each naming its quarantine row by the export's keys file.
async fn redrive_fixed(lake: &Lake, file: &Path) -> Result<()> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let (fixed, keys) = (read(file)?, read(&keys_path(file))?);
    let names = (
        file.display().to_string(),
        keys_path(file).display().to_string(),
    );
    let records = fixed_records(&fixed, &keys, &names.0, &names.1).map_err(anyhow::Error::msg)?;
    let quarantine = open_quarantine(lake).await?;
    let raw = lake.open(Table::Raw).await?;
    report(
        &redrive(
            raw,
            quarantine,
            Offered::Fixed(records),
            IngestOptions::default(),
        )
        .await?,
    )
}

/// The one line a re-drive ends with.
fn report(summary: &RedriveSummary) -> Result<()> {
    let invalid: u64 = summary.still_invalid.values().sum();
    let kinds: Vec<String> = summary
        .still_invalid
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    outln!(
        "redriven: selected {} already re-driven {} appended {} still invalid {invalid}{}{} raw {}",
        summary.offered - summary.repeated,
        summary.already_redriven,
        summary.redriven,
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        },
        if summary.too_large == 0 {
            String::new()
        } else {
            format!(
                " too large {} (quarantine keeps only their first bytes: re-drive them \
                 from the original records with --file)",
                summary.too_large
            )
        },
        summary
            .raw_version
            .map_or("unchanged".to_string(), |v| format!("v{v}"))
    );
    Ok(())
}
