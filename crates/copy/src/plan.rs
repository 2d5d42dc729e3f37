//! Partitions: the units a copy is cut into, sized by bytes. Whole bots are grouped until a
//! partition holds about the target size; a bot bigger than that is split into ranges of its
//! ids holding about equal bytes (cut points from a running sum of row sizes over the bot's
//! ids, in the source's own ordering so the source can use its indexes). Each partition is one
//! target transaction and one journal unit, so `--resume` redoes only what did not commit. The
//! plan is computed inside the exported snapshot and stored in the journal, so a resumed run
//! copies the same partitions.
//!
//! **How bytes are estimated.** A row's size is its stored size: [`ROW_HEADER_BYTES`] plus
//! `pg_column_size` of every column, which for a value kept out of line (a `vector(1024)` is
//! 4 KB, stored in TOAST) is the size of the TOASTed value read from its pointer in the heap
//! row, so TOAST is counted without being read. The sums per bot come from the same one scan
//! of the heap that counts the rows per bot (cheap at ten million rows: the heap without TOAST
//! is small), and are exact rather than a sample; apportioning the relation's size by row
//! share instead would be wrong as soon as bots differ in text or vector length.

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use ragshift_store::ident::{quote_ident, Layout};
use ragshift_store::StoreError;

/// Bytes counted per row on top of its columns: a heap tuple's header and line pointer.
pub const ROW_HEADER_BYTES: i64 = 28;

/// Smallest automatic partition (bytes): below it the per-partition overhead (a transaction,
/// a journal row, a COPY on each side) stops being noise.
pub const MIN_AUTO_PARTITION_BYTES: u64 = 16 << 20;
/// Largest automatic partition (bytes): what a crash or a retry redoes at most.
pub const MAX_AUTO_PARTITION_BYTES: u64 = 1 << 30;

/// Bytes per partition when the caller doesn't say: about four partitions per worker (so the
/// workers stay busy to the end and a crash loses little), within
/// [`MIN_AUTO_PARTITION_BYTES`]..=[`MAX_AUTO_PARTITION_BYTES`].
pub fn auto_partition_bytes(total_bytes: u64, jobs: usize) -> u64 {
    (total_bytes / (jobs.max(1) as u64 * 4))
        .clamp(MIN_AUTO_PARTITION_BYTES, MAX_AUTO_PARTITION_BYTES)
}

/// How big a partition may grow: about `bytes`, and at most `rows` rows when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Target bytes per partition (stored size, TOAST included).
    pub bytes: u64,
    /// Rows per partition, when the caller asked for a row limit (`--partition-rows`).
    pub rows: Option<u64>,
}

impl Limits {
    /// Partitions `rows` rows of `bytes` bytes need under these limits.
    fn pieces(&self, rows: i64, bytes: i64) -> u64 {
        let by_bytes = (bytes.max(0) as u64).div_ceil(self.bytes.max(1));
        let by_rows = self
            .rows
            .map(|r| (rows.max(0) as u64).div_ceil(r.max(1)))
            .unwrap_or(1);
        by_bytes.max(by_rows).max(1)
    }

    /// Whether a partition of `rows` rows and `bytes` bytes is over the limits.
    fn exceeded(&self, rows: i64, bytes: i64) -> bool {
        bytes > self.bytes as i64 || self.rows.is_some_and(|r| rows > r as i64)
    }
}

/// Which rows of the source table a partition holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Slice {
    /// All rows of these bots (and, when `nulls`, the rows without a bot id).
    Bots {
        /// Bot ids as the source prints them (`botid::text`).
        bots: Vec<String>,
        /// Also the rows whose bot id is NULL.
        #[serde(default)]
        nulls: bool,
    },
    /// One bot's rows with `after < id <= upto` (open ends when `None`); the last range of a bot
    /// also holds its rows with a NULL id.
    Ids {
        /// The bot.
        bot: String,
        /// Exclusive lower bound.
        after: Option<String>,
        /// Inclusive upper bound; `None` for the bot's last range.
        upto: Option<String>,
    },
}

/// One unit of copy work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Journal unit id (`p00042`), in plan order.
    pub id: String,
    /// Its rows.
    pub slice: Slice,
    /// Rows it held in the snapshot the plan was made in.
    pub rows: i64,
    /// Bytes its rows held (stored size, TOAST included; see the module's notes); 0 in plans
    /// recorded before partitions were sized by bytes.
    #[serde(default)]
    pub bytes: i64,
}

impl Partition {
    /// The SQL condition selecting the partition's rows (values as literals, since `COPY`
    /// takes no parameters; they come from the source itself and are quoted).
    pub fn predicate(&self, layout: &Layout) -> String {
        let bot = layout.bot_sql();
        match &self.slice {
            Slice::Bots { bots, nulls } => {
                let mut parts = Vec::new();
                if !bots.is_empty() {
                    let list: Vec<String> = bots.iter().map(|b| sql_literal(b)).collect();
                    parts.push(format!("{bot} IN ({})", list.join(", ")));
                }
                if *nulls {
                    parts.push(format!("{bot} IS NULL"));
                }
                if parts.is_empty() {
                    "false".to_owned()
                } else {
                    format!("({})", parts.join(" OR "))
                }
            }
            Slice::Ids {
                bot: b,
                after,
                upto,
            } => {
                let id = quote_ident(&layout.id);
                let mut s = format!("{bot} = {}", sql_literal(b));
                match (after, upto) {
                    (Some(a), Some(u)) => s.push_str(&format!(
                        " AND {id} > {} AND {id} <= {}",
                        sql_literal(a),
                        sql_literal(u)
                    )),
                    (None, Some(u)) => s.push_str(&format!(" AND {id} <= {}", sql_literal(u))),
                    (Some(a), None) => {
                        s.push_str(&format!(" AND ({id} > {} OR {id} IS NULL)", sql_literal(a)))
                    }
                    (None, None) => {}
                }
                s
            }
        }
    }

    /// What the partition holds, for messages: `bot 01H..` / `bots 01H..–01J.. (12)`.
    pub fn describe(&self) -> String {
        match &self.slice {
            Slice::Bots { bots, nulls } => {
                let nulls = if *nulls {
                    " + rows without a bot id"
                } else {
                    ""
                };
                match bots.as_slice() {
                    [] => format!("rows without a bot id{}", ""),
                    [one] => format!("bot {one}{nulls}"),
                    [first, .., last] => {
                        format!("bots {first}..{last} ({}){nulls}", bots.len())
                    }
                }
            }
            Slice::Ids { bot, after, upto } if bot.is_empty() => format!(
                "ids {}..{}",
                after.as_deref().unwrap_or("start"),
                upto.as_deref().unwrap_or("end")
            ),
            Slice::Ids { bot, after, upto } => format!(
                "bot {bot} ids {}..{}",
                after.as_deref().unwrap_or("start"),
                upto.as_deref().unwrap_or("end")
            ),
        }
    }

    /// The bots the partition touches.
    pub fn bots(&self) -> Vec<&str> {
        match &self.slice {
            Slice::Bots { bots, .. } => bots.iter().map(String::as_str).collect(),
            Slice::Ids { bot, .. } => vec![bot.as_str()],
        }
    }
}

/// A string literal that means the same whatever `standard_conforming_strings` says.
pub(crate) fn sql_literal(value: &str) -> String {
    if value.contains('\\') {
        format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// One bot's rows and bytes in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotSize {
    /// The bot; `None` stands for rows without a bot id.
    pub bot: Option<String>,
    /// Rows.
    pub rows: i64,
    /// Stored bytes (see the module's notes).
    pub bytes: i64,
}

/// SQL for one row's stored size: [`ROW_HEADER_BYTES`] plus `pg_column_size` of each of
/// `columns` (which reads a TOASTed value's size from its pointer, never the value).
pub fn row_bytes_sql(columns: &[String]) -> String {
    let mut parts = vec![ROW_HEADER_BYTES.to_string()];
    parts.extend(
        columns
            .iter()
            .map(|c| format!("coalesce(pg_column_size({}), 0)", quote_ident(c))),
    );
    parts.join(" + ")
}

/// Rows and bytes per bot in the snapshot, in the source's bot order, in one scan of the heap;
/// `columns` are the columns copied.
pub async fn bot_sizes(
    client: &impl GenericClient,
    layout: &Layout,
    columns: &[String],
    only: Option<&[String]>,
) -> Result<Vec<BotSize>, StoreError> {
    let bot = layout.bot_sql();
    let filter = match only {
        Some(_) => format!("WHERE {bot}::text = ANY($1)"),
        None => "WHERE $1::text[] IS NULL".to_owned(),
    };
    let sql = format!(
        "SELECT {bot}::text, count(*), coalesce(sum({size}), 0)::int8
           FROM {table} {filter} GROUP BY {bot} ORDER BY {bot} NULLS FIRST",
        size = row_bytes_sql(columns),
        table = layout.qualified()
    );
    let wanted: Option<Vec<String>> =
        only.map(|b| b.iter().map(|s| s.trim_end().to_owned()).collect());
    let rows = client.query(&sql, &[&wanted]).await.map_err(|e| {
        StoreError::query(
            format!("sizing the rows per bot in {}", layout.display_name()),
            e,
        )
    })?;
    Ok(rows
        .iter()
        .map(|r| BotSize {
            bot: r.get(0),
            rows: r.get(1),
            bytes: r.get(2),
        })
        .collect())
}

/// One id range of a split bot: its inclusive upper bound (`None` for the last range, which
/// also holds the bot's rows with a NULL id), rows and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdRange {
    /// Inclusive upper bound.
    pub upto: Option<String>,
    /// Rows.
    pub rows: i64,
    /// Bytes.
    pub bytes: i64,
}

/// Splits one bot's ids into at most `pieces` ranges holding about equal bytes, from the running
/// byte sum over the bot's rows in id order. Rows and bytes
/// of each range come with it (the last range's as the bot's total minus the others', so its
/// rows with a NULL id are counted), from the same scan.
pub async fn id_ranges_by_bytes(
    client: &impl GenericClient,
    layout: &Layout,
    columns: &[String],
    size: &BotSize,
    pieces: u64,
) -> Result<Vec<IdRange>, StoreError> {
    let Some(bot) = size.bot.as_deref() else {
        return Ok(vec![IdRange {
            upto: None,
            rows: size.rows,
            bytes: size.bytes,
        }]);
    };
    // A row goes to the range its running sum ends in; rows of equal ids share that sum (the
    // window's default frame takes peers together), so they land in one range, as the range
    // predicates (`id > after AND id <= upto`) need.
    let sql = format!(
        "SELECT (array_agg(k ORDER BY k DESC))[1]::text, count(*), sum(sz)::int8
           FROM (SELECT k, sz,
                        least($1 - 1, floor((sum(sz) OVER (ORDER BY k) - 1)::float8 * $1
                                            / greatest(sum(sz) OVER (), 1)))::int4 AS t
                   FROM (SELECT {id} AS k, ({size})::int8 AS sz
                           FROM {table} WHERE {botcol} = {lit} AND {id} IS NOT NULL) r) s
          GROUP BY t ORDER BY t",
        id = quote_ident(&layout.id),
        size = row_bytes_sql(columns),
        botcol = layout.bot_sql(),
        table = layout.qualified(),
        lit = sql_literal(bot),
    );
    let rows = client
        .query(&sql, &[&(pieces as i32)])
        .await
        .map_err(|e| StoreError::query(format!("splitting bot {bot} by id"), e))?;
    let mut ranges: Vec<IdRange> = rows
        .iter()
        .map(|r| IdRange {
            upto: r.get(0),
            rows: r.get(1),
            bytes: r.get(2),
        })
        .collect();
    // The last range is open-ended and takes what the others don't hold.
    ranges.pop();
    let (rows, bytes) = ranges
        .iter()
        .fold((0, 0), |(r, b), x| (r + x.rows, b + x.bytes));
    ranges.push(IdRange {
        upto: None,
        rows: size.rows - rows,
        bytes: size.bytes - bytes,
    });
    Ok(ranges)
}

/// A bot too big for one partition, and the partitions it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The bot's size.
    pub size: BotSize,
    /// Ranges to cut it into.
    pub pieces: u64,
}

/// Groups bots into partitions within `limits` and marks the bots that need splitting, without
/// touching a database. Each group comes with its rows and bytes.
pub fn group(sizes: &[BotSize], limits: Limits) -> (Vec<(Slice, i64, i64)>, Vec<Split>) {
    let mut groups = Vec::new();
    let mut splits = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut nulls = false;
    let (mut rows, mut bytes) = (0i64, 0i64);
    for size in sizes {
        let Some(bot) = &size.bot else {
            nulls = true;
            rows += size.rows;
            bytes += size.bytes;
            continue;
        };
        let pieces = limits.pieces(size.rows, size.bytes);
        if pieces > 1 {
            splits.push(Split {
                size: size.clone(),
                pieces,
            });
            continue;
        }
        if limits.exceeded(rows + size.rows, bytes + size.bytes)
            && (rows > 0 || !current.is_empty())
        {
            groups.push((
                Slice::Bots {
                    bots: std::mem::take(&mut current),
                    nulls: std::mem::take(&mut nulls),
                },
                rows,
                bytes,
            ));
            (rows, bytes) = (0, 0);
        }
        current.push(bot.clone());
        rows += size.rows;
        bytes += size.bytes;
    }
    if !current.is_empty() || nulls {
        groups.push((
            Slice::Bots {
                bots: current,
                nulls,
            },
            rows,
            bytes,
        ));
    }
    (groups, splits)
}

/// Plans the copy of `layout`'s table (or of some bots of it) inside the caller's snapshot;
/// `columns` are the columns copied (their sizes are the partitions' bytes). Partitions hold
/// about `partition_bytes` (from [`auto_partition_bytes`] when `None`) and at most
/// `partition_rows` rows when given. Returns the partitions and the limits used.
pub async fn plan(
    client: &impl GenericClient,
    layout: &Layout,
    columns: &[String],
    only: Option<&[String]>,
    partition_bytes: Option<u64>,
    partition_rows: Option<u64>,
    jobs: usize,
) -> Result<(Vec<Partition>, Limits), StoreError> {
    let sizes = bot_sizes(client, layout, columns, only).await?;
    let total: i64 = sizes.iter().map(|s| s.bytes).sum();
    let limits = Limits {
        bytes: partition_bytes
            .unwrap_or_else(|| auto_partition_bytes(total.max(0) as u64, jobs))
            .max(1),
        rows: partition_rows,
    };
    let (groups, splits) = group(&sizes, limits);
    let mut slices: Vec<(Slice, i64, i64)> = groups;
    for split in splits {
        let bot = split.size.bot.clone().unwrap_or_default();
        let ranges = id_ranges_by_bytes(client, layout, columns, &split.size, split.pieces).await?;
        let mut after: Option<String> = None;
        for r in ranges {
            slices.push((
                Slice::Ids {
                    bot: bot.clone(),
                    after: after.take(),
                    upto: r.upto.clone(),
                },
                r.rows,
                r.bytes,
            ));
            after = r.upto;
        }
    }
    let partitions = slices
        .into_iter()
        .enumerate()
        .map(|(i, (slice, rows, bytes))| Partition {
            id: format!("p{i:05}"),
            slice,
            rows,
            bytes,
        })
        .collect();
    Ok((partitions, limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(v: &[(&str, i64, i64)]) -> Vec<BotSize> {
        v.iter()
            .map(|(b, rows, bytes)| BotSize {
                bot: (!b.is_empty()).then(|| b.to_string()),
                rows: *rows,
                bytes: *bytes,
            })
            .collect()
    }

    #[test]
    fn small_bots_are_grouped_by_bytes_and_big_ones_split() {
        let c = sizes(&[
            ("", 3, 30),
            ("a", 4, 40),
            ("b", 400, 40),
            ("c", 2, 250),
            ("d", 1, 10),
            ("e", 9, 90),
        ]);
        let limits = Limits {
            bytes: 100,
            rows: None,
        };
        let (groups, splits) = group(&c, limits);
        let bots = |b: &[&str], nulls| Slice::Bots {
            bots: b.iter().map(|s| s.to_string()).collect(),
            nulls,
        };
        assert_eq!(
            groups,
            vec![
                (bots(&["a"], true), 7, 70),
                (bots(&["b", "d"], false), 401, 50),
                (bots(&["e"], false), 9, 90),
            ]
        );
        assert_eq!(splits.len(), 1);
        assert_eq!(splits[0].size.bot.as_deref(), Some("c"));
        assert_eq!(splits[0].pieces, 3, "250 bytes in partitions of 100");
        let total: i64 = groups.iter().map(|g| g.2).sum::<i64>() + 250;
        assert_eq!(
            total,
            30 + 40 + 40 + 250 + 10 + 90,
            "every byte is planned once"
        );
    }

    #[test]
    fn a_row_limit_also_splits_and_closes_groups() {
        let c = sizes(&[("a", 4, 4), ("b", 4, 4), ("c", 25, 25)]);
        let limits = Limits {
            bytes: 1 << 20,
            rows: Some(5),
        };
        let (groups, splits) = group(&c, limits);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(splits[0].pieces, 5);
    }

    #[test]
    fn automatic_partitions_stay_within_bounds() {
        assert_eq!(auto_partition_bytes(0, 4), MIN_AUTO_PARTITION_BYTES);
        assert_eq!(auto_partition_bytes(u64::MAX, 4), MAX_AUTO_PARTITION_BYTES);
        assert_eq!(auto_partition_bytes(16 * (100 << 20), 4), 100 << 20);
    }

    #[test]
    fn predicates_quote_values_and_cover_nulls() {
        let l = Layout::default();
        let p = Partition {
            id: "p00000".into(),
            slice: Slice::Bots {
                bots: vec!["o'k".into(), "back\\slash".into()],
                nulls: true,
            },
            rows: 0,
            bytes: 0,
        };
        assert_eq!(
            p.predicate(&l),
            "(\"botid\" IN ('o''k', E'back\\\\slash') OR \"botid\" IS NULL)"
        );
        let last = Partition {
            id: "p00001".into(),
            slice: Slice::Ids {
                bot: "b".into(),
                after: Some("m".into()),
                upto: None,
            },
            rows: 0,
            bytes: 0,
        };
        assert_eq!(
            last.predicate(&l),
            "\"botid\" = 'b' AND (\"id\" > 'm' OR \"id\" IS NULL)"
        );
    }
}
