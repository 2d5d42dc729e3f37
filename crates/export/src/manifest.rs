//! The manifest: what an export holds and how to prove each file is intact — schema, vector
//! dimension, model when known, and per file its bot, row count, size, SHA-256 and the store's
//! own per-bot checksum (the same SQL checksum `verify` and `copy` use, so an import can prove
//! the rows landed unchanged).

use serde::{Deserialize, Serialize};

/// The manifest's file name at the root of an export.
pub const MANIFEST: &str = "manifest.json";

/// The format tag and version written into every manifest.
pub const FORMAT: &str = "ragshift-export";
/// Version of the layout described here.
pub const VERSION: u32 = 1;

/// One Parquet file: the rows of one bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the export's root (`bots/01HZ....parquet`).
    pub path: String,
    /// The bot, or `None` for rows without a bot id.
    pub bot_id: Option<String>,
    /// Rows in the file.
    pub rows: i64,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The store's checksum of these rows (`ragshift_store::checksum`), for the proof after
    /// import.
    pub checksum: String,
}

/// What an export holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] of the writer.
    pub version: u32,
    /// Unix time of the export.
    pub created_at: u64,
    /// The server exported (password masked).
    pub source: String,
    /// The table exported (`public.items`).
    pub table: String,
    /// Column names in the source table, in the Parquet files' order
    /// (id, bot, content, source, embedding).
    pub columns: Vec<String>,
    /// The source table's shape as the catalog prints it.
    pub shape: String,
    /// Vector dimension.
    pub dimension: usize,
    /// The embedding model, when the user said.
    pub model: Option<String>,
    /// How the files' `checksum`s were computed (`ragshift_store::checksum::SCHEME`); an import
    /// compares them only when it computes the same way. Empty in manifests written before the
    /// field existed.
    #[serde(default)]
    pub checksum_scheme: String,
    /// Rows in all files.
    pub rows: i64,
    /// One entry per bot.
    pub files: Vec<FileEntry>,
}

/// The Parquet file name for a bot: the id with anything but `[A-Za-z0-9_-]` percent-encoded,
/// `_null` for rows without a bot.
pub fn file_name(bot: Option<&str>) -> String {
    let Some(bot) = bot else {
        return "bots/_null.parquet".to_owned();
    };
    let mut s = String::from("bots/");
    for b in bot.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || (b == b'_' && !s.ends_with('/')) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str(".parquet");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_file_names_are_safe_and_distinct() {
        assert_eq!(file_name(Some("01HZX5Q8J6")), "bots/01HZX5Q8J6.parquet");
        assert_eq!(file_name(Some("../x/y")), "bots/%2E%2E%2Fx%2Fy.parquet");
        assert_eq!(file_name(None), "bots/_null.parquet");
        assert_ne!(file_name(Some("_null")), file_name(None));
    }
}
