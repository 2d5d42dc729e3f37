//! Documents in a local folder with the bucket's layout
//! (`{root}/{user}/{bot}/documents/{filename}`), e.g. an `aws s3 sync` of the bucket. The chunk
//! `source` of a local document is its path.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ragshift_model::BotKey;

use crate::error::DocumentError;
use crate::store::{Document, DocumentInfo, DocumentStore};

/// Documents under a directory.
#[derive(Debug, Clone)]
pub struct DirDocuments {
    root: PathBuf,
}

impl DirDocuments {
    /// A store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bot_dir(&self, key: &BotKey) -> PathBuf {
        self.root
            .join(&key.user_id)
            .join(&key.bot_id)
            .join("documents")
    }

    fn path(&self, key: &BotKey, filename: &str) -> Result<PathBuf, DocumentError> {
        let plain = !filename.is_empty()
            && filename != "."
            && filename != ".."
            && !filename.contains(['/', '\\', '\0']);
        let ids_plain = [&key.user_id, &key.bot_id]
            .iter()
            .all(|s| !s.is_empty() && *s != ".." && !s.contains(['/', '\\', '\0']));
        if !plain || !ids_plain {
            return Err(DocumentError::InvalidName {
                key: key.clone(),
                filename: filename.to_owned(),
            });
        }
        Ok(self.bot_dir(key).join(filename))
    }
}

#[async_trait]
impl DocumentStore for DirDocuments {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    async fn check(&self) -> Result<(), DocumentError> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(DocumentError::Store(format!(
                "documents folder {} is not a directory; set [documents] path (--documents-dir)",
                self.root.display()
            ))),
            Err(e) => Err(DocumentError::Store(format!(
                "documents folder {}: {e}; set [documents] path (--documents-dir) or [documents] kind = \"s3\"",
                self.root.display()
            ))),
        }
    }

    async fn list(&self, key: &BotKey) -> Result<Vec<DocumentInfo>, DocumentError> {
        // Owner and bot ids come from the registry: they must not lead out of the root either.
        self.path(key, "placeholder")?;
        let dir = self.bot_dir(key);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            // No folder: the bot has no documents here; its files are reported missing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(DocumentError::Read {
                    key: key.clone(),
                    message: format!("listing {}: {e}", dir.display()),
                    retryable: false,
                })
            }
        };
        let mut out = Vec::new();
        let read_err = |e: std::io::Error| DocumentError::Read {
            key: key.clone(),
            message: format!("listing {}: {e}", dir.display()),
            retryable: false,
        };
        while let Some(entry) = entries.next_entry().await.map_err(read_err)? {
            let meta = entry.metadata().await.map_err(read_err)?;
            if !meta.is_file() {
                continue;
            }
            let path = entry.path();
            out.push(DocumentInfo {
                filename: entry.file_name().to_string_lossy().into_owned(),
                bytes: meta.len(),
                source_uri: path.display().to_string(),
            });
        }
        out.sort_by(|a, b| a.filename.cmp(&b.filename));
        Ok(out)
    }

    fn source_uri(&self, key: &BotKey, filename: &str) -> String {
        self.bot_dir(key).join(filename).display().to_string()
    }

    async fn get(&self, key: &BotKey, filename: &str) -> Result<Document, DocumentError> {
        let path = self.path(key, filename)?;
        let source_uri = path.display().to_string();
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Document { source_uri, bytes }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DocumentError::Missing {
                key: key.clone(),
                filename: filename.to_owned(),
                source_uri,
            }),
            Err(e) => Err(DocumentError::Read {
                key: key.clone(),
                message: format!("reading {source_uri}: {e}"),
                retryable: false,
            }),
        }
    }
}
