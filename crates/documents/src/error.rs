//! Document store errors, naming the bot, the file and the bucket or folder.

use ragshift_aws::{AwsError, AwsErrorKind};
use ragshift_model::BotKey;

/// Why a document or a listing could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The store itself is unusable (bucket or folder missing, no permission, no credentials):
    /// nothing can be read from it, so commands stop before any work.
    #[error("{0}")]
    Store(String),
    /// One file of one bot is missing: reported for that bot, not fatal to others.
    #[error("bot {key}: document {filename:?} not found at {source_uri}")]
    Missing {
        /// The bot.
        key: BotKey,
        /// The file name from the bot's `Knowledge.filenames`.
        filename: String,
        /// Where it was looked for.
        source_uri: String,
    },
    /// A file name that would leave the bot's folder (`..`, `/`).
    #[error("bot {key}: document name {filename:?} is not a plain file name; refusing to read it")]
    InvalidName {
        /// The bot.
        key: BotKey,
        /// The offending name.
        filename: String,
    },
    /// A document that isn't a plain file inside the bot's folder (a symbolic link, a folder, a
    /// device, a folder on the way that is a link leading elsewhere): not read, so a link can't
    /// make another file (`/etc/passwd`) a bot's knowledge.
    #[error("bot {key}: document {filename:?} refused: {reason}")]
    Refused {
        /// The bot.
        key: BotKey,
        /// The file name from the bot's `Knowledge.filenames`.
        filename: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A document larger than `ingest.max_bytes`: refused before (or while) reading it, so a
    /// huge file can't exhaust memory.
    #[error("bot {key}: document {filename:?} is larger than {limit} bytes ([ingest] max_bytes); raise the limit or remove the file from the bot")]
    TooLarge {
        /// The bot.
        key: BotKey,
        /// The file name.
        filename: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading one bot's documents failed (a retryable AWS error, an I/O error).
    #[error("bot {key}: {message}")]
    Read {
        /// The bot.
        key: BotKey,
        /// What failed.
        message: String,
        /// Whether trying again later can help.
        retryable: bool,
    },
}

impl DocumentError {
    /// Whether the whole store is unusable (stop), rather than one bot or file (go on).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Store(_))
    }

    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Read {
                retryable: true,
                ..
            }
        )
    }

    /// Sorts an AWS error about `key`'s documents: store-wide problems are fatal.
    pub(crate) fn from_aws(key: &BotKey, e: AwsError, bucket: &str) -> Self {
        match e.kind {
            AwsErrorKind::NotFound => Self::Store(format!(
                "{}; check the bucket name ([documents] bucket, --documents-bucket or --stack) and the region for {bucket}",
                e.message
            )),
            AwsErrorKind::AccessDenied | AwsErrorKind::Credentials => Self::Store(e.message),
            kind => Self::Read {
                key: key.clone(),
                message: e.message,
                retryable: kind.is_retryable(),
            },
        }
    }
}
