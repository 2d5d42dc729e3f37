//! Results on stdout (logs go to stderr): one line, a rendered text, or one JSON document; and
//! the error that ended a command, on stderr.

use std::io::Write;

use serde::Serialize;

/// Writes one line of text to stdout.
pub fn line(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
}

/// Writes rendered lines (each already ending in a newline) to stdout as they are.
pub fn text(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_ref().as_bytes());
}

/// Writes a value as one JSON document (pretty for humans reading `--json`, one per call).
pub fn json(value: &impl Serialize) -> serde_json::Result<()> {
    line(serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Writes a value as one JSON object on one line (a stream of events, one per line).
pub fn json_line(value: &impl Serialize) {
    if let Ok(s) = serde_json::to_string(value) {
        line(s);
    }
}

/// Writes the error that ended a command to stderr on one line: `error: ` and each cause of
/// the chain once (a context often repeats its cause's text).
pub fn error<T: ToString>(chain: impl IntoIterator<Item = T>) {
    let mut msg = String::new();
    for part in chain {
        let part = part.to_string();
        if !msg.contains(&part) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&part);
        }
    }
    eprintln!("error: {msg}");
}
