//! The Lambda binaries under cargo-lambda's runtime emulator: `cargo lambda watch
//! --only-lambda-apis` serves the Runtime API, our built binaries poll it as they would in
//! AWS, and `cargo lambda invoke` sends the events.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::moto::{free_port, wait_for_port};

pub const INGEST: &str = "lakehouse-ingest-lambda";
pub const COMPACT: &str = "lakehouse-compact-lambda";
pub const COMMIT: &str = "lakehouse-commit-lambda";

/// The Lambda control-plane emulator.
pub struct Emulator {
    child: Child,
    pub port: u16,
    functions: Vec<(String, Child)>,
    logs: tempfile::TempDir,
}

/// Where cargo put the workspace's binaries: beside this test binary's `deps/` folder, or
/// in `LAKEHOUSE_LAMBDA_BIN_DIR` (`make bench_lambda` times release binaries from a debug
/// harness: a release build of the tests would compile DataFusion a second time).
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("LAKEHOUSE_LAMBDA_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .expect("test binary path")
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target profile folder")
            .to_path_buf(),
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --all-targets` first (make test \
         does; `cargo test` alone does not rebuild other packages' binaries)",
        path.display()
    );
    // A binary older than its sources would test yesterday's code. Cargo's dep-info file
    // beside it names exactly the sources it was built from.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources: Vec<PathBuf> = sources_of(&path)
        .into_iter()
        .filter(|p| p.starts_with(root))
        .collect();
    assert!(
        !sources.is_empty(),
        "{} was built from another checkout sharing the target folder: run `cargo build \
         --workspace --all-targets` here",
        path.display()
    );
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let newest = sources
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max();
    assert!(
        built >= newest,
        "{} is older than its sources: run `cargo build --workspace --all-targets`",
        path.display()
    );
    path
}

/// The source files cargo recorded for a binary in its dep-info file (`<binary>.d`): one
/// line `<binary>: <path> <path> …`, a space inside a path written `\ `.
fn sources_of(binary: &std::path::Path) -> Vec<PathBuf> {
    let dep_info = binary.with_extension("d");
    let text = std::fs::read_to_string(&dep_info)
        .unwrap_or_else(|e| panic!("{}: {e}", dep_info.display()));
    let deps = text
        .lines()
        .next()
        .and_then(|line| line.split_once(": "))
        .map_or("", |(_, deps)| deps);
    deps.replace("\\ ", "\0")
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(p.replace('\0', " ")))
        .collect()
}

fn cargo_lambda_installed() -> bool {
    Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Emulator {
    /// Starts the emulator; panics, naming the install, without cargo-lambda.
    pub fn start() -> Emulator {
        assert!(
            cargo_lambda_installed(),
            "cargo-lambda is not installed: pip install cargo-lambda (make test does)"
        );
        let port = free_port();
        let mut child = Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            // It reads the workspace to learn which functions exist.
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo lambda watch");
        wait_for_port(port, "cargo lambda watch", &mut child);
        Emulator {
            child,
            port,
            functions: Vec::new(),
            logs: tempfile::tempdir().expect("log folder"),
        }
    }

    /// Starts `instances` execution environments of a function: processes of its binary
    /// polling the Runtime API, each serving one invocation at a time as in AWS.
    pub fn start_function(&mut self, name: &str, instances: usize, env: &[(&str, String)]) {
        let path = binary(name);
        for _ in 0..instances {
            let log = self
                .logs
                .path()
                .join(format!("{name}-{}.log", self.functions.len()));
            let log = std::fs::File::create(log).expect("function log file");
            let child = Command::new(&path)
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{}/.rt/{name}", self.port),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("start function binary");
            self.functions.push((name.to_string(), child));
        }
    }

    /// The peak resident memory (`VmHWM`) of each live execution environment of a function,
    /// in bytes.
    pub fn peak_memory(&self, name: &str) -> Vec<u64> {
        self.functions
            .iter()
            .filter(|(function, _)| function == name)
            .filter_map(|(_, child)| {
                let status =
                    std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kb * 1024)
            })
            .collect()
    }

    /// Kills every execution environment of a function at once, as a crash or a timeout
    /// would (an invocation in flight gets no response).
    pub fn kill_function(&mut self, name: &str) {
        for (function, child) in &mut self.functions {
            if function == name {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.functions.retain(|(function, _)| function != name);
    }

    /// Everything the functions printed (JSON logs and metric lines), one line each.
    pub fn function_output(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(self.logs.path())
            .expect("log folder")
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }

    /// `cargo lambda invoke`: the function's response, or its error as `Err`.
    pub fn invoke(&self, name: &str, payload: &Value) -> Result<Value, String> {
        invoke(
            self.port,
            name,
            payload,
            std::time::Duration::from_secs(300),
        )
    }
}

/// Invokes function `name` through the emulator on `port`; gives up after `patience` (a
/// function killed mid-invocation never answers).
pub fn invoke(
    port: u16,
    name: &str,
    payload: &Value,
    patience: std::time::Duration,
) -> Result<Value, String> {
    let mut file = tempfile::NamedTempFile::new().expect("payload file");
    serde_json::to_writer(&mut file, payload).expect("write payload");
    let output = tempfile::NamedTempFile::new().expect("output file");
    let errors = tempfile::NamedTempFile::new().expect("error file");
    let mut child = Command::new("cargo")
        .args(["lambda", "invoke", name, "--invoke-address", "127.0.0.1"])
        .args([
            "--invoke-port",
            &port.to_string(),
            "--output-format",
            "json",
        ])
        .arg("--data-file")
        .arg(file.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(output.reopen().expect("output"))
        .stderr(errors.reopen().expect("errors"))
        .spawn()
        .expect("run cargo lambda invoke");
    let deadline = std::time::Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo lambda invoke") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{name}: no response within {patience:?}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stdout = std::fs::read(output.path()).unwrap_or_default();
    if !status.success() {
        return Err(std::fs::read_to_string(errors.path()).unwrap_or_default());
    }
    serde_json::from_slice(&stdout).map_err(|e| {
        format!(
            "response is not JSON ({e}): {}",
            String::from_utf8_lossy(&stdout)
        )
    })
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for child in self
            .functions
            .iter_mut()
            .map(|(_, child)| child)
            .chain(std::iter::once(&mut self.child))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
