//! Bots as the platform's registry stores them (one DynamoDB item per bot).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies one bot: the registry's partition key is the owner's user id and the sort key is
/// `{user_id}#BOT#{bot_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BotKey {
    /// The owner's user id (the item's `PK`).
    pub user_id: String,
    /// The bot id, a 26-character ULID in the platform.
    pub bot_id: String,
}

/// Why a pair of registry keys does not name a bot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotKeyError {
    /// The sort key is an alias, a conversation or something else that is not a bot.
    #[error("sort key {sk:?} is not a bot key (expected `{{user_id}}#BOT#{{bot_id}}`)")]
    NotABot {
        /// The offending sort key.
        sk: String,
    },
    /// The sort key's user part disagrees with the partition key.
    #[error("sort key {sk:?} does not belong to partition key {pk:?}")]
    OwnerMismatch {
        /// The partition key.
        pk: String,
        /// The sort key.
        sk: String,
    },
}

impl BotKey {
    /// Builds a key from its two ids.
    pub fn new(user_id: impl Into<String>, bot_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            bot_id: bot_id.into(),
        }
    }

    /// The registry partition key (`PK`).
    pub fn pk(&self) -> &str {
        &self.user_id
    }

    /// The registry sort key (`SK`) of the bot item.
    pub fn sk(&self) -> String {
        format!("{}#BOT#{}", self.user_id, self.bot_id)
    }

    /// Recovers a key from the platform's `PK`/`SK` pair, refusing aliases and conversations.
    pub fn from_registry_keys(pk: &str, sk: &str) -> Result<Self, BotKeyError> {
        let Some((owner, bot_id)) = sk.rsplit_once("#BOT#") else {
            return Err(BotKeyError::NotABot { sk: sk.to_owned() });
        };
        if bot_id.is_empty() || bot_id.contains('#') {
            return Err(BotKeyError::NotABot { sk: sk.to_owned() });
        }
        if owner != pk {
            return Err(BotKeyError::OwnerMismatch {
                pk: pk.to_owned(),
                sk: sk.to_owned(),
            });
        }
        Ok(Self::new(pk, bot_id))
    }
}

impl fmt::Display for BotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user_id, self.bot_id)
    }
}

/// Where a bot's knowledge comes from (the item's `Knowledge` map).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knowledge {
    /// Web pages or documents behind URLs.
    pub source_urls: Vec<String>,
    /// Sitemaps whose pages are all sources.
    pub sitemap_urls: Vec<String>,
    /// Uploaded files, stored under `{user_id}/{bot_id}/documents/{filename}`.
    pub filenames: Vec<String>,
}

impl Knowledge {
    /// A bot without any source has nothing to embed and is skipped by every migration.
    pub fn is_empty(&self) -> bool {
        self.source_urls.is_empty() && self.sitemap_urls.is_empty() && self.filenames.is_empty()
    }

    /// Number of sources of every kind.
    pub fn len(&self) -> usize {
        self.source_urls.len() + self.sitemap_urls.len() + self.filenames.len()
    }
}

/// How a bot's documents are chunked; sizes are counted in characters, as the platform does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingParams {
    /// Maximum characters per chunk.
    pub chunk_size: usize,
    /// Characters shared by consecutive chunks of one document.
    pub chunk_overlap: usize,
    /// The platform's switch for layout-aware PDF partitioning (kept for fidelity).
    pub enable_partition_pdf: bool,
}

impl EmbeddingParams {
    /// The platform's defaults, used when an item lacks `EmbeddingParams` or some of its keys.
    pub const DEFAULT_CHUNK_SIZE: usize = 1000;
    /// See [`EmbeddingParams::DEFAULT_CHUNK_SIZE`].
    pub const DEFAULT_CHUNK_OVERLAP: usize = 200;
}

impl Default for EmbeddingParams {
    fn default() -> Self {
        Self {
            chunk_size: Self::DEFAULT_CHUNK_SIZE,
            chunk_overlap: Self::DEFAULT_CHUNK_OVERLAP,
            enable_partition_pdf: false,
        }
    }
}

/// The platform's `SyncStatus`; the UI spins while a bot is queued or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncStatus {
    /// Waiting for its embedding job.
    Queued,
    /// An embedding job is working on it.
    Running,
    /// Its vectors are in the store.
    Succeeded,
    /// The last embedding job failed.
    Failed,
    /// An alias whose original bot is gone.
    OriginalNotFound,
}

impl SyncStatus {
    /// The exact string the platform stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::OriginalNotFound => "ORIGINAL_NOT_FOUND",
        }
    }

    /// Parses the platform's string; unknown values give `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "QUEUED" => Self::Queued,
            "RUNNING" => Self::Running,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "ORIGINAL_NOT_FOUND" => Self::OriginalNotFound,
            _ => return None,
        })
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bot as read from the registry, with the attributes a migration needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bot {
    /// Owner and bot id.
    pub key: BotKey,
    /// The bot's title, for humans.
    pub title: String,
    /// Its sources.
    pub knowledge: Knowledge,
    /// Its chunking rules.
    pub embedding_params: EmbeddingParams,
    /// Current `SyncStatus`, when the item has one the platform knows.
    pub sync_status: Option<SyncStatus>,
    /// Current `SyncStatusReason`.
    pub sync_status_reason: Option<String>,
    /// Id of the job that last set the status (`LastExecId`).
    pub last_exec_id: Option<String>,
}

impl Bot {
    /// A bot with no knowledge and default parameters, handy for tests and the file registry.
    pub fn new(key: BotKey, title: impl Into<String>) -> Self {
        Self {
            key,
            title: title.into(),
            knowledge: Knowledge::default(),
            embedding_params: EmbeddingParams::default(),
            sync_status: None,
            sync_status_reason: None,
            last_exec_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_keys_round_trip_and_refuse_aliases() {
        let key = BotKey::new("user-1", "01HZX5Q8J6N2W4V7T9R3K1M0PB");
        let back = BotKey::from_registry_keys(key.pk(), &key.sk()).unwrap();
        assert_eq!(back, key);
        assert!(matches!(
            BotKey::from_registry_keys("u", "u#BOT_ALIAS#x"),
            Err(BotKeyError::NotABot { .. })
        ));
        assert!(matches!(
            BotKey::from_registry_keys("u", "u#CONV#x"),
            Err(BotKeyError::NotABot { .. })
        ));
        assert!(matches!(
            BotKey::from_registry_keys("u", "v#BOT#x"),
            Err(BotKeyError::OwnerMismatch { .. })
        ));
    }

    #[test]
    fn sync_status_strings_match_the_platform() {
        for s in [
            SyncStatus::Queued,
            SyncStatus::Running,
            SyncStatus::Succeeded,
            SyncStatus::Failed,
            SyncStatus::OriginalNotFound,
        ] {
            assert_eq!(SyncStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SyncStatus::parse("running"), None);
    }
}
