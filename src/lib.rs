//! The `lakehouse` command's library side: the synthetic event generator shared by the
//! CLI, the demo, the tests and the benchmark. The stages live in their own crates.

pub mod generate;
