//! The manifest: what an export holds and how to prove each file is intact. Version 2: every
//! table of the store (the chunk table and the tables it refers to by foreign key, parents
//! first) with its whole catalog definition (columns with exact types, NOT NULL, defaults,
//! identity and serial columns, generated expressions, constraints, indexes), its sequences'
//! values, its partition key, and per file its key value or key range, row count, size,
//! SHA-256 and the store's own checksum of those rows (the row hash `verify` and `copy` use,
//! its scheme recorded, so an import can prove the rows landed unchanged). Version 1 manifests
//! (Bedrock Chat's five columns, one table) are still read.

use serde::{Deserialize, Serialize};

use ragshift_store::catalog::{SequenceState, TableDef};

/// The manifest's file name at the root of an export.
pub const MANIFEST: &str = "manifest.json";

/// The format tag and version written into every manifest.
pub const FORMAT: &str = "ragshift-export";
/// Version of the layout described here.
pub const VERSION: u32 = 2;

/// One Parquet file: the rows of one partition key value (bot, collection), or of one range
/// of a table without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the export's root (`bots/01HZ....parquet`).
    pub path: String,
    /// The table (`schema.table`, a [`TableEntry::name`]); empty in version 1.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub table: String,
    /// The partition key value (bot, collection) as text, or `None` for rows without one and
    /// for files of a table without a partition key.
    pub bot_id: Option<String>,
    /// For a table split by its primary key: the first and last key of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<KeyRange>,
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

/// The first and last primary key value (as text) of a file of a table split by size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    /// The smallest key in the file.
    pub first: String,
    /// The largest key in the file.
    pub last: String,
}

/// One table of the store, as the source's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// `schema.table`.
    pub name: String,
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub table: String,
    /// Every column, constraint and index, as `copy` reads them.
    pub definition: TableDef,
    /// The column whose values each get one file (bot, collection), if any.
    pub partition_key: Option<String>,
    /// Without a partition key: the single-column primary key whose ranges split the files by
    /// size (each file replaced on its own on import). `None` with neither: the table's files
    /// are loaded together, in one transaction.
    pub split_key: Option<String>,
    /// Where its identity and serial sequences stood.
    pub sequences: Vec<SequenceState>,
    /// Rows exported.
    pub rows: i64,
}

/// Which columns of the chunk table mean what (for the tools that need meaning: search,
/// retrieval checks); recorded as the export was configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutColumns {
    /// Chunk id.
    pub id: String,
    /// Bot (collection) column; empty when there is none.
    pub bot: String,
    /// Chunk text.
    pub content: String,
    /// Chunk source.
    pub source: String,
    /// Vector.
    pub embedding: String,
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
    /// Vector dimension of the chunk table's embedding column (0 when it has none).
    #[serde(default)]
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
    /// Every file, the tables' in [`Manifest::tables`] order (one entry per bot in version 1).
    pub files: Vec<FileEntry>,
    /// Version 2: every table, referenced tables first, the chunk table last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableEntry>,
    /// Version 2: the chunk table's columns by meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutColumns>,
}

/// The Parquet file name for a bot: the id with anything but `[A-Za-z0-9_-]` percent-encoded,
/// `_null` for rows without a bot.
pub fn file_name(bot: Option<&str>) -> String {
    let Some(bot) = bot else {
        return "bots/_null.parquet".to_owned();
    };
    format!("bots/{}.parquet", escape(bot))
}

/// The Parquet file name of part `n` of a table split by size (`schema.table`).
pub fn part_file_name(table: &str, n: usize) -> String {
    format!("tables/{}/part-{n:05}.parquet", escape(table))
}

/// `s` with anything but `[A-Za-z0-9_-]` (and a leading `_`) percent-encoded.
fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || (b == b'_' && !out.is_empty()) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
        assert_eq!(
            part_file_name("public.langchain_pg_collection", 3),
            "tables/public%2Elangchain_pg_collection/part-00003.parquet"
        );
    }
}
