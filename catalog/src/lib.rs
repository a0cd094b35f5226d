//! The catalog stage: the lake's Delta tables and inferred per-event-type views in AWS
//! Glue, so analysts query them with Athena.
//!
//! - [`Catalog`]: creates the database and creates or updates Glue entries only where
//!   they differ from the lake ([`definition`] holds what an entry should be).
//! - [`scan`] + [`infer`] + [`views`]: one typed view per event type, from the payloads
//!   in `staging`.

pub mod definition;
mod error;
mod glue;
pub mod glue_type;
/// The field-type rule, shared with the typed tables.
pub use lakehouse_lake::typed::infer;
pub mod scan;
pub mod views;

pub use error::{CatalogError, Result};
pub use glue::{Catalog, Change, SyncReport};
pub use scan::{ScanOptions, scan_staging};
pub use views::{
    GENERATED_MARKER, ViewDefinition, plan_views, plan_views_over, typed_schemas, write_view_files,
};
