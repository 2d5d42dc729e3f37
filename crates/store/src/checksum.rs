//! Per-bot row counts and checksums computed inside PostgreSQL, so that two stores can be
//! compared without moving their rows: every column goes into a per-row SHA-256 (vectors in their
//! binary send form, which is cheaper than text and exact), and the rows' hashes are summed,
//! which makes the result independent of row order and of the plan PostgreSQL picks.

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::ident::{quote_ident, Layout};
use crate::StoreError;

/// Count and checksum of one bot's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BotChecksum {
    /// Bot id (trailing blanks of `character(n)` removed).
    pub bot_id: String,
    /// Rows of the bot.
    pub rows: i64,
    /// Sum of the rows' 64-bit hashes, as a decimal string.
    pub checksum: String,
}

/// SQL for one row's 64-bit hash as `numeric`: each column length-prefixed (NULL as length -1)
/// so that no two different rows can encode the same bytes.
pub fn row_hash_sql(layout: &Layout) -> String {
    let field = |col: &str, bytes: String| {
        format!(
            "coalesce(int4send(octet_length({bytes})) || {bytes}, int4send(-1))",
            bytes = bytes.replace("{c}", &quote_ident(col))
        )
    };
    let parts = [
        field(&layout.id, "convert_to({c}::text, 'UTF8')".into()),
        field(&layout.bot, "convert_to({c}::text, 'UTF8')".into()),
        field(&layout.content, "convert_to({c}::text, 'UTF8')".into()),
        field(&layout.source, "convert_to({c}::text, 'UTF8')".into()),
        field(&layout.embedding, "vector_send({c})".into()),
    ];
    // SHA-256 rather than MD5: PostgreSQL computes both through OpenSSL, where SHA-256 uses the
    // CPU's SHA extensions and runs about twice as fast over the ~5 KB rows of 1024-d vectors.
    format!(
        "('x' || encode(substr(sha256({}), 1, 8), 'hex'))::bit(64)::bigint::numeric",
        parts.join(" || ")
    )
}

/// Per-bot counts and checksums, optionally for some bots only, ordered by bot id.
pub async fn bot_checksums(
    client: &impl GenericClient,
    layout: &Layout,
    bots: Option<&[String]>,
) -> Result<Vec<BotChecksum>, StoreError> {
    let bot = quote_ident(&layout.bot);
    let filter = if bots.is_some() {
        format!("WHERE rtrim({bot}::text) = ANY($1)")
    } else {
        "WHERE $1::text[] IS NULL".to_owned()
    };
    let sql = format!(
        "SELECT rtrim({bot}::text), count(*), sum({hash})::text FROM {table} {filter} GROUP BY 1 ORDER BY 1",
        hash = row_hash_sql(layout),
        table = layout.qualified(),
    );
    let wanted: Option<Vec<String>> =
        bots.map(|b| b.iter().map(|s| s.trim_end().to_owned()).collect());
    let rows = client
        .query(&sql, &[&wanted])
        .await
        .map_err(|e| StoreError::query(format!("checksumming {}", layout.display_name()), e))?;
    Ok(rows
        .iter()
        .map(|r| BotChecksum {
            bot_id: r.get::<_, Option<String>>(0).unwrap_or_default(),
            rows: r.get(1),
            checksum: r.get::<_, Option<String>>(2).unwrap_or_default(),
        })
        .collect())
}

/// Each row's id and hash for one bot, ordered by id: to find which rows differ once the bot's
/// checksums disagree.
pub async fn row_hashes(
    client: &impl GenericClient,
    layout: &Layout,
    bot_id: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let sql = format!(
        "SELECT rtrim({id}::text), ({hash})::text FROM {table} WHERE rtrim({bot}::text) = $1 ORDER BY 1",
        id = quote_ident(&layout.id),
        bot = quote_ident(&layout.bot),
        hash = row_hash_sql(layout),
        table = layout.qualified(),
    );
    let rows = client
        .query(&sql, &[&bot_id.trim_end()])
        .await
        .map_err(|e| StoreError::query(format!("hashing rows of bot {bot_id}"), e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
