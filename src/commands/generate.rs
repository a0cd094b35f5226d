use anyhow::{Result, ensure};
use clap::Args;
use lakehouse::generate::{GenerateOptions, Generator};

#[derive(Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub events: u64,
    #[arg(long, default_value_t = GenerateOptions::default().seed)]
    pub seed: u64,
    #[arg(long, default_value_t = GenerateOptions::default().duplicate_rate)]
    pub duplicate_rate: f64,
    #[arg(long, default_value_t = GenerateOptions::default().invalid_rate)]
    pub invalid_rate: f64,
    #[arg(long, default_value_t = GenerateOptions::default().days)]
    pub days: u32,
    /// Pad each event to about this many bytes of JSON (context and properties fields);
    /// 0 leaves them bare (~200 bytes).
    #[arg(long, default_value_t = GenerateOptions::default().event_bytes)]
    pub event_bytes: usize,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let options = GenerateOptions {
        events: args.events,
        seed: args.seed,
        duplicate_rate: args.duplicate_rate,
        invalid_rate: args.invalid_rate,
        days: args.days,
        event_bytes: args.event_bytes,
    };
    for (name, rate) in [
        ("duplicate-rate", options.duplicate_rate),
        ("invalid-rate", options.invalid_rate),
    ] {
        ensure!(
            (0.0..=1.0).contains(&rate),
            "--{name} must be within [0, 1], got {rate}"
        );
    }
    ensure!(
        options.duplicate_rate + options.invalid_rate <= 1.0,
        "--duplicate-rate plus --invalid-rate must not exceed 1"
    );
    let mut out = crate::output::stdout();
    Generator::new(options).write_all(&mut out)?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}
