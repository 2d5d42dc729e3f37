//! An independent comparison of a migrated table with its source, row by row, by the server's
//! own text form of every column: what the fault trials prove their result with, without
//! trusting anything ragshift computes.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context as _;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// A query giving every row of `table` as its key and a hash of every column (the row's text
/// form), for [`row_diff`].
pub fn all_columns(table: &str, key: &str) -> String {
    format!("SELECT {key}::text, md5(t::text) FROM {table} t")
}

/// How a target differs from its source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowDiff {
    /// Keys of source rows missing on the target or different there.
    pub lost: BTreeSet<String>,
    /// Target rows beyond the source's: keys the source lacks, and second copies.
    pub extra: u64,
}

/// Runs `rows_sql` (key text, hash text; e.g. [`all_columns`]) on both sides and compares.
/// A target without the table counts as empty.
pub async fn row_diff(source: &Client, target: &Client, rows_sql: &str) -> anyhow::Result<RowDiff> {
    let src: HashMap<String, String> = source
        .query(rows_sql, &[])
        .await
        .context("reading the source's rows")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let tgt: Vec<(String, String)> = match target.query(rows_sql, &[]).await {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Vec::new(),
        Err(e) => return Err(e).context("reading the target's rows"),
    };
    let mut seen = BTreeSet::new();
    let mut extra = 0;
    for (key, hash) in &tgt {
        match src.get(key) {
            Some(h) if h == hash => {
                if !seen.insert(key.clone()) {
                    extra += 1;
                }
            }
            Some(_) => {}
            None => extra += 1,
        }
    }
    let lost = src.keys().filter(|k| !seen.contains(*k)).cloned().collect();
    Ok(RowDiff { lost, extra })
}
