//! Typed tables: one Delta table per event type, kept equal to `staging` by compaction,
//! with one typed column per top-level payload field, so an analyst reading one field
//! reads that column and not every payload (`docs/catalog.md`).
//!
//! - [`infer`]: a field's type from its values, the one rule shared with the catalog's
//!   views.
//! - [`names`]: SQL-safe column and table names.
//! - [`schema`]: a typed table's columns and where each field's mapping is kept.
//! - [`convert`]: staging rows into typed rows, rescuing what does not fit.
//! - [`table`]: where typed tables live, opening and creating them.
//! - [`mirror`]: bringing them to staging's version, exactly once.

pub mod convert;
pub mod infer;
pub mod mirror;
pub mod names;
pub mod schema;
pub mod table;

pub use mirror::{MirrorOptions, MirrorReport, mirror};
pub use table::TypedTable;
