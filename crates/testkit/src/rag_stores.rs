//! pgvector stores written, searched and extended by the real RAG libraries (langchain-postgres,
//! llama-index-vector-stores-postgres) — so tests can move a store the way users have it, and
//! then ask the library itself whether the target still works.
//!
//! The work is done by `python/rag_stores.py` in the test venv (`scripts/setup-python.sh`);
//! embeddings are deterministic hashes, nothing is downloaded. [`all_column_digest`] compares a
//! table on both sides of a move, every column included.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ragshift_testkit::rag_stores::{self, StoreKind};
//! let url = ragshift_testkit::shared_pg().fresh_database("lc");
//! let store = rag_stores::write_store(StoreKind::LangchainV1, &url)?;
//! let hits = rag_stores::library_search(StoreKind::LangchainV1, &url, rag_stores::QUERIES)?;
//! let added = rag_stores::library_add(StoreKind::LangchainV1, &url)?;
//! # drop((store, hits, added));
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};
use serde_json::Value;

/// The script that drives the libraries, built into the test binaries (a build cached from
/// another checkout must not run that checkout's copy).
const SCRIPT: &str = include_str!("../python/rag_stores.py");

/// [`SCRIPT`] written out for python to run: one file per version of the script (named by
/// its hash), written whole under a temporary name and renamed into place.
fn script_path() -> anyhow::Result<PathBuf> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(SCRIPT.as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let path = std::env::temp_dir().join(format!("ragshift-rag_stores-{name}.py"));
    if !path.exists() {
        let file = tempfile::NamedTempFile::new_in(std::env::temp_dir())
            .context("writing rag_stores.py to the temporary directory")?;
        std::fs::write(file.path(), SCRIPT)
            .context("writing rag_stores.py to the temporary directory")?;
        file.persist(&path)
            .context("writing rag_stores.py to the temporary directory")?;
    }
    Ok(path)
}

/// Queries for [`library_search`]: one plain, one non-ASCII, one matching no text in particular.
pub const QUERIES: &[&str] = &[
    "document 12 about search",
    "héllo wörld 日本語",
    "what does ragshift copy",
];

/// The kinds of store the tests move: how the libraries (or a hand-made schema) lay them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// langchain_postgres `PGVector`: `langchain_pg_collection` (3 collections, json metadata)
    /// referenced by `langchain_pg_embedding` (untyped `vector`, jsonb metadata, varchar ids).
    LangchainV1,
    /// langchain_postgres.v2 `PGVectorStore`: uuid ids, `vector(16)`, a `content_tsv` tsvector
    /// the library fills on insert (with a GIN index), metadata columns and json metadata.
    LangchainV2,
    /// LlamaIndex `PGVectorStore`, plain: `data_li_plain`, `id bigserial`, json metadata.
    LlamaIndex,
    /// LlamaIndex `PGVectorStore(hybrid_search=True)`: `data_li_hybrid` with a generated
    /// `text_search_tsv` column and its GIN index, jsonb metadata.
    LlamaIndexHybrid,
    /// LlamaIndex `PGVectorStore(use_halfvec=True)`: `data_li_halfvec` with `halfvec(16)`.
    LlamaIndexHalfvec,
    /// Plain SQL `custom_items`: serial id, uuid with a default, halfvec, sparsevec, bit,
    /// jsonb, text[], a check constraint and an hnsw index on the halfvec.
    CustomTypes,
}

impl StoreKind {
    /// Every kind, in the order the tests go through them.
    pub const ALL: [StoreKind; 6] = [
        StoreKind::LangchainV1,
        StoreKind::LangchainV2,
        StoreKind::LlamaIndex,
        StoreKind::LlamaIndexHybrid,
        StoreKind::LlamaIndexHalfvec,
        StoreKind::CustomTypes,
    ];

    /// The script's name for the kind (also fine for database names after `-` → `_`).
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::LangchainV1 => "langchain-v1",
            StoreKind::LangchainV2 => "langchain-v2",
            StoreKind::LlamaIndex => "llamaindex",
            StoreKind::LlamaIndexHybrid => "llamaindex-hybrid",
            StoreKind::LlamaIndexHalfvec => "llamaindex-halfvec",
            StoreKind::CustomTypes => "custom-types",
        }
    }

    /// Whether the store has a text search column the library searches (`add` then reports
    /// whether text search finds the new node).
    pub fn has_text_search(self) -> bool {
        matches!(self, StoreKind::LangchainV2 | StoreKind::LlamaIndexHybrid)
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One table of a written store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreTable {
    /// `schema.table`.
    pub name: String,
    /// Rows the library wrote.
    pub rows: i64,
}

/// What [`write_store`] wrote: the store's tables, referenced tables before the tables that
/// reference them, the chunk table last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenStore {
    /// The tables with their row counts.
    pub tables: Vec<StoreTable>,
}

impl WrittenStore {
    /// The chunk table (the one with the vectors): the one a single-table copy moves.
    pub fn main_table(&self) -> &StoreTable {
        // `write_store` refuses an empty table list, so there is a last one.
        &self.tables[self.tables.len() - 1]
    }

    /// All rows of all tables.
    pub fn rows(&self) -> i64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// What [`library_add`] found after the library added three rows ("added after the move N
/// zanzibarquokka") to an existing store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    /// Rows added (3).
    pub added: i64,
    /// Their ids as the library reports them.
    pub ids: Vec<String>,
    /// The library's similarity search for the first new text returns that row first.
    pub found_by_similarity: bool,
    /// The library still finds an old row (LangChain v1: in the same collection).
    pub old_rows_found: bool,
    /// For stores with text search ([`StoreKind::has_text_search`]): the library's text search
    /// for the new word finds a new row. `None` for the others.
    pub text_search_found: Option<bool>,
}

/// Writes a store of `kind` into the database at `url` (a `postgres://` URL; the database may
/// be empty — the libraries create the extension and tables) with the library itself.
///
/// # Errors
/// When the venv is missing or the library fails (the error carries its output, the password
/// masked).
pub fn write_store(kind: StoreKind, url: &str) -> anyhow::Result<WrittenStore> {
    let out = run(&["write", kind.name(), url], url)?;
    let tables = out["tables"]
        .as_array()
        .context("no tables in the script's output")?
        .iter()
        .map(|t| {
            Ok(StoreTable {
                name: t["table"]
                    .as_str()
                    .context("table without a name")?
                    .to_owned(),
                rows: t["rows"].as_i64().context("table without rows")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if tables.is_empty() {
        bail!("{kind}: the script wrote no tables");
    }
    Ok(WrittenStore { tables })
}

/// The library's own similarity search (top 5) for each query, per collection where the store
/// has collections: `[{"collection", "query", "hits": [{"id", "text", "source", "score"}]}]`.
/// Compare two sides' values to see whether a move changed what the library retrieves.
///
/// # Errors
/// As [`write_store`].
pub fn library_search(kind: StoreKind, url: &str, queries: &[&str]) -> anyhow::Result<Value> {
    if queries.is_empty() {
        bail!("library_search needs at least one query");
    }
    let mut args = vec!["search", kind.name(), url];
    args.extend_from_slice(queries);
    let mut out = run(&args, url)?;
    Ok(out["results"].take())
}

/// Lets the library add three rows to the existing store at `url` — the way an application
/// keeps using a moved store; fails when a moved table lost its sequence or defaults — then
/// searches for them (and, with text search, by a word only they contain).
///
/// # Errors
/// When the library fails to add or search (the library's error, password masked).
pub fn library_add(kind: StoreKind, url: &str) -> anyhow::Result<AddOutcome> {
    let out = run(&["add", kind.name(), url], url)?;
    let flag = |k: &str| {
        out[k]
            .as_bool()
            .with_context(|| format!("{k} missing in {out}"))
    };
    Ok(AddOutcome {
        added: out["added"].as_i64().context("added missing")?,
        ids: out["ids"]
            .as_array()
            .context("ids missing")?
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        found_by_similarity: flag("found_by_similarity")?,
        old_rows_found: flag("old_rows_found")?,
        text_search_found: out["text_search_found"].as_bool(),
    })
}

/// What the library saw in a store `ragshift rebuild` wrote ([`library_rebuilt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuiltView {
    /// The library's nearest chunks to the stored vector of the chunk asked about, nearest
    /// first, restricted to the bot where the library can: `(id, bot_id, source, text)`.
    pub hits: Vec<(String, Option<String>, Option<String>, String)>,
    /// LlamaIndex: each hit's `ref_doc_id` as the library rebuilt the node (empty otherwise).
    pub ref_doc_ids: Vec<Option<String>>,
    /// The ids of the rows the library then added to the bot.
    pub added: Vec<String>,
}

/// Opens a store `ragshift rebuild` wrote in `layout` (`langchain`, `langchain-v2`,
/// `llamaindex`; `table` as the library names it: `langchain_pg_embedding`, the v2 table,
/// `data_<name>`) with the library itself, searches by the stored vector of `chunk_id` (the id
/// as the library shows it: a uuid for v2) within `bot_id` where the library can filter (v1:
/// the bot's collection; LlamaIndex: a `bot_id` metadata filter; v2 can't filter on its JSON
/// metadata and searches the table), then adds one row to the bot the library's way.
///
/// # Errors
/// When the library fails to open, search or add (its error, password masked).
pub fn library_rebuilt(
    layout: &str,
    url: &str,
    table: &str,
    bot_id: &str,
    chunk_id: &str,
) -> anyhow::Result<RebuiltView> {
    let out = run(&["rebuilt", layout, url, table, bot_id, chunk_id], url)?;
    let s = |v: &Value| v.as_str().map(str::to_owned);
    let hits = out["hits"].as_array().context("hits missing")?;
    Ok(RebuiltView {
        hits: hits
            .iter()
            .map(|h| {
                (
                    s(&h["id"]).unwrap_or_default(),
                    s(&h["bot_id"]),
                    s(&h["source"]),
                    s(&h["text"]).unwrap_or_default(),
                )
            })
            .collect(),
        ref_doc_ids: hits.iter().map(|h| s(&h["ref_doc_id"])).collect(),
        added: out["added"]
            .as_array()
            .context("added missing")?
            .iter()
            .filter_map(s)
            .collect(),
    })
}

/// A digest of every column of every row of `qualified_table` (`schema.table`, as PostgreSQL
/// parses it): the row count and md5 over `row::text`, ordered by the primary key, or by the
/// row's text when the table has none. Equal on both sides of a move when every value arrived.
///
/// # Errors
/// When the table does not exist or the query fails.
pub async fn all_column_digest(
    client: &tokio_postgres::Client,
    qualified_table: &str,
) -> anyhow::Result<String> {
    let row = client
        .query_one(
            "SELECT format('%I.%I', n.nspname, c.relname),
                    (SELECT string_agg(format('t.%I', a.attname), ', '
                                       ORDER BY array_position(i.indkey::int2[], a.attnum))
                       FROM pg_index i
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                      WHERE i.indrelid = c.oid AND i.indisprimary)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = $1::text::regclass",
            &[&qualified_table],
        )
        .await
        .with_context(|| format!("table {qualified_table}"))?;
    let table: String = row.get(0);
    let key: Option<String> = row.get(1);
    let order = key.unwrap_or_else(|| "t::text".to_owned());
    let sql = format!(
        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) FROM {table} t"
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .with_context(|| format!("digest of {qualified_table}"))?;
    let rows: i64 = row.get(0);
    let md5: String = row.get(1);
    Ok(format!("{rows} rows, md5 {md5}"))
}

/// The test venv's Python.
fn python() -> PathBuf {
    crate::env::ragshift_home().join("venv/bin/python")
}

/// Runs the script with `args` and parses the JSON object it prints last.
fn run(args: &[&str], url: &str) -> anyhow::Result<Value> {
    let python = python();
    if !python.exists() {
        bail!(
            "{} is missing: run scripts/setup-python.sh",
            python.display()
        );
    }
    let out = Command::new(&python)
        .arg(script_path()?)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .with_context(|| format!("could not run {}", python.display()))?;
    let mask = |s: &[u8]| mask_password(&String::from_utf8_lossy(s), url);
    let what = format!("rag_stores.py {} {}", args[0], args[1]);
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            mask(&out.stdout),
            tail(&mask(&out.stderr), 40)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| {
        format!(
            "{what} printed no JSON:\n{}\n{}",
            mask(&out.stdout),
            tail(&mask(&out.stderr), 40)
        )
    })
}

/// `text` with the password of `url` replaced by `***`, so errors can be shown whole.
fn mask_password(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw)
        .filter(|pw| !pw.is_empty());
    match password {
        Some(pw) => text.replace(pw, "***"),
        None => text.to_owned(),
    }
}

/// The last `n` lines of `text` (a Python traceback ends with the error).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_password_only() {
        assert_eq!(
            mask_password(
                "could not connect to postgres://u:s3cr%t@h/db as u",
                "postgres://u:s3cr%t@h/db"
            ),
            "could not connect to postgres://u:***@h/db as u"
        );
        assert_eq!(mask_password("no pw", "postgres://u@h/db"), "no pw");
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let names: std::collections::HashSet<_> = StoreKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), StoreKind::ALL.len());
    }
}
