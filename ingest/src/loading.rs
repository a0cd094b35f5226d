//! Inputs loaded once each: stdin, files and S3 objects by glob ([`inputs`]), an input's
//! identity for idempotent loads ([`load`]), and the backfill that loads many, committed
//! in groups ([`backfill`], `lakehouse ingest`).

pub mod backfill;
pub mod inputs;
pub mod load;
