//! The query stage: the lake's tables in DataFusion, at their latest version or as of a
//! version or instant (Delta time travel), their history, the lake's health from its logs
//! (`status`), quarantine for its operators, result formatting, and the search for events
//! staged more than once (the sweep's candidates).
//!
//! The SQL files themselves (Athena DDL, views, analyst queries) live in `sql/`.

pub mod duplicates;
pub mod error;
pub mod history;
pub mod output;
pub mod quarantine;
pub mod session;
pub mod status;

pub use error::QueryError;
pub use history::{HistoryEntry, table_history};
pub use output::{OutputFormat, write_batches};
pub use session::{Snapshot, TableSelection, open_session, run_query};
