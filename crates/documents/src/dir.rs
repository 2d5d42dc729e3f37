//! Documents in a local folder with the bucket's layout
//! (`{root}/{user}/{bot}/documents/{filename}`), e.g. an `aws s3 sync` of the bucket. The chunk
//! `source` of a local document is its path.
//!
//! Only plain files inside the bot's folder are read: a symbolic link (the document itself or a
//! folder on the way below the root), a folder or a device is refused, and a file larger than
//! the size limit is refused from its metadata, never read past the limit.

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ragshift_model::BotKey;

use crate::error::DocumentError;
use crate::store::{check_names, printable, Document, DocumentInfo, DocumentStore};

/// Documents under a directory.
#[derive(Debug, Clone)]
pub struct DirDocuments {
    root: PathBuf,
    max_bytes: u64,
}

impl DirDocuments {
    /// A store rooted at `root`, with no size limit.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            max_bytes: u64::MAX,
        }
    }

    /// Refuses documents larger than `max_bytes` (`ingest.max_bytes`).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
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
        check_names(key, filename)?;
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
        self.root
            .join(&*printable(&key.user_id))
            .join(&*printable(&key.bot_id))
            .join("documents")
            .join(&*printable(filename))
            .display()
            .to_string()
    }

    async fn get(&self, key: &BotKey, filename: &str) -> Result<Document, DocumentError> {
        let path = self.path(key, filename)?;
        let (root, bot_dir, limit) = (self.root.clone(), self.bot_dir(key), self.max_bytes);
        let (k, name) = (key.clone(), filename.to_owned());
        let job = tokio::task::spawn_blocking(move || {
            read_plain_file(&root, &bot_dir, &path, limit, &k, &name)
        });
        match job.await {
            Ok(r) => r,
            Err(e) => Err(DocumentError::Read {
                key: key.clone(),
                message: format!("reading {}: {e}", self.source_uri(key, filename)),
                retryable: false,
            }),
        }
    }
}

/// Reads `path` if it is a plain file (not a link) in `bot_dir`, whose real location is
/// `bot_dir` below the real `root`, and not larger than `limit`.
fn read_plain_file(
    root: &Path,
    bot_dir: &Path,
    path: &Path,
    limit: u64,
    key: &BotKey,
    filename: &str,
) -> Result<Document, DocumentError> {
    let source_uri = path.display().to_string();
    let refused = |reason: String| DocumentError::Refused {
        key: key.clone(),
        filename: filename.to_owned(),
        reason,
    };
    let io_err = |what: &str, e: std::io::Error| DocumentError::Read {
        key: key.clone(),
        message: format!("{what} {source_uri}: {e}"),
        retryable: false,
    };
    let missing = || DocumentError::Missing {
        key: key.clone(),
        filename: filename.to_owned(),
        source_uri: source_uri.clone(),
    };
    // The folders below the root must be real folders, not links leading elsewhere.
    let real_root = std::fs::canonicalize(root).map_err(|e| io_err("resolving", e))?;
    let relative = bot_dir.strip_prefix(root).unwrap_or(bot_dir);
    match std::fs::canonicalize(bot_dir) {
        Ok(real) if real == real_root.join(relative) => {}
        Ok(real) => {
            return Err(refused(format!(
                "its folder {} is, or passes through, a symbolic link (to {}); ragshift reads only files inside the documents folder",
                bot_dir.display(),
                real.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(io_err("resolving", e)),
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(io_err("reading", e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refused(format!(
            "{source_uri} is a symbolic link; ragshift reads only plain files (copy the file into the folder instead)"
        )));
    }
    if !meta.is_file() {
        return Err(refused(format!(
            "{source_uri} is not a plain file (a folder, device or pipe)"
        )));
    }
    let too_large = || DocumentError::TooLarge {
        key: key.clone(),
        filename: filename.to_owned(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(|e| io_err("reading", e))?;
    let opened = file.metadata().map_err(|e| io_err("reading", e))?;
    if !same_file(&meta, &opened) {
        return Err(refused(format!(
            "{source_uri} was replaced while it was being opened"
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_err("reading", e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(Document { source_uri, bytes })
}

/// Whether two metadata describe the same file (the one checked and the one opened).
#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    b.is_file()
}
