//! Progress bars on stderr, drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn counter(what: &str) -> ProgressBar {
    bar(
        None,
        &format!("{{spinner}} {{human_pos}} {what} ({{per_sec}}, {{elapsed}})"),
    )
}

/// Inputs of an ingest: the position is bytes as stored, the message inputs and records.
/// Their total, once known, is given by [`set_total`].
pub fn inputs() -> ProgressBar {
    bar(None, "{spinner} {bytes} ({bytes_per_sec}, {elapsed}) {msg}")
}

/// The inputs' bytes as stored, when every input's size is known: a bar with an end.
pub fn set_total(bar: &ProgressBar, total_bytes: Option<u64>) {
    if let Some(total) = total_bytes {
        bar.set_length(total);
        bar.set_style(style(
            "{spinner} {bytes}/{total_bytes} ({bytes_per_sec}, {elapsed}, eta {eta}) {msg}",
        ));
    }
}

fn bar(length: Option<u64>, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
    bar.set_style(style(template));
    bar
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}
