//! `lakehouse erase`: one request's subjects gone from raw, staging and quarantine, and
//! the receipt printed (the stage is `lakehouse_erase`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use lakehouse_erase::{EraseOptions, Receipt, Subjects, erase, requests};
use lakehouse_lake::Lake;

use crate::args::{HistoryFormat, LakeArg};

#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// A subject's id, as the subject paths find it (repeat for several).
    #[arg(long = "subject")]
    subjects: Vec<String>,
    /// A file of subject ids, one per line (`-`: standard input), erased as one request.
    #[arg(long)]
    subjects_file: Option<PathBuf>,
    /// The request's id (exactly once per id); without one, an id derived from the
    /// subjects' keyed hashes.
    #[arg(long)]
    request_id: Option<String>,
    /// Find and report what would be erased; change nothing.
    #[arg(long, conflicts_with_all = ["submit", "pending"])]
    dry_run: bool,
    /// Leave the request in the lake for the scheduled run (on AWS, hourly) instead.
    #[arg(long, conflicts_with = "pending")]
    submit: bool,
    /// Erase every request waiting in the lake (what the scheduled run does).
    #[arg(long, conflicts_with_all = ["subjects", "subjects_file", "request_id"])]
    pending: bool,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    format: HistoryFormat,
}

pub async fn run(args: EraseArgs) -> Result<()> {
    let lake = Lake::parse(&args.lake.lake)?;
    if args.pending {
        for receipt in requests::process(&lake, requests::waiting(&lake).await?).await? {
            print_receipt(&receipt, args.format)?;
        }
        return Ok(());
    }
    let mut ids = args.subjects;
    if let Some(file) = &args.subjects_file {
        let text = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading subjects from stdin")?
        } else {
            std::fs::read_to_string(file)
                .with_context(|| format!("reading subjects from {}", file.display()))?
        };
        ids.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    if ids.is_empty() {
        bail!("name at least one subject: --subject ID or --subjects-file FILE");
    }
    let subjects = Subjects::new(&lake, ids, args.request_id).await?;
    if args.submit {
        let request = requests::submit(&lake, &subjects).await?;
        outln!(
            "request {} waits in the lake since {} for the scheduled run",
            request.request_id,
            request.requested_at
        );
        return Ok(());
    }
    let options = EraseOptions {
        dry_run: args.dry_run,
        requested_at: None,
    };
    let receipt = erase(&lake, &subjects, &options).await?;
    print_receipt(&receipt, args.format)?;
    if !receipt.dry_run && receipt.residue_rows > 0 {
        bail!(
            "{} rows of the subjects are still stored (in {}); no receipt was recorded: run \
             the erasure again",
            receipt.residue_rows,
            receipt.residue.files.join(", ")
        );
    }
    Ok(())
}

fn print_receipt(receipt: &Receipt, format: HistoryFormat) -> Result<()> {
    match format {
        HistoryFormat::Json => outln!("{}", serde_json::to_string(&receipt)?),
        HistoryFormat::Table => {
            let done = match (receipt.dry_run, receipt.recorded_before) {
                (true, _) => "dry run: nothing changed",
                (_, true) => "already erased (receipt recorded before)",
                _ => "erased",
            };
            outln!("request {}: {done}", receipt.request_id);
            outln!(
                "{:<11} {:>8} {:>6} {:>10} {:>9} {:>12} {:>7} {:>13} {:>12}",
                "table",
                "version",
                "files",
                "files_read",
                "rewritten",
                "rows_removed",
                "purged",
                "filter_bytes",
                "bytes_read"
            );
            for t in &receipt.tables {
                outln!(
                    "{:<11} {:>8} {:>6} {:>10} {:>9} {:>12} {:>7} {:>13} {:>12}",
                    t.table,
                    t.version.map_or("-".to_string(), |v| v.to_string()),
                    t.files,
                    t.files_read,
                    t.files_rewritten,
                    t.rows_removed,
                    t.files_purged,
                    t.filter_bytes,
                    t.bytes_read
                );
            }
            if !receipt.dry_run {
                outln!(
                    "residue check: {} rows of the subjects in {} stored files over {} versions",
                    receipt.residue_rows,
                    receipt.residue.files_checked,
                    receipt.residue.versions_checked
                );
                if receipt.residue.unreferenced_rows > 0 {
                    outln!(
                        "  and {} rows in files no version reads (a writer's that never \
                         committed), deleted once 7 days old: {}",
                        receipt.residue.unreferenced_rows,
                        receipt.residue.unreferenced_files.join(", ")
                    );
                }
                outln!("not controlled by the lake:");
                for (what, expiry) in &receipt.not_controlled {
                    outln!("  {what}: {expiry}");
                }
            }
        }
    }
    Ok(())
}
