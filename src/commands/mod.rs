pub mod catalog;
pub mod compact;
pub mod demo;
pub mod erase;
pub mod generate;
pub mod history;
pub mod ingest;
pub mod keys;
pub mod quarantine;
pub mod query;
pub mod status;
pub mod subjects;

use anyhow::Result;

use crate::cli::Command;

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Ingest(args) => ingest::run(args).await,
        Command::Compact(args) => compact::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::History(args) => history::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Quarantine { command } => quarantine::run(command).await,
        Command::Erase(args) => erase::run(args).await,
        Command::Subjects(args) => subjects::run(args).await,
        Command::Keys { command } => keys::run(command).await,
        Command::Catalog { command } => catalog::run(command).await,
        Command::Generate(args) => generate::run(args),
        Command::Demo(args) => demo::run(args).await,
    }
}
