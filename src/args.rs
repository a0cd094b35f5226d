//! Arguments that several commands share. Defaults come from the options' `Default` in the
//! crates that own them, never repeated here.

use clap::{Args, ValueEnum};

#[derive(Args, Clone)]
pub struct LakeArg {
    /// Lake location: a local folder, file://… or s3://bucket/prefix (AWS settings from the
    /// standard environment: AWS_REGION, AWS_ENDPOINT_URL, the credential chain).
    #[arg(long, env = "LAKEHOUSE_LAKE")]
    pub lake: String,
}

/// For the commands that create tables.
#[derive(Args, Clone)]
pub struct LayoutArg {
    /// How raw is partitioned if this run creates it: `date-type` (event_date, event_type)
    /// or `date` (event_date only, rows sorted by event_type: one file per batch and day,
    /// for volume; see docs/scaling.md). An existing raw keeps its own.
    #[arg(long, env = "LAKEHOUSE_RAW_LAYOUT", value_enum, default_value_t = RawLayoutArg::DateType)]
    pub raw_layout: RawLayoutArg,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RawLayoutArg {
    DateType,
    Date,
}

impl From<RawLayoutArg> for lakehouse_lake::RawLayout {
    fn from(arg: RawLayoutArg) -> Self {
        match arg {
            RawLayoutArg::DateType => lakehouse_lake::RawLayout::DateType,
            RawLayoutArg::Date => lakehouse_lake::RawLayout::Date,
        }
    }
}

pub(crate) fn parse_types(text: &str) -> Result<lakehouse_lake::RunRange, String> {
    lakehouse_lake::RunRange::parse(lakehouse_lake::SplitBy::Types, text)
}

pub(crate) fn parse_keys(text: &str) -> Result<lakehouse_lake::RunRange, String> {
    lakehouse_lake::RunRange::parse(lakehouse_lake::SplitBy::Keys, text)
}

/// A duration as `<n><unit>`, the unit one of s, m, h, d.
pub(crate) fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let invalid = || format!("{text:?}: expected a number and a unit (s, m, h, d), e.g. 15m");
    let split = text.len().checked_sub(1).ok_or_else(invalid)?;
    let (number, unit) = text.split_at_checked(split).ok_or_else(invalid)?;
    let n: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    seconds
        .filter(|s| *s >= 0)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(invalid)
}

#[derive(Clone, Copy, ValueEnum)]
pub enum InputFormat {
    /// JSON Lines: one event per line.
    Jsonl,
    /// A Lambda Kinesis event document: {"Records":[{"kinesis":{"data":"<base64>"}}]}.
    KinesisEvent,
}

impl From<InputFormat> for lakehouse_ingest::backfill::Format {
    fn from(format: InputFormat) -> Self {
        match format {
            InputFormat::Jsonl => Self::Jsonl,
            InputFormat::KinesisEvent => Self::KinesisEvent,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum HistoryFormat {
    Table,
    Json,
}

/// An instant as the table outputs print it: UTC, to the second.
pub(crate) fn utc_seconds(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}
