//! `lakehouse`: a thin shell over the stage crates. Parses arguments, runs one command,
//! prints `error: …` and exits non-zero on failure.

#[macro_use]
mod output;
mod args;
mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAKEHOUSE_LOG")
                // Quiet by default: the kernel logs the expected "no log yet" of a table
                // created on first use as an error, and the stats writer warns that binary
                // columns (quarantine.raw) get no min/max; aws_config warns of every
                // credential source it tries (IMDS off a laptop); the commit path asks delta-rs
                // for one attempt and retries itself, so delta-rs would log every lost race as a
                // warning or an error. Real failures reach the user as the `error:` line.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "warn,buoyant_kernel=off,deltalake_core::writer::stats=error,\
                         deltalake_core::kernel::transaction=off,aws_config=error",
                    )
                }),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e.into()),
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader stopped early (`| head`): nothing failed, and nothing to say.
        Err(_) if output::was_closed() => ExitCode::from(output::CLOSED_EXIT),
        Err(e) => fail(&e),
    }
}

/// One line on stderr: the error and those of its causes that add something (libraries
/// often repeat their source's message in their own).
fn fail(error: &anyhow::Error) -> ExitCode {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    eprintln!("error: {}", message.replace('\n', " "));
    ExitCode::FAILURE
}
