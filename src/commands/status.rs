use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use indicatif::{HumanBytes, HumanDuration};
use lakehouse_erase::requests::{self, Queue};
use lakehouse_lake::Lake;
use lakehouse_query::status::{Crossed, LakeStatus, Limits, StatusOptions, lake_status};

use crate::args::{HistoryFormat, LakeArg, parse_duration};

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    pub format: HistoryFormat,
    /// Fail when the oldest raw commit staging has not consumed is older than this
    /// (e.g. 90s, 15m, 1h, 2d).
    #[arg(long, value_parser = parse_duration)]
    pub max_lag: Option<chrono::Duration>,
    /// Fail when quarantine took more rows than this in the window.
    #[arg(long)]
    pub max_quarantined: Option<u64>,
    /// Fail when a table has more files below the optimize target than this.
    #[arg(long)]
    pub max_small_files: Option<u64>,
    /// How far back quarantine is counted.
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    pub quarantine_window: chrono::Duration,
}

pub async fn run(args: StatusArgs) -> Result<()> {
    let limits = &Limits {
        max_lag: args.max_lag,
        max_quarantined: args.max_quarantined,
        max_small_files: args.max_small_files,
    };
    let (lake, format, quarantine_window) =
        (args.lake.lake.as_str(), args.format, args.quarantine_window);
    let lake = Lake::parse(lake)?;
    let options = StatusOptions {
        quarantine_window,
        ..StatusOptions::default()
    };
    let status = lake_status(&lake, &options).await?;
    let erasures = requests::queue(&lake).await?;
    match format {
        HistoryFormat::Json => {
            let mut json = serde_json::to_value(&status)?;
            if let Some(fields) = json.as_object_mut() {
                fields.insert("erasure_requests".into(), serde_json::to_value(&erasures)?);
            }
            outln!("{}", serde_json::to_string_pretty(&json)?)
        }
        HistoryFormat::Table => {
            out!("{}", render(&status));
            outln!("{}", render_erasures(&erasures));
        }
    }
    let crossed: Vec<String> = status.crossed(limits).iter().map(sentence).collect();
    if !crossed.is_empty() {
        bail!("unhealthy: {}", crossed.join("; "));
    }
    Ok(())
}

/// The erasure requests waiting for the scheduled run (ids and ages, no subjects).
fn render_erasures(queue: &Queue) -> String {
    match queue.oldest_age_seconds {
        None => "erasures    none waiting".to_string(),
        Some(age) => format!(
            "erasures    {} waiting, the oldest for {} ({})",
            queue.pending.len(),
            human(age),
            queue.pending.first().map_or("", |p| p.request_id.as_str())
        ),
    }
}

/// A crossed threshold as a sentence.
fn sentence(crossed: &Crossed) -> String {
    match crossed {
        Crossed::Lag {
            lag_seconds,
            max_seconds,
        } => format!(
            "compaction lag {} exceeds --max-lag {}",
            human(*lag_seconds),
            human(*max_seconds)
        ),
        Crossed::Stuck(problem) => problem.clone(),
        Crossed::Quarantined { rows, hours, max } => {
            format!("{rows} rows quarantined in {hours} h exceed --max-quarantined {max}")
        }
        Crossed::SmallFiles { table, files, max } => {
            format!("{table} has {files} small files, more than --max-small-files {max}")
        }
    }
}

fn render(status: &LakeStatus) -> String {
    let mut out = format!("lake {} at {}\n\n", status.location, time(Some(status.at)));
    out.push_str(&format!(
        "{:<12}  {:>7}  {:<19}  {:<10}  {:>7}  {:>10}  {:>7}  {:>10}  {}\n",
        "table",
        "version",
        "last commit (UTC)",
        "operation",
        "files",
        "bytes",
        "small",
        "partitions",
        "time travel from"
    ));
    for t in &status.tables {
        let Some(version) = t.version else {
            out.push_str(&format!("{:<12}  (not created yet)\n", t.table));
            continue;
        };
        let travel = match (t.time_travel_from, t.oldest_version) {
            (Some(from), Some(v)) => format!(
                "{} (log from v{v}, retention {} h)",
                time(Some(from)),
                t.retention_hours.unwrap_or(0)
            ),
            _ => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<12}  {:>7}  {:<19}  {:<10}  {:>7}  {:>10}  {:>7}  {:>10}  {}\n",
            t.table,
            version,
            time(t.last_commit_at),
            t.last_operation.as_deref().unwrap_or("-"),
            t.files,
            HumanBytes(t.bytes).to_string(),
            t.small_files,
            t.partitions,
            travel
        ));
    }
    out.push('\n');
    if let Some(lag) = &status.compaction {
        let consumed = lag
            .consumed
            .map_or("nothing yet".to_string(), |v| format!("raw v{v}"));
        if lag.commits_behind == 0 {
            out.push_str(&format!(
                "compaction  up to date: staging holds {consumed} of raw v{}\n",
                lag.raw_version
            ));
        } else {
            out.push_str(&format!(
                "compaction  staging holds {consumed} of raw v{}: {} raw commit{} and {}{} rows behind; oldest waiting {} ({})\n",
                lag.raw_version,
                lag.commits_behind,
                if lag.commits_behind == 1 { "" } else { "s" },
                if lag.rows_behind_exact { "" } else { "~" },
                lag.rows_behind,
                human(lag.lag_seconds),
                time(lag.oldest_unconsumed_at)
            ));
        }
        if !lag.ranges.is_empty() {
            let ranges: Vec<String> = lag
                .ranges
                .iter()
                .map(|r| match r.consumed {
                    Some(v) => format!("{} v{v}", r.range),
                    None => format!("{} nothing yet", r.range),
                })
                .collect();
            out.push_str(&format!("            ranges: {}\n", ranges.join(", ")));
        }
        if let Some(problem) = &lag.problem {
            out.push_str(&format!("            problem: {problem}\n"));
        }
    }
    if let Some(keys) = &status.keys {
        match keys.indexed {
            None if let Some((version, files)) = keys.building => out.push_str(&format!(
                "key index   rebuilding: {files} files of staging v{version} indexed (the next compaction goes on)\n",
            )),
            Some(v) if keys.lag_versions == 0 => {
                out.push_str(&format!("key index   up to date: holds staging v{v}\n"))
            }
            Some(v) => out.push_str(&format!(
                "key index   holds staging v{v}: {} staging commit{} behind (the next compaction indexes them)\n",
                keys.lag_versions,
                if keys.lag_versions == 1 { "" } else { "s" }
            )),
            None => out.push_str(
                "key index   none for this staging yet (the next compaction builds it)\n",
            ),
        }
        out.push_str(&match keys.swept {
            Some(v) => format!("sweep       last swept staging v{v}\n"),
            None => "sweep       never run (`lakehouse keys sweep`)\n".to_string(),
        });
    }
    if let Some(typed) = &status.typed {
        let step = if typed.rows == typed.staging_rows {
            "in step with staging".to_string()
        } else {
            format!(
                "staging holds {}: the next compaction mirrors the difference",
                typed.staging_rows
            )
        };
        out.push_str(&format!(
            "typed       {} tables, {} rows ({step})\n",
            typed.tables, typed.rows
        ));
        for (event_type, fields) in &typed.rescued {
            let parts: Vec<String> = fields.iter().map(|(f, n)| format!("{f}: {n}")).collect();
            out.push_str(&format!(
                "            rescued in {event_type:?}: {}\n",
                parts.join(", ")
            ));
        }
    }
    if let Some(q) = &status.quarantine {
        out.push_str(&format!(
            "quarantine  {} rows in the last {} h",
            q.rows, q.hours
        ));
        let mut reasons: Vec<(&String, &u64)> = q.by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut parts: Vec<String> = reasons.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        if q.unrecorded > 0 {
            parts.push(format!("reason not recorded: {}", q.unrecorded));
        }
        if !parts.is_empty() {
            out.push_str(&format!(" ({})", parts.join(", ")));
        }
        out.push('\n');
    }
    out
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or("-".to_string(), crate::args::utc_seconds)
}

fn human(seconds: i64) -> String {
    HumanDuration(std::time::Duration::from_secs(
        seconds.max(0).unsigned_abs(),
    ))
    .to_string()
}
