//! Records into Parquet files and commits: the [`writer::Ingestor`] (one commit per table),
//! rows held per partition against a memory budget ([`batch`], [`sink`]), and its
//! [`options`].

pub mod batch;
pub mod options;
pub mod sink;
pub mod writer;
