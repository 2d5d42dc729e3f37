//! The registry's errors: what failed, on which table, stack, file or bot, and what to do.

use std::path::PathBuf;

use ragshift_aws::{AwsError, AwsErrorKind};
use ragshift_model::BotKey;

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry settings are incomplete or contradictory.
    #[error("{0}")]
    Config(String),
    /// An AWS call failed (table or stack not found, no permission, no credentials, …); the
    /// message names the resource and says what to check.
    #[error("{0}")]
    Aws(AwsError),
    /// The export file cannot be read or is not a DynamoDB export.
    #[error("export {}{}: {reason}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Export {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when the problem is on one.
        line: Option<usize>,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A status update found no item: the bot was deleted meanwhile.
    #[error("bot {key}: its registry item no longer exists (deleted meanwhile?); status not set")]
    BotGone {
        /// The bot.
        key: BotKey,
    },
    /// A status update was refused because another run owns the bot now.
    #[error("bot {key}: LastExecId is {found:?}, not {expected:?}: a newer run owns this bot, so this stale run's status was not written")]
    Stale {
        /// The bot.
        key: BotKey,
        /// The run id this update expected.
        expected: String,
        /// The run id the item holds.
        found: Option<String>,
    },
}

impl RegistryError {
    /// Whether trying again later can help (throttling, an unreachable service).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Aws(e) if e.kind.is_retryable())
    }

    /// The AWS error kind, for AWS failures.
    pub fn aws_kind(&self) -> Option<AwsErrorKind> {
        match self {
            Self::Aws(e) => Some(e.kind),
            _ => None,
        }
    }

    /// Wraps a classified AWS error, adding what to check for the common causes.
    pub(crate) fn aws(mut e: AwsError, not_found_hint: &str) -> Self {
        if e.kind == AwsErrorKind::NotFound && !not_found_hint.is_empty() {
            e.message.push_str("; ");
            e.message.push_str(not_found_hint);
        }
        Self::Aws(e)
    }
}
