//! Partitions: the units a copy is cut into. Whole bots are grouped until a partition holds
//! about `partition_rows` rows; a bot bigger than that is split into ranges of its ids (cut
//! points from `ntile` over the bot's ids, in the source's own ordering so the source can use
//! its indexes). Each partition is one target transaction and one journal unit, so `--resume`
//! redoes only what did not commit. The plan is computed inside the exported snapshot and
//! stored in the journal, so a resumed run copies the same partitions.

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use ragshift_store::ident::{quote_ident, Layout};
use ragshift_store::StoreError;

/// Rows per partition when the caller doesn't say: about four partitions per worker (so the
/// workers stay busy to the end and a crash loses little), within these bounds (so the
/// per-partition overhead stays noise).
pub fn auto_partition_rows(total_rows: u64, jobs: usize) -> u64 {
    (total_rows / (jobs.max(1) as u64 * 4)).clamp(1_000, 250_000)
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

/// Rows per bot in the snapshot, in the source's bot order; the bot `None` stands for rows
/// without a bot id.
pub async fn bot_counts(
    client: &impl GenericClient,
    layout: &Layout,
    only: Option<&[String]>,
) -> Result<Vec<(Option<String>, i64)>, StoreError> {
    let bot = layout.bot_sql();
    let filter = match only {
        Some(_) => format!("WHERE {bot}::text = ANY($1)"),
        None => "WHERE $1::text[] IS NULL".to_owned(),
    };
    let sql = format!(
        "SELECT {bot}::text, count(*) FROM {table} {filter} GROUP BY {bot} ORDER BY {bot} NULLS FIRST",
        table = layout.qualified()
    );
    let wanted: Option<Vec<String>> =
        only.map(|b| b.iter().map(|s| s.trim_end().to_owned()).collect());
    let rows = client.query(&sql, &[&wanted]).await.map_err(|e| {
        StoreError::query(
            format!("counting rows per bot in {}", layout.display_name()),
            e,
        )
    })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Cut points splitting one bot's ids into `pieces` ranges of about equal size (the upper,
/// inclusive bound of every range but the last).
pub async fn id_cut_points(
    client: &impl GenericClient,
    layout: &Layout,
    bot: &str,
    pieces: u64,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT (array_agg(k ORDER BY k DESC))[1]::text
           FROM (SELECT {id} AS k, ntile($1) OVER (ORDER BY {id}) AS t
                   FROM {table} WHERE {bot} = {lit} AND {id} IS NOT NULL) s
          GROUP BY t ORDER BY t",
        id = quote_ident(&layout.id),
        bot = layout.bot_sql(),
        table = layout.qualified(),
        lit = sql_literal(bot),
    );
    let rows = client
        .query(&sql, &[&(pieces as i32)])
        .await
        .map_err(|e| StoreError::query(format!("splitting bot {bot} by id"), e))?;
    let mut cuts: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    cuts.pop();
    Ok(cuts)
}

/// A bot too big for one partition: `(bot, rows, pieces)`.
pub type Split = (String, i64, u64);

/// Groups bots into partitions of about `partition_rows` rows and marks the bots that need
/// splitting (returned as `(bot, rows, pieces)`), without touching a database.
pub fn group(
    counts: &[(Option<String>, i64)],
    partition_rows: u64,
) -> (Vec<(Slice, i64)>, Vec<Split>) {
    let target = partition_rows.max(1) as i64;
    let mut groups = Vec::new();
    let mut splits = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut nulls = false;
    let mut rows = 0i64;
    for (bot, n) in counts {
        let Some(bot) = bot else {
            nulls = true;
            rows += n;
            continue;
        };
        if *n > target {
            let pieces = (*n as u64).div_ceil(target as u64);
            splits.push((bot.clone(), *n, pieces));
            continue;
        }
        if rows + n > target && (rows > 0 || !current.is_empty()) {
            groups.push((
                Slice::Bots {
                    bots: std::mem::take(&mut current),
                    nulls: std::mem::take(&mut nulls),
                },
                rows,
            ));
            rows = 0;
        }
        current.push(bot.clone());
        rows += n;
    }
    if !current.is_empty() || nulls {
        groups.push((
            Slice::Bots {
                bots: current,
                nulls,
            },
            rows,
        ));
    }
    (groups, splits)
}

/// Plans the copy of `layout`'s table (or of some bots of it) inside the caller's snapshot;
/// `partition_rows` from [`auto_partition_rows`] when `None`.
pub async fn plan(
    client: &impl GenericClient,
    layout: &Layout,
    only: Option<&[String]>,
    partition_rows: Option<u64>,
    jobs: usize,
) -> Result<Vec<Partition>, StoreError> {
    let counts = bot_counts(client, layout, only).await?;
    let total: i64 = counts.iter().map(|c| c.1).sum();
    let partition_rows =
        partition_rows.unwrap_or_else(|| auto_partition_rows(total.max(0) as u64, jobs));
    let (groups, splits) = group(&counts, partition_rows);
    let mut slices: Vec<(Slice, i64)> = groups;
    for (bot, rows, pieces) in splits {
        let cuts = id_cut_points(client, layout, &bot, pieces).await?;
        let per = rows / (cuts.len() as i64 + 1);
        let mut after: Option<String> = None;
        for cut in cuts {
            slices.push((
                Slice::Ids {
                    bot: bot.clone(),
                    after: after.take(),
                    upto: Some(cut.clone()),
                },
                per,
            ));
            after = Some(cut);
        }
        slices.push((
            Slice::Ids {
                bot: bot.clone(),
                after,
                upto: None,
            },
            per,
        ));
    }
    // Exact counts for the id ranges (the estimate above is only an even share).
    let mut out = Vec::with_capacity(slices.len());
    for (i, (slice, rows)) in slices.into_iter().enumerate() {
        let mut p = Partition {
            id: format!("p{i:05}"),
            slice,
            rows,
        };
        if matches!(p.slice, Slice::Ids { .. }) {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {}",
                layout.qualified(),
                p.predicate(layout)
            );
            p.rows = client
                .query_one(&sql, &[])
                .await
                .map_err(|e| StoreError::query(format!("counting {}", p.describe()), e))?
                .get(0);
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(v: &[(&str, i64)]) -> Vec<(Option<String>, i64)> {
        v.iter()
            .map(|(b, n)| ((!b.is_empty()).then(|| b.to_string()), *n))
            .collect()
    }

    #[test]
    fn small_bots_are_grouped_and_big_ones_split() {
        let c = counts(&[("", 3), ("a", 4), ("b", 4), ("c", 25), ("d", 1), ("e", 9)]);
        let (groups, splits) = group(&c, 10);
        assert_eq!(
            groups,
            vec![
                (
                    Slice::Bots {
                        bots: vec!["a".into()],
                        nulls: true
                    },
                    7
                ),
                (
                    Slice::Bots {
                        bots: vec!["b".into(), "d".into()],
                        nulls: false
                    },
                    5
                ),
                (
                    Slice::Bots {
                        bots: vec!["e".into()],
                        nulls: false
                    },
                    9
                ),
            ]
        );
        assert_eq!(splits, vec![("c".to_owned(), 25, 3)]);
        let total: i64 = groups.iter().map(|g| g.1).sum::<i64>() + 25;
        assert_eq!(total, 3 + 4 + 4 + 25 + 1 + 9, "every row is planned once");
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
        };
        assert_eq!(
            last.predicate(&l),
            "\"botid\" = 'b' AND (\"id\" > 'm' OR \"id\" IS NULL)"
        );
    }
}
