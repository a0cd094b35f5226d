//! Standard output, the one way every command prints its results. A reader that stops
//! early (`lakehouse history raw | head -1`) closes the pipe: the next write then fails
//! with [`StdoutClosed`], which ends the command quietly (`main` exits 141, as a process
//! stopped by SIGPIPE does) instead of a panic from `println!` or an `error:` line. Only
//! writes to standard output are taken so: a broken pipe anywhere else (a connection to
//! S3) stays an error.

use std::io::{BufWriter, StdoutLock, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit status when standard output was closed: 128 + SIGPIPE, what `cat` or `yes` give.
pub const CLOSED_EXIT: u8 = 141;

/// The reader of standard output went away.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Buffered standard output.
pub struct Stdout(BufWriter<StdoutLock<'static>>);

pub fn stdout() -> Stdout {
    Stdout(BufWriter::with_capacity(1 << 16, std::io::stdout().lock()))
}

/// Set once a write to standard output found it closed: the error may reach `main` wrapped
/// in a library's own (an Arrow CSV writer keeps only the message).
static CLOSED: AtomicBool = AtomicBool::new(false);

fn closed(error: std::io::Error) -> std::io::Error {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        CLOSED.store(true, Ordering::Relaxed);
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        error
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(closed)
    }
}

/// Whether a command failed because standard output closed under it, not of a fault.
pub fn was_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// `println!` through [`stdout`]: a closed standard output ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = $crate::output::stdout();
        writeln!(out, $($arg)*)?;
        out.flush()?;
    }};
}

/// `print!` through [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = $crate::output::stdout();
        write!(out, $($arg)*)?;
        out.flush()?;
    }};
}
