//! `lakehouse subjects`: shows or sets the lake's subject paths (who an event belongs to,
//! for erasure: docs/erasure.md).

use anyhow::Result;
use clap::Args;
use lakehouse_lake::Lake;
use lakehouse_lake::subject::{SubjectPaths, set_subject_paths};

use crate::args::LakeArg;

#[derive(Args)]
pub struct SubjectsArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// New paths, as JSON: event type to path, `*` for every other type, e.g.
    /// '{"*": "$.user_id", "payment": "$.customer.id"}'. Applies to rows ingested from now on.
    #[arg(long)]
    set: Option<String>,
}

pub async fn run(args: SubjectsArgs) -> Result<()> {
    let lake = Lake::parse(&args.lake.lake)?;
    if let Some(json) = &args.set {
        set_subject_paths(&lake, &SubjectPaths::parse(json)?).await?;
    }
    let paths = match lake.open_existing(lakehouse_lake::Table::Raw).await? {
        Some(raw) => SubjectPaths::of_table(&raw)?,
        None => SubjectPaths::default(),
    };
    outln!("{}", paths.to_json());
    Ok(())
}
