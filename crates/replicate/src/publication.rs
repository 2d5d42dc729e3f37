//! The publication on the source: the chunk table and the tables it refers to by foreign key
//! (LangChain's collections), published for inserts, updates, deletes and truncates.

use ragshift_store::ident::{quote_ident, Layout};
use ragshift_store::StoreError;
use tokio_postgres::Client;

/// Creates the publication of the tables.
pub async fn create(source: &Client, name: &str, tables: &[Layout]) -> Result<(), StoreError> {
    let list: Vec<String> = tables.iter().map(Layout::qualified).collect();
    source
        .batch_execute(&format!(
            "CREATE PUBLICATION {} FOR TABLE {}",
            quote_ident(name),
            list.join(", ")
        ))
        .await
        .map_err(|e| StoreError::query(format!("creating publication {name}"), e))
}

/// Whether the publication exists.
pub async fn exists(source: &Client, name: &str) -> Result<bool, StoreError> {
    Ok(source
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
            &[&name],
        )
        .await
        .map_err(|e| StoreError::query("reading publications", e))?
        .get(0))
}

/// Drops the publication; returns whether it was there.
pub async fn drop(source: &Client, name: &str) -> Result<bool, StoreError> {
    let existed = exists(source, name).await?;
    source
        .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(name)))
        .await
        .map_err(|e| StoreError::query(format!("dropping publication {name}"), e))?;
    Ok(existed)
}
