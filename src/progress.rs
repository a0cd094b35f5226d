//! Progress bars on stderr, drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn counter(what: &str) -> ProgressBar {
    bar(
        None,
        &format!("{{spinner}} {{human_pos}} {what} ({{per_sec}}, {{elapsed}})"),
    )
}

/// Inputs of an ingest: the position is bytes as stored, the message inputs and records.
pub fn inputs(total_bytes: Option<u64>) -> ProgressBar {
    let template = if total_bytes.is_some() {
        "{spinner} {bytes}/{total_bytes} ({bytes_per_sec}, {elapsed}, eta {eta}) {msg}"
    } else {
        "{spinner} {bytes} ({bytes_per_sec}, {elapsed}) {msg}"
    };
    bar(total_bytes, template)
}

fn bar(length: Option<u64>, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar
}
