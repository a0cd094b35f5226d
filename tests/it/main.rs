//! One integration-test binary (each binary links the world): modules per concern.

mod archives;
mod aws;
mod catalog;
mod cli;
mod compact;
mod crash;
mod erase;
mod fanout;
mod grouped;
mod helpers;
mod hot_window;
mod ingest;
mod key_build;
mod keys;
// The benchmarks' object store wrapper, here to count requests (no latency).
#[path = "../../examples/scale/latency.rs"]
#[allow(dead_code)]
mod latency;
mod layout;
mod loads;
mod model;
mod overlap;
mod python_reader;
mod query;
mod redrive;
mod rewrites;
mod status;
mod sweep;
mod sweep_index;
mod typed;
