//! What the Lambdas share: their bootstrap ([`serve`]), configuration from the
//! environment, JSON logs and CloudWatch embedded-metric-format (EMF) lines. The AWS SDK
//! helpers they share are in `lakehouse-aws`, which the catalog uses too.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};

use serde_json::{Map, Value, json};

/// Every Lambda's `main`: JSON logs, its configuration read once (a bad one stops the
/// function at start-up with one log line saying what is wrong, and no event is taken),
/// then each event handed to `handle` with that configuration, one at a time as Lambda
/// invokes an execution environment.
pub async fn serve<Config, Event, Response, Handle, Handled>(
    configure: impl Future<Output = anyhow::Result<Config>>,
    handle: Handle,
) -> Result<(), lambda_runtime::Error>
where
    Config: Send + Sync + 'static,
    Event: serde::de::DeserializeOwned,
    Response: serde::Serialize,
    Handle: Fn(Arc<Config>, LambdaEvent<Event>) -> Handled,
    Handled: Future<Output = Result<Response, lambda_runtime::Error>>,
{
    init_json_logs();
    let config = match configure.await {
        Ok(config) => Arc::new(config),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "bad configuration");
            return Err(e.into());
        }
    };
    // Boxed: a handler's future nests deep enough to pass the compiler's layout depth
    // limit inside the runtime's own.
    lambda_runtime::run(service_fn(move |event| {
        Box::pin(handle(config.clone(), event))
    }))
    .await
}

/// A stage's flags (`lakehouse_compact::CompactFlags`, `lakehouse_ingest::IngestFlags`: each
/// a flag of the CLI and a `LAKEHOUSE_*` variable) from the environment alone, the way the
/// CLI reads them but for one thing: an empty variable is unset (Terraform's "none"). A
/// value that does not parse is an error naming its variable.
pub fn flags_from_env<F: clap::Args + clap::FromArgMatches>(
    name: &'static str,
) -> Result<F, ConfigError> {
    let listed = F::augment_args(clap::Command::new(name));
    let mut argv = vec![name.to_string()];
    for arg in listed.get_arguments() {
        let (Some(variable), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let variable = variable.to_string_lossy().into_owned();
        let value = std::env::var(&variable).unwrap_or_default();
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if arg.get_action().takes_values() {
            argv.push(format!("--{long}={value}"));
        } else {
            match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => argv.push(format!("--{long}")),
                "false" | "0" | "no" | "off" => {}
                _ => {
                    return Err(ConfigError(format!(
                        "environment variable {variable}={value:?}: expected true or false"
                    )));
                }
            }
        }
    }
    // What the variables hold is on the command line now: clap must not read them again.
    let command = listed.clone().mut_args(|arg| arg.env(None));
    let matches = command.try_get_matches_from(&argv).map_err(|e| {
        let why =
            std::error::Error::source(&e).map_or_else(|| e.kind().to_string(), ToString::to_string);
        let shown = e
            .get(clap::error::ContextKind::InvalidArg)
            .map(ToString::to_string)
            .unwrap_or_default();
        // Shown as `--name <VALUE>`: the flag is the first word.
        let flag = shown.split([' ', '=']).next().unwrap_or_default();
        let variable = listed
            .get_arguments()
            .find(|a| a.get_long().is_some_and(|long| flag == format!("--{long}")))
            .and_then(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned());
        match variable {
            Some(variable) => {
                let value = std::env::var(&variable).unwrap_or_default();
                ConfigError(format!("environment variable {variable}={value:?}: {why}"))
            }
            None => ConfigError(format!("{name} settings: {why}")),
        }
    })?;
    F::from_arg_matches(&matches).map_err(|e| ConfigError(e.to_string()))
}

/// A Lambda's configuration is missing or malformed: it stops at start-up, saying which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// A required environment variable, or an error naming it and what it is for.
pub fn required_env(name: &str, what: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError(format!(
            "environment variable {name} is not set: it must hold {what}"
        ))),
    }
}

/// An optional environment variable parsed as `T`; unset means `default`, unparsable is an
/// error (a typo should stop the function at start-up, not be ignored).
pub fn env_or<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map_err(|e| ConfigError(format!("environment variable {name}={value:?}: {e}"))),
        _ => Ok(default),
    }
}

/// The lake from `LAKEHOUSE_LAKE`, creating `raw` (if a function is the first to open it)
/// in the layout `LAKEHOUSE_RAW_LAYOUT` names (`date-type`, the default, or `date`). Every
/// function that may create raw reads it, so whichever runs first creates the same table.
pub fn lake_from_env() -> Result<lakehouse_lake::Lake, ConfigError> {
    let uri = required_env("LAKEHOUSE_LAKE", "the lake location, s3://bucket/prefix")?;
    let lake = lakehouse_lake::Lake::parse(&uri)
        .map_err(|e| ConfigError(format!("environment variable LAKEHOUSE_LAKE={uri:?}: {e}")))?;
    let name = env_or("LAKEHOUSE_RAW_LAYOUT", "date-type".to_string())?;
    let layout = lakehouse_lake::RawLayout::parse(&name).ok_or_else(|| {
        ConfigError(format!(
            "environment variable LAKEHOUSE_RAW_LAYOUT={name:?}: expected date-type or date"
        ))
    })?;
    Ok(lake.with_raw_layout(layout))
}

/// JSON log lines on stdout (CloudWatch Logs keeps them per invocation), filtered by
/// `LAKEHOUSE_LOG` (e.g. `info`, `debug`, `lakehouse_ingest_lambda=debug`), default `info`
/// (without delta-rs's logs of each lost commit race: the lake's commit path retries
/// them itself and the `CommitRetries` metric counts them).
pub fn init_json_logs() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("LAKEHOUSE_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,deltalake_core::kernel::transaction=off")
        });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(true)
        .without_time()
        .init();
}

/// One metric of an EMF line.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

impl Metric {
    pub fn count(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            value: value as f64,
            unit: "Count",
        }
    }

    pub fn millis(name: &'static str, value: f64) -> Metric {
        Metric {
            name,
            value,
            unit: "Milliseconds",
        }
    }

    pub fn bytes(name: &'static str, value: u64) -> Metric {
        Metric {
            name,
            value: value as f64,
            unit: "Bytes",
        }
    }
}

pub const METRICS_NAMESPACE: &str = "Lakehouse";

/// The `Function` dimension of a Lambda's metrics: its deployed name (e.g.
/// `lakehouse-prod-ingest`), so environments sharing an account never mix, or `fallback`
/// outside Lambda.
pub fn function_dimension(fallback: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| fallback.to_string())
}

/// A CloudWatch EMF document: CloudWatch turns this log line into metrics, with no API
/// call from the function. <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>
pub fn emf_line(dimensions: &[(&str, &str)], metrics: &[Metric]) -> String {
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|m| json!({ "Name": m.name, "Unit": m.unit }))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (key, value) in dimensions {
        document.insert((*key).into(), Value::from(*value));
    }
    for metric in metrics {
        document.insert(metric.name.into(), json!(metric.value));
    }
    Value::Object(document).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_declare_every_metric_they_carry() {
        let line = emf_line(
            &[("Function", "ingest")],
            &[
                Metric::count("Records", 3),
                Metric::millis("CommitLatency", 12.5),
            ],
        );
        let doc: Value = serde_json::from_str(&line).unwrap();
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "Lakehouse");
        assert_eq!(declared["Dimensions"], json!([["Function"]]));
        assert_eq!(
            declared["Metrics"][1],
            json!({"Name": "CommitLatency", "Unit": "Milliseconds"})
        );
        assert_eq!(doc["Function"], "ingest");
        assert_eq!(doc["Records"], 3.0);
        assert!(doc["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn missing_and_malformed_settings_are_named() {
        let err = required_env("LAKEHOUSE_TEST_SURELY_UNSET", "the lake URI")
            .unwrap_err()
            .to_string();
        assert!(err.contains("LAKEHOUSE_TEST_SURELY_UNSET") && err.contains("lake URI"));
        assert_eq!(env_or("LAKEHOUSE_TEST_SURELY_UNSET", 7u32), Ok(7));
    }
}
