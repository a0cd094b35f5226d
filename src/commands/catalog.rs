use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use lakehouse_catalog::{
    Catalog, ScanOptions, plan_views_over, scan_staging, typed_schemas, write_view_files,
};
use lakehouse_lake::Lake;

use crate::args::LakeArg;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Create or update the Glue database and the Delta tables raw, staging, quarantine.
    /// Idempotent: only what differs from the lake is written.
    Sync {
        #[command(flatten)]
        lake: LakeArg,
        /// Glue database (lower-case letters, digits, underscores); created if missing.
        #[arg(long, env = "LAKEHOUSE_GLUE_DATABASE")]
        database: String,
    },
    /// Infer each event type's payload fields from staging and write one typed Athena
    /// view per event type.
    Views {
        #[command(flatten)]
        lake: LakeArg,
        /// Folder of the generated `<event_type>.sql` files.
        #[arg(long, default_value = "sql/views/generated")]
        out: PathBuf,
        /// Read events of the last N days (by event_date); 0 reads all of staging.
        #[arg(long, default_value_t = ScanOptions::default().days.unwrap_or(0))]
        days: u32,
        /// Events parsed per event type at most.
        #[arg(long, default_value_t = ScanOptions::default().sample_per_type)]
        sample: u64,
        /// Also create or replace the views in this Glue database.
        #[arg(long, env = "LAKEHOUSE_GLUE_DATABASE")]
        database: Option<String>,
        /// Write the views to Glue (needs --database).
        #[arg(long, requires = "database")]
        apply: bool,
    },
}

pub async fn run(command: CatalogCommand) -> Result<()> {
    match command {
        CatalogCommand::Sync { lake, database } => {
            let catalog = Catalog::from_env(&database).await?;
            let report = catalog.sync_tables(&Lake::parse(&lake.lake)?).await?;
            out!("{report}");
        }
        CatalogCommand::Views {
            lake,
            out,
            days,
            sample,
            database,
            apply,
        } => {
            let options = ScanOptions {
                days: (days > 0).then_some(days),
                sample_per_type: sample.max(1),
                ..ScanOptions::default()
            };
            // Checked before the scan, which can take minutes.
            let catalog = match (apply, database) {
                (true, Some(db)) => Some(Catalog::from_env(&db).await?),
                _ => None,
            };
            let lake = Lake::parse(&lake.lake)?;
            let inference = scan_staging(&lake, &options).await?;
            if inference.unreadable > 0 {
                eprintln!(
                    "warning: {} payloads were not JSON objects and were skipped",
                    inference.unreadable
                );
            }
            let typed = typed_schemas(&lake).await?;
            let views = plan_views_over(&inference.into_shapes(), &typed);
            let files = write_view_files(&out, &views)?;
            for view in &views {
                let fields: Vec<String> = view
                    .fields
                    .iter()
                    .map(|f| format!("{} {}", f.column, f.field_type.name()))
                    .collect();
                outln!(
                    "{}: {} events, {} fields ({})",
                    view.name,
                    view.events_sampled,
                    view.fields.len(),
                    fields.join(", ")
                );
                for note in &view.notes {
                    eprintln!("warning: {}: {note}", view.name);
                }
            }
            outln!("wrote {} views to {}", files.len(), out.display());
            if let Some(catalog) = catalog {
                out!("{}", catalog.apply_views(&views).await?);
            }
        }
    }
    Ok(())
}
