//! The AWS runtime on emulated AWS: moto and cargo-lambda's emulator, started per test.

mod backfill;
mod concurrency;
mod decoder;
mod erase_lambda;
mod glue;
mod grouped_lambda;
mod ingest_lambda;
mod keys_build_lambda;
mod kinesis;
mod lambda;
mod lambda_bench;
mod moto;
mod proxy;
mod stack;
mod sweep_lambda;
mod workload;
