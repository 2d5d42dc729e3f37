//! The [`DocumentStore`] trait: list a bot's uploaded files with their sizes without
//! downloading them, and fetch one file's bytes for the ingestion worker.

use async_trait::async_trait;
use ragshift_model::BotKey;
use serde::Serialize;

use crate::error::DocumentError;

/// One stored file of a bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentInfo {
    /// The file name (the part after `documents/`).
    pub filename: String,
    /// Size in bytes.
    pub bytes: u64,
    /// The chunk `source` the platform records: `s3://bucket/key` or the file path.
    pub source_uri: String,
}

/// A fetched file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The chunk `source` to record.
    pub source_uri: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// A bot's files as the registry names them, matched against the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BotDocuments {
    /// Files present, in the order of the bot's `Knowledge.filenames`.
    pub found: Vec<DocumentInfo>,
    /// Names in `Knowledge.filenames` that the store doesn't have.
    pub missing: Vec<String>,
}

impl BotDocuments {
    /// Total bytes of the files present.
    pub fn bytes(&self) -> u64 {
        self.found.iter().map(|d| d.bytes).sum()
    }
}

/// Where uploaded files live: `{user_id}/{bot_id}/documents/{filename}` in a bucket or folder.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Names the store for messages: `s3://bucket`, `directory ./documents`.
    fn describe(&self) -> String;

    /// Checks that the store can be read at all (the bucket or folder exists and is
    /// accessible), so a wrong name stops a command before any per-bot work.
    async fn check(&self) -> Result<(), DocumentError>;

    /// Every file under the bot's `documents/` prefix, with sizes; nothing is downloaded.
    async fn list(&self, key: &BotKey) -> Result<Vec<DocumentInfo>, DocumentError>;

    /// The chunk `source` of `filename` of bot `key`.
    fn source_uri(&self, key: &BotKey, filename: &str) -> String;

    /// Fetches one file; [`DocumentError::Missing`] when it isn't there.
    async fn get(&self, key: &BotKey, filename: &str) -> Result<Document, DocumentError>;

    /// Matches the bot's `Knowledge.filenames` against [`DocumentStore::list`].
    async fn bot_documents(
        &self,
        key: &BotKey,
        filenames: &[String],
    ) -> Result<BotDocuments, DocumentError> {
        if filenames.is_empty() {
            return Ok(BotDocuments::default());
        }
        let listed = self.list(key).await?;
        let mut out = BotDocuments::default();
        for name in filenames {
            match listed.iter().find(|d| d.filename == *name) {
                Some(d) => out.found.push(d.clone()),
                None => out.missing.push(name.clone()),
            }
        }
        Ok(out)
    }
}

/// The folder of a bot's documents, relative to the bucket or directory root.
pub fn bot_prefix(key: &BotKey) -> String {
    format!("{}/{}/documents/", key.user_id, key.bot_id)
}

/// A file name as shown in a `source`: control characters (a NUL from a hostile registry item)
/// escaped, since PostgreSQL text and JSON can't hold some of them and a terminal shouldn't get
/// them.
pub(crate) fn printable(filename: &str) -> std::borrow::Cow<'_, str> {
    if filename.chars().any(char::is_control) {
        std::borrow::Cow::Owned(
            filename
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_unicode().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(filename)
    }
}

/// Refuses a file name, owner id or bot id that could lead out of the bot's folder (`..`, `/`,
/// a backslash) or can't be a file name at all (empty, a NUL byte).
pub(crate) fn check_names(key: &BotKey, filename: &str) -> Result<(), DocumentError> {
    let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']);
    if plain(filename) && plain(&key.user_id) && plain(&key.bot_id) {
        Ok(())
    } else {
        Err(DocumentError::InvalidName {
            key: key.clone(),
            filename: filename.to_owned(),
        })
    }
}
