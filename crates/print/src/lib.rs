//! How ragshift's results read for people: the text each engine's report and progress events
//! become on a terminal, kept apart from the engines (which only produce data) and from the
//! binary (which only parses flags, calls the engines and prints what this renders), as
//! ripgrep keeps its `grep-printer` apart from its searcher.
//!
//! It owns:
//! - one module per report: [`copy`], [`replicate`], [`verify`], [`rebuild`], [`plan`],
//!   [`status`], [`transfer`] (export and import), [`index`] (a vector index build),
//!   [`target`] (init-target, search), [`embed`] (embed, embed-bot), [`config`] (config
//!   show), each rendering to a [`String`] of whole lines (testable, printed as is);
//! - [`progress`]: a run's and an index build's progress events as bars on a terminal, log lines
//!   otherwise, or one JSON object per line with `--json`;
//! - [`out`]: results to stdout, one line or one JSON document at a time;
//! - the shared pieces ([`Text`], [`human_bytes`], [`human_secs`]), so every command writes sizes
//!   and durations alike.
//!
//! ```
//! let mut t = ragshift_print::Text::default();
//! t.line(format!("copied {}", ragshift_print::human_bytes(3 * 1024 * 1024)));
//! assert_eq!(t.into_string(), "copied 3.0 MiB\n");
//! ```

pub mod config;
pub mod copy;
pub mod embed;
pub mod index;
pub mod out;
pub mod plan;
pub mod progress;
pub mod rebuild;
pub mod replicate;
pub mod status;
pub mod target;
pub mod transfer;
pub mod verify;

/// Text being rendered one line at a time, so a report's lines read like the `println!`s they
/// replace and end up printed in one piece.
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    /// Appends `s` and a newline.
    pub fn line(&mut self, s: impl AsRef<str>) {
        self.0.push_str(s.as_ref());
        self.0.push('\n');
    }

    /// Appends lines rendered elsewhere (each already ending in a newline).
    pub fn push(&mut self, rendered: &str) {
        self.0.push_str(rendered);
    }

    /// The lines, each ending in a newline.
    pub fn into_string(self) -> String {
        self.0
    }
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

/// A duration for people, rounded to the second: `45s`, `3m07s`, `2h05m`.
pub fn human_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_the_same_everywhere() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
        assert_eq!(human_secs(44.6), "45s");
        assert_eq!(human_secs(187.0), "3m07s");
        assert_eq!(human_secs(7500.0), "2h05m");
    }
}
