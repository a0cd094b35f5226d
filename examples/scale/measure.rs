//! `--measure-batch`: the CPU one batch costs through the real decode -> Parquet path.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use deltalake::logstore::object_store::memory::InMemory;
use lakehouse_ingest::manifest::Manifest;
use lakehouse_ingest::{IngestOptions, Ingestor, SourceRecord};
use lakehouse_lake::{Lake, Table};

use crate::cpu::process_cpu_seconds;
use crate::latency::LatencyStore;
use crate::{Args, app_id, latency_model, raw_layout, sequence};

/// One batch through the real path on one core: JSON parse, event rules, Arrow, Parquet,
/// and the files' PUTs (with the latency model).
pub(crate) fn measure_batch(args: &Args, batches: u32) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = LatencyStore::new(InMemory::new(), latency_model(args), args.seed);
    let lake = Lake::in_store(url::Url::parse("memory:///lake/")?, Arc::new(store))
        .with_raw_layout(raw_layout(args)?);
    let padding = "x".repeat(1_050);
    let lines: Vec<String> = (0..args.events_per_batch)
        .map(|i| {
            format!(
                r#"{{"event_uuid":"00000000-0000-4000-8000-{i:012}","event_name":"type{}:sub:done","created_at":{},"user_id":{i},"payload":"{padding}"}}"#,
                i % 100,
                1_764_000_000 + i as i64,
            )
        })
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    runtime.block_on(async {
        let raw = lake.open(Table::Raw).await?;
        let quarantine = lake.open(Table::Quarantine).await?;
        let (started, cpu) = (Instant::now(), process_cpu_seconds()?);
        let (mut files, mut manifest_bytes) = (0, 0);
        for _ in 0..batches {
            let mut ingestor =
                Ingestor::with_tables(raw.clone(), quarantine.clone(), IngestOptions::default())?;
            for (i, line) in lines.iter().enumerate() {
                let position = i.to_string();
                let record = SourceRecord {
                    data: line.as_bytes(),
                    source: "bench",
                    position: &position,
                };
                ingestor.push(&record).await?;
            }
            let prepared = ingestor.prepare().await?;
            files += prepared.raw.files();
            let manifest = Manifest {
                app_id: app_id(0),
                version: 1,
                adds: prepared.raw.adds().to_vec(),
                records: args.events_per_batch,
                first_sequence_number: Some(sequence(1)),
                last_sequence_number: Some(sequence(args.events_per_batch)),
                reasons: Default::default(),
            };
            manifest_bytes = serde_json::to_vec(&manifest)?.len();
        }
        let cpu = (process_cpu_seconds()? - cpu) / f64::from(batches);
        let wall = started.elapsed().as_secs_f64() / f64::from(batches);
        println!(
            "{}",
            serde_json::json!({
                "events_per_batch": args.events_per_batch,
                "batch_bytes": bytes,
                "files_per_batch": files / batches as usize,
                "raw_layout": args.raw_layout,
                "manifest_bytes": manifest_bytes,
                "cpu_s_per_batch": (cpu * 1000.0).round() / 1000.0,
                "wall_s_per_batch": (wall * 1000.0).round() / 1000.0,
                "build": if cfg!(debug_assertions) { "debug" } else { "release" },
                "latency_model": latency_model(args).to_string(),
            })
        );
        Ok(())
    })
}
