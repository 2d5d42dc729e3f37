//! Per-bot row counts and checksums computed inside PostgreSQL, so that two stores can be
//! compared without moving their rows: every column goes into a per-row SHA-256 (vectors in their
//! binary send form, which is cheaper than text and exact), and the rows' hashes are summed
//! (in PostgreSQL's 128-bit accumulator for `bigint`, so exactly and without overflow),
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
    /// Sum of the rows' 64-bit hashes ([`SCHEME`]), as a decimal string.
    pub checksum: String,
}

/// How a NULL bot id or row id is shown and grouped: checksums group the rows whose bot id is
/// NULL under this name, and row lists name a row whose id is NULL by it, so such rows are
/// reported rather than crashed on. (A bot really named `<NULL>` would share the group; the row
/// hash still tells a NULL from that text.)
pub const NULL_KEY: &str = "<NULL>";

/// SQL for a key column (bot or id) as text: trailing blanks of `character(n)` removed, NULL
/// as [`NULL_KEY`].
pub fn key_text_sql(column: &str) -> String {
    format!(
        "coalesce(rtrim({}::text), '{NULL_KEY}')",
        quote_ident(column)
    )
}

/// Names the per-row hash below, so that a checksum recorded by one ragshift (an export's
/// manifest) is only ever compared with one computed the same way.
pub const SCHEME: &str = "sha256-row-v2";

/// SQL for one row's 64-bit hash as `bigint`: one SHA-256 over a bitmap of the NULL columns,
/// each text column as its character count and UTF-8 bytes (the count delimits it, UTF-8 being
/// self-delimiting per character), and the vector's binary send form last (it needs no length).
///
/// Every column is read once and hashed once: building one buffer with the vector at its end
/// copies it once, where hashing each column apart costs a SHA-256 set-up per column and
/// length-prefixing the vector would compute its send form twice.
pub fn row_hash_sql(layout: &Layout) -> String {
    let id = quote_ident(&layout.id);
    let bot = quote_ident(&layout.bot);
    let content = quote_ident(&layout.content);
    let source = quote_ident(&layout.source);
    let embedding = quote_ident(&layout.embedding);
    let nulls = format!(
        "int4send(({id} IS NULL)::int + 2 * ({bot} IS NULL)::int + 4 * ({content} IS NULL)::int \
         + 8 * ({source} IS NULL)::int + 16 * ({embedding} IS NULL)::int)"
    );
    let text = |col: &str| {
        format!(
            "coalesce(int4send(char_length({col}::text)) || convert_to({col}::text, 'UTF8'), '')"
        )
    };
    // SHA-256 rather than MD5: PostgreSQL computes both through OpenSSL, where SHA-256 uses the
    // CPU's SHA extensions and runs about twice as fast over the ~4 KB of a 1024-d vector.
    format!(
        "('x' || encode(substr(sha256({nulls} || {} || {} || {} || {} || coalesce(vector_send({embedding}), '')), 1, 8), 'hex'))::bit(64)::bigint",
        text(&id),
        text(&bot),
        text(&content),
        text(&source),
    )
}

/// Per-bot counts and checksums, optionally for some bots only, ordered by bot id.
pub async fn bot_checksums(
    client: &impl GenericClient,
    layout: &Layout,
    bots: Option<&[String]>,
) -> Result<Vec<BotChecksum>, StoreError> {
    let bot = key_text_sql(&layout.bot);
    let filter = if bots.is_some() {
        format!("WHERE {bot} = ANY($1)")
    } else {
        "WHERE $1::text[] IS NULL".to_owned()
    };
    let sql = format!(
        "SELECT {bot}, count(*), sum({hash})::text FROM {table} {filter} GROUP BY 1 ORDER BY 1",
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
            bot_id: r
                .get::<_, Option<String>>(0)
                .unwrap_or_else(|| NULL_KEY.to_owned()),
            rows: r.get(1),
            checksum: r.get::<_, Option<String>>(2).unwrap_or_default(),
        })
        .collect())
}

/// Each row's id and hash for one bot, ordered by id: to find which rows differ once the bot's
/// checksums disagree. A NULL id comes back as [`NULL_KEY`]; [`NULL_KEY`] as `bot_id` selects
/// the rows whose bot id is NULL.
pub async fn row_hashes(
    client: &impl GenericClient,
    layout: &Layout,
    bot_id: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let sql = format!(
        "SELECT {id}, ({hash})::text FROM {table} WHERE {bot} = $1 ORDER BY 1, 2",
        id = key_text_sql(&layout.id),
        bot = key_text_sql(&layout.bot),
        hash = row_hash_sql(layout),
        table = layout.qualified(),
    );
    let rows = client
        .query(&sql, &[&bot_id.trim_end()])
        .await
        .map_err(|e| StoreError::query(format!("hashing rows of bot {bot_id}"), e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let id: Option<String> = r.get(0);
            let hash: Option<String> = r.get(1);
            (
                id.unwrap_or_else(|| NULL_KEY.to_owned()),
                hash.unwrap_or_default(),
            )
        })
        .collect())
}
