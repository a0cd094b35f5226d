//! The whole path on a local folder, offline: generate, ingest in batches, compact twice,
//! sweep, then show table counts, an analyst query and a time-travel query, and erase one
//! customer with its receipt.

use std::path::Path;
use std::path::PathBuf;

use anyhow::{Result, ensure};
use clap::Args;
use deltalake::arrow::array::AsArray;
use lakehouse::generate::{GenerateOptions, Generator};
use lakehouse_compact::{CompactOptions, Compactor};
use lakehouse_erase::{EraseOptions, Subjects, erase};
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::subject::{SubjectPaths, set_subject_paths};
use lakehouse_lake::{Lake, RawLayout, Table};
use lakehouse_query::{OutputFormat, TableSelection, open_session, run_query, write_batches};

use crate::args::LayoutArg;

#[derive(Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "demo-lake")]
    pub lake: PathBuf,
    #[arg(long, default_value_t = GenerateOptions::default().events)]
    pub events: u64,
    #[command(flatten)]
    pub layout: LayoutArg,
}

const BATCHES: u64 = 4;

/// Who a demo event belongs to.
const DEMO_SUBJECT_PATHS: &str = r#"{"*": "$.customer_id"}"#;

pub async fn run(args: DemoArgs) -> Result<()> {
    let (dir, events) = (args.lake.as_path(), args.events);
    let layout: RawLayout = args.layout.raw_layout.into();
    ensure!(
        !dir.exists() || std::fs::read_dir(dir)?.next().is_none(),
        "{} is not empty: remove it or pass --lake with a new folder",
        dir.display()
    );
    let lake = Lake::parse(&dir.to_string_lossy())?.with_raw_layout(layout);
    outln!("lake: {}", lake.root());
    // The generator names a customer in every event: the subject erasure looks for.
    set_subject_paths(&lake, &SubjectPaths::parse(DEMO_SUBJECT_PATHS)?).await?;
    let mut generator = Generator::new(GenerateOptions {
        events,
        ..Default::default()
    });
    let per_batch = events.div_ceil(BATCHES);
    let mut line = Vec::new();
    let mut first_compaction_version = None;
    for batch in 1..=BATCHES {
        let mut ingestor = Ingestor::open(&lake, IngestOptions::default()).await?;
        let source = format!("demo-batch-{batch}");
        let mut n = 0;
        while n < per_batch && generator.next_line(&mut line) {
            n += 1;
            let position = n.to_string();
            ingestor
                .push(&SourceRecord {
                    data: &line,
                    source: &source,
                    position: &position,
                })
                .await?;
        }
        outln!(
            "batch {batch}: {}",
            super::ingest::describe(&ingestor.commit().await?)
        );
        if batch == BATCHES / 2 || batch == BATCHES {
            let report = Compactor::new(lake.clone(), CompactOptions::default())
                .run()
                .await?;
            outln!("{}", super::compact::describe(&report));
            if first_compaction_version.is_none() {
                first_compaction_version = report.commits.last().map(|c| c.staging_version);
            }
        }
    }
    // The all-time check: any uuid staged twice would be resolved here; the rounds
    // searched the whole key index, so none is.
    let swept = lakehouse_compact::sweep::sweep(
        &lake,
        &lakehouse_compact::sweep::Scope::All {
            rows_per_pass: lakehouse_compact::sweep::ROWS_PER_PASS,
        },
        CompactOptions::default().max_rows_per_commit,
    )
    .await?;
    outln!(
        "sweep: {} staged rows read, {} events staged more than once, {} rows removed",
        swept.rows_read,
        swept.duplicated_events,
        swept.rows_removed
    );
    let stats = generator.stats();
    outln!(
        "\ngenerated {} lines: {} valid ({} distinct events, {} redeliveries, {} revisions), {} invalid",
        stats.lines,
        stats.valid,
        stats.distinct_events(),
        stats.redeliveries,
        stats.revisions,
        stats.invalid
    );

    let latest = TableSelection::default();
    show(
        &lake,
        &latest,
        "Table counts",
        "SELECT 'raw' AS table_name, count(*) AS row_count FROM raw \
         UNION ALL SELECT 'staging', count(*) FROM staging \
         UNION ALL SELECT 'quarantine', count(*) FROM quarantine ORDER BY table_name",
    )
    .await?;
    show(&lake, &latest, "Analyst query: events per day for the five busiest event types",
        "WITH top AS (SELECT event_type FROM staging GROUP BY event_type ORDER BY count(*) DESC, event_type LIMIT 5) \
         SELECT event_date, event_type, count(*) AS events, count(DISTINCT event_name) AS event_names \
         FROM staging WHERE event_type IN (SELECT event_type FROM top) \
         GROUP BY event_date, event_type ORDER BY event_date, event_type").await?;
    show(
        &lake,
        &latest,
        "Quarantine reasons",
        "SELECT regexp_replace(error, ' at line .*', '') AS reason, count(*) AS records \
         FROM quarantine GROUP BY 1 ORDER BY records DESC, reason",
    )
    .await?;
    if let Some(version) = first_compaction_version {
        let mut then = TableSelection::default();
        then.versions.insert(Table::Staging, version);
        show(
            &lake,
            &then,
            &format!("Time travel: staging at version {version} (after the first compaction)"),
            "SELECT count(*) AS events, max(created_datetime) AS latest_created FROM staging",
        )
        .await?;
        show(
            &lake,
            &latest,
            "…and staging now",
            "SELECT count(*) AS events, max(created_datetime) AS latest_created FROM staging",
        )
        .await?;
    }
    erase_one_customer(&lake).await?;
    let lake = dir.display();
    let me = invocation();
    outln!(
        "\nTry: {me} query --lake {lake} \"SELECT * FROM staging LIMIT 5\"\n\
         \x20    {me} query --lake {lake} --file sql/queries/funnel.sql\n\
         \x20    {me} catalog views --lake {lake} --days 0 --out {lake}/views"
    );
    Ok(())
}

/// Erases the customer with the most staged events, as `lakehouse erase` does, and shows
/// what is left of them.
async fn erase_one_customer(lake: &Lake) -> Result<()> {
    let (ctx, _) = open_session(lake, &TableSelection::default()).await?;
    let top = "SELECT subject_id FROM staging WHERE subject_id <> '' \
               GROUP BY subject_id ORDER BY count(*) DESC, subject_id LIMIT 1";
    let batches = run_query(&ctx, top).await?;
    let Some(customer) = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_string_opt::<i32>()
                .map(|c| c.value(0).to_string())
        })
        .or_else(|| {
            let b = batches.iter().find(|b| b.num_rows() > 0)?;
            b.column(0)
                .as_string_view_opt()
                .map(|c| c.value(0).to_string())
        })
    else {
        return Ok(());
    };
    let subjects = Subjects::new(lake, vec![customer.clone()], Some("demo-1".into())).await?;
    let receipt = erase(lake, &subjects, &EraseOptions::default()).await?;
    outln!(
        "\nErasure of customer {customer} (request {}): {} rows removed from raw, staging and \
         quarantine, {} files purged, {} rows left in {} stored files checked; receipt in table erasures",
        receipt.request_id,
        receipt.rows_removed,
        receipt.files_purged,
        receipt.residue_rows,
        receipt.residue.files_checked
    );
    show(
        lake,
        &TableSelection::default(),
        "…what is left of that customer",
        &format!(
            "SELECT (SELECT count(*) FROM raw WHERE subject_id = '{customer}') AS raw_rows, \
             (SELECT count(*) FROM staging WHERE subject_id = '{customer}') AS staging_rows"
        ),
    )
    .await
}

/// This binary as the user can run it from here: `lakehouse` is on no PATH after a
/// `cargo build`, so the suggestions name the file itself (relative when under the
/// current folder).
fn invocation() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "lakehouse".to_string();
    };
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(Path::to_path_buf));
    match relative {
        Some(path) => format!("./{}", path.display()),
        None => exe.display().to_string(),
    }
}

async fn show(lake: &Lake, selection: &TableSelection, title: &str, sql: &str) -> Result<()> {
    let (ctx, _) = open_session(lake, selection).await?;
    let batches = run_query(&ctx, sql).await?;
    outln!("\n{title}");
    let mut out = crate::output::stdout();
    write_batches(&batches, OutputFormat::Table, &mut out)?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}
