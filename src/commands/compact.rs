use anyhow::Result;
use lakehouse_compact::{CompactOptions, CompactReport, Compactor};
use lakehouse_lake::Lake;

pub async fn run(lake: Lake, options: CompactOptions) -> Result<()> {
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
         files scanned {} rewritten {} ({:.1} MB) added {} index pages read {}/{}{by_date} staging {staging}{replans} optimize {compacted} files vacuum {vacuumed} files{keys}",
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
