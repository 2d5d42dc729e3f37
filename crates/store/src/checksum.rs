//! Per-bot row counts and checksums computed inside PostgreSQL, so that two stores can be
//! compared without moving their rows: every column of the table (not only the ones the layout
//! maps) goes into a per-row SHA-256 in its binary send form, which is exact and cheaper than
//! text, and the rows' hashes are summed
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
    key_text_of(&quote_ident(column))
}

/// [`key_text_sql`] of an SQL expression (e.g. [`Layout::bot_sql`]).
pub fn key_text_of(expr: &str) -> String {
    format!("coalesce(rtrim({expr}::text), '{NULL_KEY}')")
}

/// Names the per-row hash below, so that a checksum recorded by one ragshift (an export's
/// manifest) is only ever compared with one computed the same way.
/// v3: every column of the table, not only the five the layout maps.
pub const SCHEME: &str = "sha256-allcols-v3";

/// One column as the row hash reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashColumn {
    /// Column name.
    pub name: String,
    /// The type's binary send function (`int8send`, `jsonb_send`, `halfvec_send`), as
    /// `regproc` prints it; `None` for a type without one (hashed by its text form).
    pub send: Option<String>,
    /// Whether the send form carries its own length (pgvector's types start with their
    /// dimensions), so none is prefixed.
    pub self_delimiting: bool,
}

/// Every column of `layout`'s table, by name (so two tables with the same columns in another
/// order hash alike), with how each is hashed. An error names the table when it doesn't exist.
pub async fn hash_columns(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Vec<HashColumn>, StoreError> {
    let rows = client
        .query(
            "SELECT a.attname::text,
                    CASE WHEN t.typsend <> 0 THEN t.typsend::regproc::text END,
                    t.typname::text IN ('vector', 'halfvec', 'sparsevec')
               FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attname COLLATE \"C\"",
            &[&layout.qualified()],
        )
        .await
        .map_err(|e| {
            StoreError::query(
                format!("reading the columns of {}", layout.display_name()),
                e,
            )
        })?;
    if rows.is_empty() {
        return Err(StoreError::new(
            crate::StoreErrorKind::ShapeMismatch,
            format!(
                "table {} does not exist (or has no columns)",
                layout.display_name()
            ),
        ));
    }
    Ok(rows
        .iter()
        .map(|r| HashColumn {
            name: r.get(0),
            send: r.get(1),
            self_delimiting: r.get(2),
        })
        .collect())
}

/// SQL for one row's 64-bit hash as `bigint`: one SHA-256 over every column in name order, each
/// as a marker byte (NULL or not), then its binary send form (the text form for a type without
/// one) prefixed by its length, except pgvector's types, whose send form starts with their
/// dimensions and so delimits itself. Binary forms are exact (no float formatting) and don't
/// depend on session settings (time zone, `extra_float_digits`, `bytea_output`).
pub fn row_hash_sql(columns: &[HashColumn]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let col = quote_ident(&c.name);
            let sent = match &c.send {
                Some(f) => format!("{f}({col})"),
                None => format!("textsend({col}::text)"),
            };
            let body = if c.self_delimiting {
                sent
            } else {
                format!("int4send(octet_length({sent})) || {sent}")
            };
            format!("coalesce('\\x01'::bytea || {body}, '\\x00'::bytea)")
        })
        .collect();
    // SHA-256 rather than MD5: PostgreSQL computes both through OpenSSL, where SHA-256 uses the
    // CPU's SHA extensions and runs about twice as fast over the ~4 KB of a 1024-d vector.
    format!(
        "('x' || encode(substr(sha256({}), 1, 8), 'hex'))::bit(64)::bigint",
        parts.join(" || ")
    )
}

/// Each column of the row with `id` (as [`key_text_sql`] prints ids) as an MD5 of its send form
/// (`None` for NULL), in [`hash_columns`] order: to name the columns of a row that differ.
/// Empty when no such row exists.
pub async fn column_digests(
    client: &impl GenericClient,
    layout: &Layout,
    id: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let columns = hash_columns(client, layout).await?;
    let exprs: Vec<String> = columns
        .iter()
        .map(|c| {
            let col = quote_ident(&c.name);
            match &c.send {
                Some(f) => format!("md5({f}({col}))"),
                None => format!("md5({col}::text)"),
            }
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = $1 LIMIT 1",
        exprs.join(", "),
        layout.qualified(),
        key_text_sql(&layout.id)
    );
    let row = client
        .query_opt(&sql, &[&id])
        .await
        .map_err(|e| StoreError::query(format!("reading the columns of row {id}"), e))?;
    Ok(match row {
        Some(r) => columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), r.get::<_, Option<String>>(i)))
            .collect(),
        None => Vec::new(),
    })
}

/// Row count and checksum of a whole table (every column, [`SCHEME`]): for tables without a bot
/// column, such as the collections a chunk table refers to.
pub async fn table_checksum(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<(i64, String), StoreError> {
    let columns = hash_columns(client, layout).await?;
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum({})::text, '0') FROM {}",
                row_hash_sql(&columns),
                layout.qualified()
            ),
            &[],
        )
        .await
        .map_err(|e| StoreError::query(format!("checksumming {}", layout.display_name()), e))?;
    Ok((row.get(0), row.get(1)))
}

/// Per-bot counts and checksums, optionally for some bots only, ordered by bot id.
pub async fn bot_checksums(
    client: &impl GenericClient,
    layout: &Layout,
    bots: Option<&[String]>,
) -> Result<Vec<BotChecksum>, StoreError> {
    let bot = key_text_of(&layout.bot_sql());
    let filter = if bots.is_some() {
        format!("WHERE {bot} = ANY($1)")
    } else {
        "WHERE $1::text[] IS NULL".to_owned()
    };
    let columns = hash_columns(client, layout).await?;
    let sql = format!(
        "SELECT {bot}, count(*), sum({hash})::text FROM {table} {filter} GROUP BY 1 ORDER BY 1",
        hash = row_hash_sql(&columns),
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
    let columns = hash_columns(client, layout).await?;
    let sql = format!(
        "SELECT {id}, ({hash})::text FROM {table} WHERE {bot} = $1 ORDER BY 1, 2",
        id = key_text_sql(&layout.id),
        bot = key_text_of(&layout.bot_sql()),
        hash = row_hash_sql(&columns),
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
