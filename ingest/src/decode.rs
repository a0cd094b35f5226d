//! Records out of their formats: JSON Lines ([`source`]), read and judged a chunk ahead on
//! a thread of their own ([`ahead`]); Lambda Kinesis event documents ([`kinesis`], the one
//! decoder for the CLI and the ingest Lambda, with [`kpl`] de-aggregation); gzip and zstd
//! by their magic bytes ([`archive`]).

pub mod ahead;
pub mod archive;
pub mod kinesis;
pub mod kpl;
pub mod source;
