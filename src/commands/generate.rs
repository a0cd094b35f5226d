use anyhow::{Result, ensure};
use lakehouse::generate::{GenerateOptions, Generator};

pub fn run(options: GenerateOptions) -> Result<()> {
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
