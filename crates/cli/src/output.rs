//! Terminal and machine output: logs go to stderr, results to stdout (JSON with `--json`),
//! written by [`ragshift_print::out`].

use serde::Serialize;
use tracing_subscriber::EnvFilter;

use crate::args::GlobalArgs;

pub use ragshift_print::out::{error, json, line, text};

/// Environment variable with a `tracing` filter that overrides `-v`/`-q`.
pub const LOG_ENV: &str = "RAGSHIFT_LOG";

/// A command's result, the one way every command prints it: `value` as one JSON document with
/// `--json`, else as `render` writes it for people.
pub fn report<T: Serialize, S: AsRef<str>>(
    global: &GlobalArgs,
    value: &T,
    render: impl FnOnce(&T) -> S,
) -> serde_json::Result<()> {
    if global.json {
        json(value)
    } else {
        text(render(value));
        Ok(())
    }
}

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
