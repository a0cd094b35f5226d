//! Shared test plumbing: temporary lakes, ingest from lines, SQL to JSON rows, the CLI binary.

use lakehouse_compact::{CompactOptions, CompactReport, Compactor};
use lakehouse_ingest::{IngestOptions, IngestSummary, Ingestor, SourceRecord};
use lakehouse_lake::Lake;
use lakehouse_query::{OutputFormat, TableSelection, open_session, run_query, write_batches};
use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub struct TestLake {
    pub dir: tempfile::TempDir,
    pub lake: Lake,
}

impl TestLake {
    pub fn new() -> TestLake {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = Lake::parse(dir.path().to_str().expect("utf-8 temp path")).expect("lake");
        TestLake { dir, lake }
    }

    pub fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    /// Ingests `lines` as one input (one commit), each line one record.
    pub async fn ingest<L: AsRef<[u8]>>(&self, lines: &[L]) -> IngestSummary {
        self.ingest_with(lines, IngestOptions::default()).await
    }

    pub async fn ingest_with<L: AsRef<[u8]>>(
        &self,
        lines: &[L],
        options: IngestOptions,
    ) -> IngestSummary {
        let mut ingestor = Ingestor::open(&self.lake, options)
            .await
            .expect("open ingestor");
        for (i, line) in lines.iter().enumerate() {
            let position = (i + 1).to_string();
            let record = SourceRecord {
                data: line.as_ref(),
                source: "test",
                position: &position,
            };
            ingestor.push(&record).await.expect("push");
        }
        ingestor.commit().await.expect("commit")
    }

    pub async fn compact(&self) -> CompactReport {
        self.compact_with(CompactOptions::default()).await
    }

    pub async fn compact_with(&self, options: CompactOptions) -> CompactReport {
        Compactor::new(self.lake.clone(), options)
            .run()
            .await
            .expect("compact")
    }

    /// Rows of a query as JSON objects, with the CLI's JSON formatting.
    pub async fn query(&self, sql: &str) -> Vec<Value> {
        self.query_at(sql, &TableSelection::default()).await
    }

    pub async fn query_at(&self, sql: &str, selection: &TableSelection) -> Vec<Value> {
        let (ctx, _) = open_session(&self.lake, selection).await.expect("session");
        let batches = run_query(&ctx, sql).await.expect("query");
        let mut out = Vec::new();
        write_batches(&batches, OutputFormat::Json, &mut out).expect("format");
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let rows = self
            .query(&format!("SELECT count(*) AS n FROM {table}"))
            .await;
        rows[0]["n"].as_i64().expect("count")
    }

    /// `staging` as `uuid → (created_at, payload)`.
    pub async fn staging_state(&self) -> std::collections::BTreeMap<String, (i64, String)> {
        self.query("SELECT event_uuid, created_at, payload FROM staging")
            .await
            .into_iter()
            .map(|r| {
                let uuid = r["event_uuid"].as_str().expect("uuid").to_string();
                let created = r["created_at"].as_i64().expect("created_at");
                let payload = r["payload"].as_str().expect("payload").to_string();
                (uuid, (created, payload))
            })
            .collect()
    }
}

/// A valid event line.
pub fn event(uuid: &str, name: &str, created_at: i64, extra: &str) -> String {
    format!(r#"{{"event_uuid":"{uuid}","event_name":"{name}","created_at":{created_at}{extra}}}"#)
}

/// Runs the `lakehouse` binary with its standard output closed before it writes anything,
/// as `| head` leaves it.
pub fn lakehouse_read_by_head(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(args)
        .env_remove("LAKEHOUSE_LAKE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait")
}

/// Runs the `lakehouse` binary as a user would, `stdin` on its standard input.
pub fn lakehouse(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(args)
        .env_remove("LAKEHOUSE_LAKE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lakehouse");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Starts `lakehouse args` once per delay and SIGKILLs it that many milliseconds later
/// (or finds it finished): the interrupted runs a crash-safety test then reruns.
pub fn kill_after(args: &[&str], delays_ms: &[u64]) {
    for delay in delays_ms {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
            .args(args)
            .env_remove("LAKEHOUSE_LAKE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run lakehouse");
        std::thread::sleep(std::time::Duration::from_millis(*delay));
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `tests/bench/<script>` small, as `make` runs it big: on the binary under test, its
/// output in a folder of its own, `envs` setting its sizes. Returns its stdout; fails with
/// its output when it fails.
pub fn run_bench_script(script: &str, envs: &[(&str, &str)]) -> String {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let path = format!("{}/tests/bench/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(path)
        .env("LAKEHOUSE_BIN", env!("CARGO_BIN_EXE_lakehouse"))
        .env("BENCH_OUT", out_dir.path().join("run"))
        .envs(envs.iter().copied())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs a command that must succeed and returns its stdout.
pub fn lakehouse_ok(args: &[&str], stdin: &[u8]) -> String {
    let out = lakehouse(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
