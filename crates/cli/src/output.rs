//! Terminal and machine output: logs go to stderr, results to stdout (JSON with `--json`).

use std::io::Write;

use serde::Serialize;
use tracing_subscriber::EnvFilter;

use crate::args::GlobalArgs;

/// Environment variable with a `tracing` filter that overrides `-v`/`-q`.
pub const LOG_ENV: &str = "RAGSHIFT_LOG";

/// Logs to stderr: `warn` with `-q`, `info` by default, `debug` with `-v`, `trace` with `-vv`.
pub fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (q, _) if q > 0 => "error",
        (_, 0) => "info",
        (_, 1) => "debug",
        _ => "trace",
    };
    // A target directive matches by prefix, so `ragshift` covers every ragshift_* crate.
    let default = format!("warn,ragshift={level}");
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Writes one line of text to stdout.
#[allow(clippy::print_stdout)]
pub fn line(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
}

/// Writes a value as one JSON document (pretty for humans reading `--json`, one per call).
pub fn json(value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    line(text);
    Ok(())
}

/// A byte count for people: `512 B`, `3.4 MiB`, `1.2 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
