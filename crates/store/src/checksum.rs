//! Per-bot row counts and checksums computed inside PostgreSQL, so that two stores can be
//! compared without moving their rows: every column of the table (not only the ones the layout
//! maps) goes into a per-row SHA-256 in its binary send form, which is exact and cheaper than
//! text, and the rows' hashes are summed
//! (in PostgreSQL's 128-bit accumulator for `bigint`, so exactly and without overflow),
//! which makes the result independent of row order and of the plan PostgreSQL picks.

use std::cmp::Ordering;
use std::pin::pin;

use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use crate::ident::{quote_ident, quote_literal, Layout};
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
    let doing = format!("checksumming {}", layout.display_name());
    filtered_checksum(client, layout, "TRUE", &[], doing).await
}

/// Row count and checksum (every column, [`SCHEME`]) of the rows of `layout` that `filter` (an
/// SQL condition over its columns, with `params`) selects; `(0, "0")` when none does. The one
/// query behind a whole table's, one bot's and one imported group's proof, so that all of
/// them compare equal with what the export and `verify` computed. `doing` names the query in
/// its error.
pub async fn filtered_checksum(
    client: &impl GenericClient,
    layout: &Layout,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
    doing: impl std::fmt::Display,
) -> Result<(i64, String), StoreError> {
    let columns = hash_columns(client, layout).await?;
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum({})::text, '0') FROM {} WHERE {filter}",
                row_hash_sql(&columns),
                layout.qualified()
            ),
            params,
        )
        .await
        .map_err(|e| StoreError::query(doing, e))?;
    Ok((row.get(0), row.get(1)))
}

/// How rows are grouped for comparison. A table with a bot (collection) column is compared per
/// bot. One without (LlamaIndex's, LangChain v2's, a hand-made table) is compared per range of
/// its id, cut where the source's ids are (see [`id_ranges`]), so that a difference is found in,
/// and explained from, one range's rows rather than the whole table's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// By the layout's bot column (`''` for every row when it has none).
    Bot,
    /// By id range: `bounds` (text forms, ascending, distinct) cut the ids of type `id_type`
    /// into `bounds.len() + 1` ranges, each named by its label.
    IdRanges {
        /// The id column's type, as `format_type` prints it.
        id_type: String,
        /// Where one range ends and the next begins (the next range starts at the bound).
        bounds: Vec<String>,
    },
}

/// Rows per id range that [`id_ranges`] aims at: few enough that explaining a differing range
/// reads little, many enough that a table has few ranges.
pub const ROWS_PER_RANGE: i64 = 50_000;

/// Ids sampled, at most, to place the range bounds.
const BOUND_SAMPLE: i64 = 200_000;

/// The grouping for `layout`'s table: [`Grouping::Bot`] when it has a bot column, else id ranges
/// of about [`ROWS_PER_RANGE`] rows cut at quantiles of a sample of the ids (any bounds give a
/// correct comparison; even ones keep each range small). Text ids are ordered byte-wise
/// (`COLLATE "C"`), so two servers with different collations cut them alike. Call it on the
/// source and use the result on both sides.
pub async fn id_ranges(
    client: &impl GenericClient,
    layout: &Layout,
) -> Result<Grouping, StoreError> {
    if !layout.bot.is_empty() {
        return Ok(Grouping::Bot);
    }
    let what = || format!("placing id ranges in {}", layout.display_name());
    let row = client
        .query_one(
            "SELECT format_type(a.atttypid, a.atttypmod),
                    greatest(c.reltuples, 0)::bigint,
                    t.typcategory = 'S'
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
            &[&layout.qualified(), &layout.id],
        )
        .await
        .map_err(|e| StoreError::query(what(), e))?;
    let (id_type, estimate, is_text): (String, i64, bool) = (row.get(0), row.get(1), row.get(2));
    let rows = if estimate > 0 {
        estimate
    } else {
        client
            .query_one(&format!("SELECT count(*) FROM {}", layout.qualified()), &[])
            .await
            .map_err(|e| StoreError::query(what(), e))?
            .get(0)
    };
    let ranges = (rows / ROWS_PER_RANGE).clamp(1, 1024);
    if ranges == 1 {
        return Ok(Grouping::IdRanges {
            id_type,
            bounds: Vec::new(),
        });
    }
    let fractions: Vec<f64> = (1..ranges).map(|i| i as f64 / ranges as f64).collect();
    let percent = (100.0 * BOUND_SAMPLE as f64 / rows as f64).min(100.0);
    let id = id_order_sql(&layout.id, is_text);
    let sql = format!(
        "SELECT percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY {id})::text[]
           FROM {} TABLESAMPLE SYSTEM ({percent}) WHERE {} IS NOT NULL",
        layout.qualified(),
        quote_ident(&layout.id)
    );
    let bounds: Option<Vec<Option<String>>> = client
        .query_one(&sql, &[&fractions])
        .await
        .map_err(|e| StoreError::query(what(), e))?
        .get(0);
    let mut bounds: Vec<String> = bounds.unwrap_or_default().into_iter().flatten().collect();
    bounds.dedup();
    Ok(Grouping::IdRanges { id_type, bounds })
}

/// The id as ranges order it: text types byte-wise.
fn id_order_sql(id: &str, is_text: bool) -> String {
    if is_text {
        format!("{} COLLATE \"C\"", quote_ident(id))
    } else {
        quote_ident(id)
    }
}

impl Grouping {
    /// The label of each range, in order: how reports name it.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Self::Bot => Vec::new(),
            Self::IdRanges { bounds, .. } if bounds.is_empty() => {
                vec!["rows with any id (the table has no bot column)".to_owned()]
            }
            Self::IdRanges { bounds, .. } => {
                let mut out = vec![format!("rows with ids below {}", bounds[0])];
                for w in bounds.windows(2) {
                    out.push(format!("rows with ids from {} to below {}", w[0], w[1]));
                }
                out.push(format!("rows with ids from {}", bounds[bounds.len() - 1]));
                out
            }
        }
    }

    /// SQL naming each row's group: its bot (as [`key_text_sql`] prints it) or its range's
    /// label ([`NULL_KEY`] for a NULL id).
    pub fn sql(&self, layout: &Layout) -> String {
        match self {
            Self::Bot => key_text_of(&layout.bot_sql()),
            Self::IdRanges { bounds, .. } if bounds.is_empty() => {
                format!(
                    "CASE WHEN {} IS NULL THEN '{NULL_KEY}' ELSE {} END",
                    quote_ident(&layout.id),
                    quote_literal(&self.labels()[0])
                )
            }
            Self::IdRanges { id_type, bounds } => {
                let is_text = crate::schema::is_text_type(id_type);
                let list = |v: &[String]| {
                    v.iter()
                        .map(|b| quote_literal(b))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "coalesce((ARRAY[{labels}])[width_bucket({id}, ARRAY[{bounds}]::{id_type}[]) + 1], '{NULL_KEY}')",
                    labels = list(&self.labels()),
                    id = id_order_sql(&layout.id, is_text),
                    bounds = list(bounds),
                )
            }
        }
    }
}

/// Per-bot counts and checksums, optionally for some bots only, ordered by bot id.
pub async fn bot_checksums(
    client: &impl GenericClient,
    layout: &Layout,
    bots: Option<&[String]>,
) -> Result<Vec<BotChecksum>, StoreError> {
    group_checksums(client, layout, &Grouping::Bot, bots).await
}

/// The condition keeping the rows of the groups `wanted` (all when `None`), by the name `group`
/// (SQL, as [`Grouping::sql`] writes it) gives them, with `$n` bound to the value returned:
/// names compared without trailing blanks, as [`key_text_of`] prints them.
pub fn group_filter(
    group: &str,
    wanted: Option<&[String]>,
    n: usize,
) -> (String, Option<Vec<String>>) {
    match wanted {
        Some(w) => (
            format!("{group} = ANY(${n}::text[])"),
            Some(w.iter().map(|s| s.trim_end().to_owned()).collect()),
        ),
        None => (format!("${n}::text[] IS NULL"), None),
    }
}

/// Counts and checksums per group (bot or id range), optionally for some groups only, ordered
/// by group.
pub async fn group_checksums(
    client: &impl GenericClient,
    layout: &Layout,
    grouping: &Grouping,
    bots: Option<&[String]>,
) -> Result<Vec<BotChecksum>, StoreError> {
    let bot = grouping.sql(layout);
    let (filter, wanted) = group_filter(&bot, bots, 1);
    let columns = hash_columns(client, layout).await?;
    let sql = format!(
        "SELECT {bot}, count(*), sum({hash})::text FROM {table} WHERE {filter} GROUP BY 1 ORDER BY 1",
        hash = row_hash_sql(&columns),
        table = layout.qualified(),
    );
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
/// the rows whose bot id is NULL. Holds the bot's ids in memory: for tests and small bots;
/// [`group_row_hash_stream`] and [`first_row_differences`] compare bots of any size.
pub async fn row_hashes(
    client: &impl GenericClient,
    layout: &Layout,
    bot_id: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let stream = group_row_hash_stream(client, layout, &Grouping::Bot, bot_id).await?;
    stream.try_collect().await
}

/// One group's (bot or id range) rows as `(id, hash)`, streamed from the server in byte order
/// of id then hash (`COLLATE "C"`, which is also the order of Rust's `String`), so that two
/// servers with different collations give one order and [`first_row_differences`] can merge
/// them as they come, whatever the group's size.
pub async fn group_row_hash_stream(
    client: &impl GenericClient,
    layout: &Layout,
    grouping: &Grouping,
    group: &str,
) -> Result<impl Stream<Item = Result<(String, String), StoreError>> + Send + 'static, StoreError> {
    let columns = hash_columns(client, layout).await?;
    let sql = format!(
        "SELECT k, h FROM (SELECT {id} AS k, ({hash})::text AS h
                             FROM {table} WHERE {bot} = $1) r
          ORDER BY k COLLATE \"C\", h COLLATE \"C\"",
        id = key_text_sql(&layout.id),
        bot = grouping.sql(layout),
        hash = row_hash_sql(&columns),
        table = layout.qualified(),
    );
    let what = match grouping {
        Grouping::Bot => format!("hashing rows of bot {group}"),
        Grouping::IdRanges { .. } => format!("hashing the {group}"),
    };
    let group = group.trim_end();
    let rows = client
        .query_raw(&sql, [&group as &(dyn ToSql + Sync)])
        .await
        .map_err(|e| StoreError::query(what.clone(), e))?;
    Ok(rows.map(move |r| {
        let r = r.map_err(|e| StoreError::query(what.clone(), e))?;
        let id: Option<String> = r.get(0);
        let hash: Option<String> = r.get(1);
        Ok((
            id.unwrap_or_else(|| NULL_KEY.to_owned()),
            hash.unwrap_or_default(),
        ))
    }))
}

/// The first rows that differ between two sides' `(id, hash)` streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowDifferences {
    /// Ids on the source side only.
    pub missing: Vec<String>,
    /// Ids on the target side only.
    pub extra: Vec<String>,
    /// Ids on both sides with other hashes.
    pub changed: Vec<String>,
    /// More rows differ than were listed.
    pub more: bool,
}

/// Merges two `(id, hash)` streams, each in [`group_row_hash_stream`]'s order, and lists the
/// first `max` differing ids; stops reading as soon as one more difference is found. Holds
/// one row of each side at a time. Rows whose id is NULL ([`NULL_KEY`]) are paired by hash.
pub async fn first_row_differences<E>(
    source: impl Stream<Item = Result<(String, String), E>>,
    target: impl Stream<Item = Result<(String, String), E>>,
    max: usize,
) -> Result<RowDifferences, E> {
    let (mut source, mut target) = (pin!(source), pin!(target));
    let mut out = RowDifferences::default();
    let mut found = 0usize;
    let mut a = source.try_next().await?;
    let mut b = target.try_next().await?;
    loop {
        let order = match (&a, &b) {
            (None, None) => break,
            // Rows whose id is NULL can only be told apart by their hashes.
            (Some(x), Some(y)) if x.0 == NULL_KEY && y.0 == NULL_KEY => x.1.cmp(&y.1),
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
        };
        let (list, id) = match order {
            Ordering::Less => {
                let x = a.take();
                a = source.try_next().await?;
                (&mut out.missing, x.map(|x| x.0))
            }
            Ordering::Greater => {
                let y = b.take();
                b = target.try_next().await?;
                (&mut out.extra, y.map(|y| y.0))
            }
            Ordering::Equal => {
                let (x, y) = (a.take(), b.take());
                a = source.try_next().await?;
                b = target.try_next().await?;
                match (x, y) {
                    (Some(x), Some(y)) if x.1 != y.1 => (&mut out.changed, Some(x.0)),
                    _ => continue,
                }
            }
        };
        if found == max {
            out.more = true;
            break;
        }
        list.extend(id);
        found += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[(&str, &str)]) -> impl Stream<Item = Result<(String, String), ()>> {
        let v: Vec<Result<(String, String), ()>> = v
            .iter()
            .map(|(i, h)| Ok((i.to_string(), h.to_string())))
            .collect();
        futures_util::stream::iter(v)
    }

    async fn diff(s: &[(&str, &str)], t: &[(&str, &str)], max: usize) -> RowDifferences {
        first_row_differences(rows(s), rows(t), max).await.unwrap()
    }

    #[tokio::test]
    async fn differences_merge_by_id_and_stop_at_max() {
        let s = [("1", "a"), ("2", "b"), ("3", "c"), ("5", "e")];
        let t = [("1", "a"), ("3", "X"), ("4", "d"), ("5", "e")];
        let d = diff(&s, &t, 10).await;
        assert_eq!(d.missing, vec!["2"]);
        assert_eq!(d.changed, vec!["3"]);
        assert_eq!(d.extra, vec!["4"]);
        assert!(!d.more);
        let d = diff(&s, &t, 2).await;
        assert_eq!(d.missing.len() + d.changed.len() + d.extra.len(), 2);
        assert!(d.more);
        assert_eq!(diff(&s, &s, 10).await, RowDifferences::default());
    }

    #[tokio::test]
    async fn rows_with_null_ids_are_paired_by_hash() {
        let s = [(NULL_KEY, "a"), (NULL_KEY, "b"), ("1", "x")];
        let t = [(NULL_KEY, "b"), ("1", "x")];
        let d = diff(&s, &t, 10).await;
        assert_eq!(d.missing, vec![NULL_KEY]);
        assert!(d.changed.is_empty() && d.extra.is_empty(), "{d:?}");
    }

    #[tokio::test]
    async fn an_error_on_either_side_is_returned() {
        let bad = futures_util::stream::iter(vec![Err::<(String, String), ()>(())]);
        assert!(first_row_differences(rows(&[("1", "a")]), bad, 10)
            .await
            .is_err());
    }
}
