//! The whole AWS runtime on one machine: moto (S3, DynamoDB, Kinesis, Glue), the lake bucket
//! and DynamoDB tables as Terraform creates them, the Lambda emulator with both functions, and
//! the `lakehouse` CLI reading the lake back from S3.

use std::process::Command;

use serde_json::Value;

use super::lambda::{COMMIT, COMPACT, Emulator, INGEST};
use super::moto::{Moto, env_for};
use super::proxy::FaultProxy;

pub const BUCKET: &str = "lake";
pub const LAKE: &str = "s3://lake/events";
pub const CHECKPOINTS: &str = "lakehouse-checkpoints";
pub const LEASES: &str = "lakehouse-leases";
pub const MANIFESTS: &str = "lakehouse-manifests";
pub const GLUE_DATABASE: &str = "events";

pub struct Stack {
    pub moto: Moto,
    pub emulator: Emulator,
    /// Between the functions and moto, when faults are wanted.
    pub proxy: Option<FaultProxy>,
    /// The functions' environment, to start one again.
    pub env: Vec<(&'static str, String)>,
}

pub struct StackOptions {
    pub ingest_instances: usize,
    pub compact_instances: usize,
    pub fault_proxy: bool,
    /// Grouped mode: the ingest Lambda hands manifests over; the committer Lambda commits.
    pub grouped: bool,
    /// `LAKEHOUSE_RAW_LAYOUT` for every function (`None`: the default layout).
    pub raw_layout: Option<&'static str>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            ingest_instances: 1,
            compact_instances: 1,
            fault_proxy: false,
            grouped: false,
            raw_layout: None,
        }
    }
}

impl Stack {
    /// Panics, naming the install, when moto or cargo-lambda is missing: the tests that
    /// start a stack are `#[ignore]`d with that reason, and `make test` runs them.
    pub async fn start(options: StackOptions) -> Stack {
        let moto = Moto::start().await;
        let mut emulator = Emulator::start();
        moto.create_bucket(BUCKET).await;
        moto.create_key_table(CHECKPOINTS).await;
        moto.create_key_table(LEASES).await;
        let proxy = if options.fault_proxy {
            Some(FaultProxy::start(&moto.endpoint).await)
        } else {
            None
        };
        let endpoint = proxy
            .as_ref()
            .map_or(moto.endpoint.clone(), |p| p.endpoint.clone());
        let mut env = env_for(&endpoint);
        env.push(("LAKEHOUSE_LAKE", LAKE.into()));
        env.push(("LAKEHOUSE_CHECKPOINT_TABLE", CHECKPOINTS.into()));
        env.push(("LAKEHOUSE_LEASE_TABLE", LEASES.into()));
        env.push(("LAKEHOUSE_GLUE_DATABASE", GLUE_DATABASE.into()));
        if let Some(layout) = options.raw_layout {
            env.push(("LAKEHOUSE_RAW_LAYOUT", layout.into()));
        }
        if options.grouped {
            moto.create_manifest_table(MANIFESTS).await;
            env.push(("LAKEHOUSE_COMMIT_MODE", "grouped".into()));
            env.push(("LAKEHOUSE_MANIFEST_TABLE", MANIFESTS.into()));
            emulator.start_function(COMMIT, 1, &env);
        }
        emulator.start_function(INGEST, options.ingest_instances, &env);
        emulator.start_function(COMPACT, options.compact_instances, &env);
        Stack {
            moto,
            emulator,
            proxy,
            env,
        }
    }

    /// Invokes the ingest Lambda; returns the sequence numbers it reported failed.
    pub fn ingest(&self, document: &Value) -> Vec<String> {
        let response = self
            .emulator
            .invoke(INGEST, document)
            .unwrap_or_else(|e| panic!("ingest Lambda failed: {e}"));
        response["batchItemFailures"]
            .as_array()
            .unwrap_or_else(|| panic!("not a Kinesis batch response: {response}"))
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn compact(&self) -> Value {
        self.emulator
            .invoke(
                COMPACT,
                &serde_json::json!({ "source": "aws.events", "detail-type": "Scheduled Event" }),
            )
            .unwrap_or_else(|e| panic!("compaction Lambda failed: {e}"))
    }

    /// `lakehouse ARGS…` against moto's S3, as a user would run it; its stdout. Panics
    /// with its stderr when it fails.
    pub fn lakehouse(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
            .args(args)
            .envs(self.moto.env())
            .env_remove("LAKEHOUSE_LAKE")
            .output()
            .expect("run lakehouse");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `lakehouse query --lake s3://… --format json`, run as a user would against S3.
    pub fn query(&self, sql: &str) -> Vec<Value> {
        self.lakehouse(&["query", "--lake", LAKE, "--format", "json", sql])
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON row"))
            .collect()
    }

    pub fn count(&self, table: &str) -> i64 {
        self.query(&format!("SELECT count(*) AS n FROM {table}"))[0]["n"]
            .as_i64()
            .expect("count")
    }
}
