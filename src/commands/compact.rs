use anyhow::Result;
use clap::Args;
use lakehouse_compact::{CompactFlags, CompactOptions, CompactReport, Compactor};
use lakehouse_lake::Lake;

use crate::args::{LakeArg, LayoutArg, parse_keys, parse_types};

#[derive(Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub layout: LayoutArg,
    #[command(flatten)]
    pub flags: CompactFlags,
    /// Fan-out: merge only event-type range I of N (e.g. 2/4), one of N runs that may go
    /// at once; range 0 also maintains the tables. An event staged under two types
    /// keeps a row in each range: prefer --keys.
    #[arg(long, value_name = "I/N", value_parser = parse_types, conflicts_with = "keys")]
    pub types: Option<lakehouse_lake::RunRange>,
    /// Fan-out: merge only key range I of N (N a power of two up to 64, e.g. 2/4): every
    /// copy of an event falls in one range, and each reads 1/N of the key index. Range 0
    /// also maintains the tables.
    #[arg(long, value_name = "I/N", value_parser = parse_keys)]
    pub keys: Option<lakehouse_lake::RunRange>,
}

pub async fn run(args: CompactArgs) -> Result<()> {
    let options = CompactOptions {
        range: args.types.or(args.keys),
        ..args.flags.options().map_err(anyhow::Error::msg)?
    };
    let lake = Lake::parse(&args.lake.lake)?.with_raw_layout(args.layout.raw_layout.into());
    let spinner = crate::progress::counter("compacting");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let report = Compactor::new(lake, options).run().await?;
    spinner.finish_and_clear();
    outln!("{}", describe(&report));
    Ok(())
}

/// The one-line summary a compaction ends with.
pub fn describe(report: &CompactReport) -> String {
    let t = report.total();
    let staging = report.commits.last().map_or("unchanged".to_string(), |c| {
        format!("v{}", c.staging_version)
    });
    let consumed = report
        .raw_consumed_before
        .map_or("none".into(), |v| format!("v{v}"));
    let (compacted, vacuumed) = report.maintenance.iter().fold((0, 0), |(c, v), (_, m)| {
        (c + m.files_compacted, v + m.files_vacuumed)
    });
    let keys = report.keys.as_ref().map_or(String::new(), |k| {
        let how = if k.rebuilt { ", rebuilt" } else { "" };
        format!(
            " keys at staging v{} (+{}{how})",
            k.indexed, k.entries_added
        )
    });
    let typed = report.typed.as_ref().map_or(String::new(), |t| {
        let columns: usize = t.columns_added.values().map(Vec::len).sum();
        format!(
            " typed tables {} committed +{} rows {} rescued {columns} columns added",
            t.commits,
            t.rows,
            t.rescued_total()
        )
    });
    // Merges planned again after a concurrent commit (another kind of run, or a sibling
    // key range replacing rows in the same file): each read its raw rows again.
    // A range decodes other ranges' rows too, where raw files are not clustered by key.
    let scanned = match t.raw_rows_scanned {
        n if n == t.source_rows => String::new(),
        n => format!(" of {n} scanned"),
    };
    let by_date = t.searched_while_building.map_or(String::new(), |days| {
        format!(" (the key index is being built: searched by date, {days} d)")
    });
    let replans = match report.replans {
        0 => String::new(),
        n => format!(" planned again {n}"),
    };
    format!(
        "compacted: raw {consumed}..v{} read {}{scanned} inserted {} updated {} discarded {} \
         files scanned {} rewritten {} ({:.1} MB) added {} index pages read {}/{}{by_date} staging {staging}{replans} optimize {compacted} files vacuum {vacuumed} files{keys}{typed}",
        report.raw_version,
        t.source_rows,
        t.inserted,
        t.updated,
        t.discarded,
        t.files_scanned,
        t.files_rewritten,
        t.bytes_rewritten as f64 / 1e6,
        t.files_added,
        t.index_pages_read,
        t.index_pages,
    )
}
