//! The options of a compaction run, each once: a flag of `lakehouse compact` and a
//! `LAKEHOUSE_*` variable, with the one default of [`CompactOptions`]. The CLI flattens
//! [`CompactFlags`] into its arguments; the compaction Lambda reads the same from its
//! environment (`lakehouse_lambda_shared::flags_from_env`), so neither can grow an option
//! the other lacks, nor a second default. Terraform writes an empty string for "none":
//! the Lambdas' reader takes every empty variable as unset, and the CLI an empty horizon
//! or window ([`Blank`]).

use std::num::NonZeroU64;
use std::str::FromStr;

use clap::Args;

use crate::compactor::CompactOptions;

/// A number, or nothing when empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blank<T>(pub Option<T>);

impl<T: FromStr> FromStr for Blank<T> {
    type Err = T::Err;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "" => Ok(Blank(None)),
            text => text.parse().map(|v| Blank(Some(v))),
        }
    }
}

fn default_retention_hours() -> u32 {
    u32::try_from(CompactOptions::default().retention.num_hours()).unwrap_or(u32::MAX)
}

#[derive(Args, Debug, Clone)]
pub struct CompactFlags {
    /// Search staging files within this many days of a new row's date for older copies
    /// (0: every file) instead of the key index, which finds copies of any age.
    #[arg(long, env = "LAKEHOUSE_HORIZON_DAYS", value_name = "DAYS")]
    pub horizon_days: Option<Blank<u32>>,
    /// A hot window: look up only the key index's runs indexed within the last H hours,
    /// so a round costs what the window holds. A copy whose staged row is older stays
    /// beside it until `lakehouse keys sweep`. Unset: every run, copies of any age.
    #[arg(long, env = "LAKEHOUSE_HOT_HOURS", value_name = "H")]
    pub hot_hours: Option<Blank<u32>>,
    /// Staging partitions dated this many days before today (UTC) or later are recent:
    /// their files stay small, since a newer copy of a row rewrites its whole file.
    #[arg(long, env = "LAKEHOUSE_RECENT_DAYS", default_value_t = CompactOptions::default().recent_days)]
    pub recent_days: u32,
    /// The size (MiB) recent partitions' files stay under: what replacing one row
    /// there rewrites at most. Older partitions are packed to 128 MiB.
    #[arg(
        long,
        env = "LAKEHOUSE_RECENT_FILE_MB",
        default_value_t = CompactOptions::default().recent_file_size.get() >> 20,
        value_parser = clap::value_parser!(u64).range(1..=1_024)
    )]
    pub recent_file_mb: u64,
    /// Hours of history vacuum keeps for time travel.
    #[arg(long, env = "LAKEHOUSE_RETENTION_HOURS", default_value_t = default_retention_hours())]
    pub retention_hours: u32,
    /// Vacuum also deletes files no commit references (lists the whole table).
    #[arg(long, env = "LAKEHOUSE_VACUUM_FULL")]
    pub vacuum_full: bool,
    /// Dedup only: skip optimize and vacuum.
    #[arg(long = "no-maintenance", env = "LAKEHOUSE_SKIP_MAINTENANCE")]
    pub skip_maintenance: bool,
    /// Leave the typed tables (one per event type, `docs/catalog.md`) as they are: the
    /// next run that maintains them catches up.
    #[arg(long = "no-typed", env = "LAKEHOUSE_SKIP_TYPED")]
    pub skip_typed: bool,
}

impl CompactFlags {
    /// The options as these flags set them (the range, and what no flag sets, default); a
    /// hot window and a horizon together are an error.
    pub fn options(&self) -> Result<CompactOptions, String> {
        let recent_file_size = self
            .recent_file_mb
            .checked_mul(1 << 20)
            .and_then(NonZeroU64::new)
            .unwrap_or(CompactOptions::default().recent_file_size);
        let (horizon_days, hot_hours) = (
            self.horizon_days.and_then(|b| b.0),
            self.hot_hours.and_then(|b| b.0),
        );
        if horizon_days.is_some() && hot_hours.is_some() {
            return Err(
                "--hot-hours (LAKEHOUSE_HOT_HOURS) cannot be used with --horizon-days \
                 (LAKEHOUSE_HORIZON_DAYS): a hot window reads the key index, which a horizon \
                 replaces"
                    .into(),
            );
        }
        Ok(CompactOptions {
            horizon_days,
            hot_hours,
            recent_days: self.recent_days,
            recent_file_size,
            retention: chrono::Duration::hours(i64::from(self.retention_hours)),
            vacuum_full: self.vacuum_full,
            skip_maintenance: self.skip_maintenance,
            skip_typed: self.skip_typed,
            ..CompactOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        flags: CompactFlags,
    }

    #[test]
    fn an_empty_value_is_unset_and_a_number_is_itself() {
        assert_eq!("".parse::<Blank<u32>>(), Ok(Blank(None)));
        assert_eq!(" 7 ".parse::<Blank<u32>>(), Ok(Blank(Some(7))));
        assert!("x".parse::<Blank<u32>>().is_err());
    }

    #[test]
    fn the_flags_unset_are_the_options_defaults() {
        let parsed = Flags::try_parse_from(["compaction"]).expect("parse");
        let options = parsed.flags.options().expect("options");
        let defaults = CompactOptions::default();
        assert_eq!(options.horizon_days, defaults.horizon_days);
        assert_eq!(options.hot_hours, defaults.hot_hours);
        assert_eq!(options.recent_days, defaults.recent_days);
        assert_eq!(options.recent_file_size, defaults.recent_file_size);
        assert_eq!(options.retention, defaults.retention);
        assert_eq!(options.vacuum_full, defaults.vacuum_full);
        assert_eq!(options.skip_maintenance, defaults.skip_maintenance);
        assert_eq!(options.skip_typed, defaults.skip_typed);
    }

    #[test]
    fn a_hot_window_and_a_horizon_together_are_an_error() {
        let args = ["compaction", "--hot-hours", "1", "--horizon-days", "7"];
        let parsed = Flags::try_parse_from(args).expect("parse");
        let error = parsed.flags.options().expect_err("both");
        assert!(error.contains("cannot be used with"), "{error}");
    }

    #[test]
    fn every_flag_has_its_variable() {
        for arg in Flags::command().get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                assert!(arg.get_long().is_none(), "{arg:?} has no variable");
                continue;
            };
            assert!(env.to_string_lossy().starts_with("LAKEHOUSE_"), "--{long}");
        }
    }
}
