//! The platform's retrieval query, `WHERE botid = $1 ORDER BY embedding <-> $2 LIMIT k`, with
//! pgvector 0.8's iterative index scans turned on so that a filtered query still returns k rows
//! when the bot has at least k (an approximate index would otherwise stop early).

use pgvector::Vector;
use serde::Serialize;
use tokio_postgres::Client;

use crate::ident::{quote_ident, Layout};
use crate::schema::vector_version;
use crate::StoreError;

/// One result, ranked from 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// 1 for the nearest chunk.
    pub rank: usize,
    /// Chunk id.
    pub id: String,
    /// Chunk source.
    pub source: String,
    /// Chunk text.
    pub content: String,
    /// L2 distance to the query.
    pub distance: f64,
}

fn at_least_0_8(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (0, 8)
}

/// Runs the platform's query for `bot_id` and returns up to `limit` nearest chunks.
pub async fn search(
    client: &mut Client,
    layout: &Layout,
    bot_id: &str,
    query: &[f32],
    limit: i64,
) -> Result<Vec<SearchHit>, StoreError> {
    let version = vector_version(client).await?.unwrap_or_default();
    let tx = client
        .transaction()
        .await
        .map_err(|e| StoreError::query("starting a transaction", e))?;
    if at_least_0_8(&version) {
        tx.batch_execute(
            "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL ivfflat.iterative_scan = relaxed_order;",
        )
        .await
        .map_err(|e| StoreError::query("enabling iterative index scans", e))?;
    }
    // Relaxed order may return neighbours slightly out of order; re-sorting the materialised
    // candidates restores the exact order the platform expects.
    let sql = format!(
        "WITH hits AS MATERIALIZED (
            SELECT {id}::text AS id, {source} AS source, {content} AS content,
                   {emb} <-> $2 AS distance
              FROM {table}
             WHERE {bot} = $1
             ORDER BY {emb} <-> $2
             LIMIT $3)
         SELECT id, coalesce(source, ''), coalesce(content, ''), distance FROM hits ORDER BY distance",
        id = quote_ident(&layout.id),
        source = quote_ident(&layout.source),
        content = quote_ident(&layout.content),
        emb = quote_ident(&layout.embedding),
        bot = quote_ident(&layout.bot),
        table = layout.qualified(),
    );
    let rows = tx
        .query(&sql, &[&bot_id, &Vector::from(query.to_vec()), &limit])
        .await
        .map_err(|e| StoreError::query(format!("searching bot {bot_id}"), e))?;
    tx.commit()
        .await
        .map_err(|e| StoreError::query("ending the search transaction", e))?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, r)| SearchHit {
            rank: i + 1,
            id: r.get::<_, String>(0).trim_end().to_owned(),
            source: r.get(1),
            content: r.get(2),
            distance: r.get(3),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn iterative_scan_needs_0_8() {
        assert!(super::at_least_0_8("0.8.0"));
        assert!(super::at_least_0_8("1.0"));
        assert!(!super::at_least_0_8("0.7.4"));
    }
}
