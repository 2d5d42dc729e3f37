//! Per-source results and the bot's outcome.
//!
//! Every source of a bot ends as loaded (with its chunk count) or failed (with the reason).
//! The original platform logged URL failures and still reported SUCCEEDED; here the policy is
//! explicit: by default a bot with any failed source ends FAILED with a reason that lists the
//! failed sources, and `allow_partial` lets it succeed with a warning instead. A bot whose
//! sources all failed fails under either policy: there is nothing to embed.

use serde::Serialize;

use crate::error::SourceError;
use crate::loader::LoaderKind;

/// How one source ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceOutcome {
    /// Loaded and split.
    Loaded {
        /// Characters of text the loader produced.
        chars: usize,
        /// Chunks handed on.
        chunks: usize,
    },
    /// Not loaded. Chunks already handed on for it (a read error late in a streamed file) must
    /// be dropped by the receiver: they carry this source's name.
    Failed {
        /// Why.
        error: SourceError,
        /// Chunks handed on before the failure.
        chunks_sent: usize,
    },
}

/// The result of one source of a bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReport {
    /// The source (`s3://bucket/key`, URL, file path, or a page of a sitemap).
    pub source: String,
    /// The loader used, once the format was known.
    pub loader: Option<LoaderKind>,
    /// The sitemap this page came from, for pages of a sitemap.
    pub sitemap: Option<String>,
    /// How it ended.
    pub outcome: SourceOutcome,
    /// Non-fatal findings (encoding conversion, replaced bytes).
    pub warnings: Vec<String>,
}

impl SourceReport {
    /// A failed source.
    pub fn failed(error: SourceError, loader: Option<LoaderKind>) -> Self {
        Self {
            source: error.origin.clone(),
            loader,
            sitemap: None,
            outcome: SourceOutcome::Failed {
                error,
                chunks_sent: 0,
            },
            warnings: Vec::new(),
        }
    }

    /// Whether it was loaded.
    pub fn is_loaded(&self) -> bool {
        matches!(self.outcome, SourceOutcome::Loaded { .. })
    }

    /// The failure, if any.
    pub fn error(&self) -> Option<&SourceError> {
        match &self.outcome {
            SourceOutcome::Failed { error, .. } => Some(error),
            SourceOutcome::Loaded { .. } => None,
        }
    }
}

/// What to do with a bot some of whose sources failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomePolicy {
    /// Let a bot succeed, with a warning, when at least one source loaded (`--allow-partial`).
    pub allow_partial: bool,
}

/// The bot's verdict from its sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotOutcome {
    /// Store the chunks and mark the bot SUCCEEDED.
    Succeeded {
        /// Sources that failed but were allowed to (non-empty only with `allow_partial`).
        warning: Option<String>,
    },
    /// Mark the bot FAILED with this `SyncStatusReason` (keep its old rows).
    Failed {
        /// Lists the failed sources and why.
        reason: String,
    },
}

/// Failed sources listed in a reason before the rest is summarised.
const LISTED: usize = 10;

/// Applies `policy` to the results of all sources of one bot.
pub fn decide(reports: &[SourceReport], policy: OutcomePolicy) -> BotOutcome {
    let failed: Vec<&SourceError> = reports.iter().filter_map(SourceReport::error).collect();
    if failed.is_empty() {
        return BotOutcome::Succeeded { warning: None };
    }
    let summary = summarise(&failed, reports.len());
    if failed.len() == reports.len() {
        return BotOutcome::Failed { reason: summary };
    }
    if policy.allow_partial {
        BotOutcome::Succeeded {
            warning: Some(format!("partial load allowed: {summary}")),
        }
    } else {
        BotOutcome::Failed {
            reason: format!(
                "{summary} (re-run with --allow-partial to keep the sources that loaded)"
            ),
        }
    }
}

fn summarise(failed: &[&SourceError], total: usize) -> String {
    let mut s = format!("{} of {} source(s) failed: ", failed.len(), total);
    let listed: Vec<String> = failed.iter().take(LISTED).map(|e| e.to_string()).collect();
    s.push_str(&listed.join("; "));
    if failed.len() > LISTED {
        s.push_str(&format!("; and {} more", failed.len() - LISTED));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn loaded(src: &str) -> SourceReport {
        SourceReport {
            source: src.into(),
            loader: Some(LoaderKind::Text),
            sitemap: None,
            outcome: SourceOutcome::Loaded {
                chars: 10,
                chunks: 1,
            },
            warnings: vec![],
        }
    }

    fn failed(src: &str) -> SourceReport {
        SourceReport::failed(
            SourceError::new(src, ErrorKind::HttpStatus { status: 404 }),
            None,
        )
    }

    #[test]
    fn partial_failure_fails_the_bot_by_default() {
        let reports = [loaded("s3://b/a.pdf"), failed("https://x/gone")];
        match decide(&reports, OutcomePolicy::default()) {
            BotOutcome::Failed { reason } => {
                assert!(reason.starts_with(
                    "1 of 2 source(s) failed: https://x/gone: the server answered HTTP 404"
                ));
                assert!(reason.contains("--allow-partial"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn allow_partial_succeeds_with_a_warning_but_not_when_everything_failed() {
        let policy = OutcomePolicy {
            allow_partial: true,
        };
        let reports = [loaded("a"), failed("b")];
        assert!(matches!(
            decide(&reports, policy),
            BotOutcome::Succeeded { warning: Some(w) } if w.contains("b: the server answered HTTP 404")
        ));
        assert!(matches!(
            decide(&[failed("a"), failed("b")], policy),
            BotOutcome::Failed { reason } if reason.starts_with("2 of 2")
        ));
        assert_eq!(
            decide(&[loaded("a")], OutcomePolicy::default()),
            BotOutcome::Succeeded { warning: None }
        );
        assert_eq!(
            decide(&[], OutcomePolicy::default()),
            BotOutcome::Succeeded { warning: None }
        );
    }

    #[test]
    fn long_failure_lists_are_summarised() {
        let reports: Vec<_> = (0..15)
            .map(|i| failed(&format!("u{i}")))
            .chain([loaded("ok")])
            .collect();
        let BotOutcome::Failed { reason } = decide(&reports, OutcomePolicy::default()) else {
            panic!("should fail");
        };
        assert!(
            reason.contains("u9:") && !reason.contains("u10:") && reason.contains("and 5 more")
        );
    }
}
