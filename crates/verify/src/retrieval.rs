//! Retrieval agreement: does the target answer questions the way the source did?
//!
//! Queries are the bot's own chunk embeddings (a deterministic sample from the source), so no
//! embedding provider is needed. For each query:
//! - exact top-k ids on the source and on the target → overlap@k, which must be 1.0 when the
//!   data is the same. "Exact" means no vector index can be involved: distances are computed
//!   with the `l2_distance()` function (an index only serves the `<->` operator) and ties are
//!   broken by id, so both sides rank identically. All queries of a bot share ONE read of the
//!   bot's rows: each vector is de-TOASTed once (`subvector`) and compared with every query.
//! - the platform's own query, `WHERE bot = $1 ORDER BY embedding <-> $2 LIMIT k`, on the target
//!   with its real index and the server's settings → recall@k against the exact answer, with
//!   the index and settings (ivfflat probes, HNSW ef_search, iterative scans) reported.

use std::collections::{BTreeMap, BinaryHeap, HashSet};

use futures_util::TryStreamExt;
use tokio_postgres::types::ToSql;

use pgvector::Vector;
use ragshift_store::checksum::{key_text_sql, NULL_KEY};
use ragshift_store::ident::quote_ident;
use ragshift_store::index::{vector_indexes, ExistingIndex};
use ragshift_store::schema::vector_version;
use ragshift_store::StoreError;
use serde::Serialize;

use crate::error::{Side, VerifyError};
use crate::Store;

/// How many bots with the lowest scores the report lists.
const WORST_LISTED: usize = 10;

/// One bot's score (overlap or recall), mean over its queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotScore {
    /// The bot.
    pub bot_id: String,
    /// Mean over the bot's queries, 0.0..=1.0.
    pub score: f64,
    /// Queries run for the bot.
    pub queries: usize,
}

/// The target's vector index as used by the platform's query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexInfo {
    /// Index name.
    pub name: String,
    /// `hnsw` or `ivfflat`.
    pub method: String,
    /// `CREATE INDEX ...` as the server prints it.
    pub definition: String,
}

impl From<ExistingIndex> for IndexInfo {
    fn from(i: ExistingIndex) -> Self {
        Self {
            name: i.name,
            method: i.method,
            definition: i.definition,
        }
    }
}

/// Agreement of the two sides' answers, and the quality of the target's index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalReport {
    /// Results per query (the platform's `max_results`).
    pub k: usize,
    /// Sample queries asked per bot (fewer for bots with fewer rows).
    pub queries_per_bot: usize,
    /// Bots queried.
    pub bots: usize,
    /// Queries run.
    pub queries: usize,
    /// Bots whose overlap is 1.0 because their checksums are equal (every row the same on both
    /// sides): exact search ran on the target only, for recall.
    pub overlap_by_checksum: usize,
    /// Mean overlap@k of exact search, source vs target (1.0 when the data is the same).
    pub overlap_at_k: f64,
    /// Lowest per-bot overlap.
    pub min_overlap: f64,
    /// Bots whose exact answers differ between the sides.
    pub disagreeing: Vec<BotScore>,
    /// Mean recall@k of the platform's query on the target against exact search (1.0 without a
    /// vector index, where that query is itself exact and is not run).
    pub recall_at_k: f64,
    /// Lowest per-bot recall.
    pub min_recall: f64,
    /// Bots with the lowest recall below 1.0 (at most ten).
    pub lowest_recall: Vec<BotScore>,
    /// Platform queries that returned fewer rows than exact search (an approximate index that
    /// stopped early, e.g. ivfflat with few probes and no iterative scan).
    pub short_results: usize,
    /// The target's vector index; `None` means the platform's query is exact (and slow).
    pub index: Option<IndexInfo>,
    /// Bots for which the planner chose the vector index for the platform's query (for small
    /// bots it often prefers the bot index and an exact sort).
    pub index_used_bots: usize,
    /// Platform queries whose plan doesn't use the vector index: exact searches, recall 1 by
    /// construction, so they are explained but not run.
    pub exact_by_plan: usize,
    /// pgvector's settings in effect on the target (`hnsw.ef_search`, `ivfflat.probes`,
    /// `*.iterative_scan`, ...).
    pub settings: BTreeMap<String, String>,
}

impl RetrievalReport {
    /// Whether exact search agrees on every query.
    pub fn agrees(&self) -> bool {
        self.disagreeing.is_empty()
    }
}

/// |a ∩ b| / max(|a|, |b|); 1.0 when both are empty.
pub fn overlap(a: &[String], b: &[String]) -> f64 {
    let n = a.len().max(b.len());
    if n == 0 {
        return 1.0;
    }
    let set: HashSet<&String> = a.iter().collect();
    b.iter().filter(|id| set.contains(id)).count() as f64 / n as f64
}

/// |approx ∩ exact| / |exact|; 1.0 when exact is empty.
pub fn recall(approx: &[String], exact: &[String]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    let set: HashSet<&String> = approx.iter().collect();
    exact.iter().filter(|id| set.contains(id)).count() as f64 / exact.len() as f64
}

/// SQL of the statements run on one side. Sampling and exact search each read the table once
/// for all the bots asked about (`$1`, as text, compared as the bot column's type so its index
/// can serve a few bots), each row naming its bot by position in `$1` (1-based): a pass per bot
/// would read each heap page once for every bot with a row on it, and each vector through the
/// TOAST index in no useful order, which grew faster than the data.
struct Statements {
    sample: String,
    exact: String,
    platform: String,
}

impl Statements {
    /// `bot_type`: the bot column's type, so a bot id given as text is compared with it as that
    /// type (uuid, bigint, `character(n)`) and the column's index still serves the query.
    fn new(store: &Store<'_>, subvector: bool, bot_type: &str) -> Self {
        let l = store.layout;
        let (id, id_text, bot, emb, table) = (
            quote_ident(&l.id),
            key_text_sql(&l.id),
            l.bot_sql(),
            quote_ident(&l.embedding),
            l.qualified(),
        );
        let asked = format!("$1::text[]::{bot_type}[]");
        let which = format!("array_position({asked}, {bot})::int4");
        let detoasted = if subvector {
            format!("subvector({emb}, 1, vector_dims({emb}))")
        } else {
            emb.clone()
        };
        Self {
            // Each bot's first `$2` rows by md5 of the id: a deterministic sample.
            sample: format!(
                "SELECT s.i, s.e FROM (
                     SELECT {which} AS i, {emb} AS e,
                            row_number() OVER (PARTITION BY {bot} ORDER BY md5({id}::text)) AS n
                       FROM {table} WHERE {bot} = ANY({asked}) AND {emb} IS NOT NULL) s
                  WHERE s.n <= $2 ORDER BY s.i, s.n"
            ),
            // One row per chunk with its distances to each of its bot's queries (`$2`: the
            // bot's position, `$3`: the query, in order): the vector is de-TOASTed once (in the
            // fenced subquery) and the ranking is done by the caller.
            exact: format!(
                "WITH q AS (
                     SELECT u.i, array_agg(u.v ORDER BY u.n) AS qs
                       FROM unnest($2::int4[], $3::vector[]) WITH ORDINALITY AS u(i, v, n)
                      GROUP BY u.i)
                 SELECT r.i, r.id,
                        ARRAY(SELECT l2_distance(r.e, x.v)
                                FROM unnest(q.qs) WITH ORDINALITY AS x(v, n) ORDER BY x.n)
                   FROM (SELECT {which} AS i, {id_text} AS id, {detoasted} AS e
                           FROM {table} WHERE {bot} = ANY({asked}) AND {emb} IS NOT NULL
                         OFFSET 0) r
                   JOIN q ON q.i = r.i"
            ),
            platform: format!(
                "SELECT {id_text} FROM {table} WHERE {bot} = $1::text::{bot_type} ORDER BY {emb} <-> $2 LIMIT $3"
            ),
        }
    }
}

async fn statements_for(store: &Store<'_>, side: Side) -> Result<Statements, VerifyError> {
    let version = vector_version(store.client)
        .await
        .map_err(|e| VerifyError::new(side, store.label, None, e))?
        .unwrap_or_default();
    let shape = ragshift_store::schema::read_shape(store.client, store.layout)
        .await
        .map_err(|e| VerifyError::new(side, store.label, None, e))?;
    let bot_type = shape
        .and_then(|s| {
            s.columns
                .into_iter()
                .find(|c| c.name == store.layout.bot)
                .map(|c| c.type_name)
        })
        .unwrap_or_else(|| "text".to_owned());
    Ok(Statements::new(
        store,
        ragshift_store::schema::version_at_least(&version, (0, 7)),
        &bot_type,
    ))
}

/// Up to `per_bot` sample query vectors for each of `bots`, from the source in one pass.
async fn sample(
    store: &Store<'_>,
    sql: &str,
    bots: &[String],
    per_bot: usize,
) -> Result<Vec<Vec<Vector>>, StoreError> {
    let what = || "sampling query vectors".to_owned();
    let per_bot = i64::try_from(per_bot).unwrap_or(i64::MAX);
    let rows = store
        .client
        .query_raw(sql, [&bots as &(dyn ToSql + Sync), &per_bot])
        .await
        .map_err(|e| StoreError::query(what(), e))?;
    let mut rows = std::pin::pin!(rows);
    let mut queries: Vec<Vec<Vector>> = vec![Vec::new(); bots.len()];
    while let Some(r) = rows
        .try_next()
        .await
        .map_err(|e| StoreError::query(what(), e))?
    {
        let (Some(i), Some(v)) = (r.get::<_, Option<i32>>(0), r.get::<_, Option<Vector>>(1)) else {
            continue;
        };
        if let Some(q) = usize::try_from(i - 1).ok().and_then(|i| queries.get_mut(i)) {
            q.push(v);
        }
    }
    Ok(queries)
}

/// Exact top-k ids for each query of each bot in `asked` (bot, its queries), in query order:
/// nearest first, ties by id (bytewise). The rows of every bot asked about are streamed in one
/// pass and each query keeps only its `k` best so far, so memory holds `k` ids per query
/// whatever the table's size.
async fn exact(
    store: &Store<'_>,
    sql: &str,
    asked: &[(&String, &[Vector])],
    k: usize,
) -> Result<Vec<Vec<Vec<String>>>, StoreError> {
    let what = || "exact search".to_owned();
    let bots: Vec<&str> = asked.iter().map(|(b, _)| b.as_str()).collect();
    let mut positions: Vec<i32> = Vec::new();
    let mut vectors: Vec<&Vector> = Vec::new();
    for (i, (_, queries)) in asked.iter().enumerate() {
        let i = i32::try_from(i + 1).unwrap_or(i32::MAX);
        for q in *queries {
            positions.push(i);
            vectors.push(q);
        }
    }
    let mut best: Vec<Vec<TopK>> = asked
        .iter()
        .map(|(_, q)| (0..q.len()).map(|_| TopK::new(k)).collect())
        .collect();
    if bots.is_empty() {
        return Ok(Vec::new());
    }
    let rows = store
        .client
        .query_raw(
            sql,
            [
                &bots as &(dyn ToSql + Sync),
                &positions as &(dyn ToSql + Sync),
                &vectors as &(dyn ToSql + Sync),
            ],
        )
        .await
        .map_err(|e| StoreError::query(what(), e))?;
    let mut rows = std::pin::pin!(rows);
    while let Some(r) = rows
        .try_next()
        .await
        .map_err(|e| StoreError::query(what(), e))?
    {
        let Some(tops) = r
            .get::<_, Option<i32>>(0)
            .and_then(|i| usize::try_from(i - 1).ok())
            .and_then(|i| best.get_mut(i))
        else {
            continue;
        };
        // Ids come as text with NULL spelled out; a NULL distance (none is expected) ranks last.
        let id: Option<String> = r.get(1);
        let id = id.unwrap_or_else(|| NULL_KEY.to_owned());
        let d: Option<Vec<Option<f64>>> = r.get(2);
        for (top, d) in tops.iter_mut().zip(d.unwrap_or_default()) {
            top.offer(d.unwrap_or(f64::INFINITY), &id);
        }
    }
    Ok(best
        .into_iter()
        .map(|tops| tops.into_iter().map(TopK::into_ids).collect())
        .collect())
}

/// The `k` nearest `(distance, id)` seen so far, ordered by distance then id.
struct TopK {
    k: usize,
    heap: BinaryHeap<Ranked>,
}

/// One candidate; the heap's top is the worst kept.
struct Ranked(f64, String);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Keeps `(d, id)` if it is among the `k` best so far.
    fn offer(&mut self, d: f64, id: &str) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() == self.k {
            let worst = self.heap.peek().map(|w| (w.0, w.1.as_str()));
            let better = worst.is_some_and(|(wd, wid)| {
                d.total_cmp(&wd).then_with(|| id.cmp(wid)) == std::cmp::Ordering::Less
            });
            if !better {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Ranked(d, id.to_owned()));
    }

    /// The ids kept, nearest first.
    fn into_ids(self) -> Vec<String> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.1)
            .collect()
    }
}

/// Runs sample queries for every bot in `bots` and scores both sides' answers. `same`: the bots
/// whose checksums are equal on both sides, whose exact answers agree without being read twice.
pub async fn compare(
    source: &Store<'_>,
    target: &Store<'_>,
    bots: &[String],
    same: &HashSet<String>,
    queries_per_bot: usize,
    k: usize,
) -> Result<RetrievalReport, VerifyError> {
    let src = statements_for(source, Side::Source).await?;
    let tgt = statements_for(target, Side::Target).await?;
    let label = target.label;
    let terr = |bot: Option<&str>| {
        let bot = bot.map(str::to_owned);
        move |e| VerifyError::new(Side::Target, label, bot.as_deref(), e)
    };
    let index: Option<IndexInfo> = vector_indexes(target.client, target.layout)
        .await
        .map_err(terr(None))?
        .into_iter()
        .next()
        .map(IndexInfo::from);
    let limit = i64::try_from(k).unwrap_or(i64::MAX);
    let mut overlaps: Vec<BotScore> = Vec::new();
    let mut recalls: Vec<BotScore> = Vec::new();
    let mut short_results = 0usize;
    let mut index_used_bots = 0usize;
    let mut exact_by_plan = 0usize;
    let mut total_queries = 0usize;
    let mut overlap_by_checksum = 0usize;
    let queries = sample(source, &src.sample, bots, queries_per_bot)
        .await
        .map_err(|e| VerifyError::new(Side::Source, source.label, None, e))?;
    let asked: Vec<(&String, &[Vector])> = bots
        .iter()
        .zip(&queries)
        .filter(|(_, q)| !q.is_empty())
        .map(|(b, q)| (b, q.as_slice()))
        .collect();
    // A bot whose rows are the same on both sides (equal checksums over every column) answers
    // alike by construction: its exact answers are read once, on the target, for the recall
    // of the target's index. Reading them on the source too would only add a second pass over
    // every vector.
    let differing: Vec<(&String, &[Vector])> = asked
        .iter()
        .filter(|(b, _)| !same.contains(*b))
        .copied()
        .collect();
    let (s_answers, t_answers) = tokio::join!(
        exact(source, &src.exact, &differing, k),
        exact(target, &tgt.exact, &asked, k),
    );
    let s_answers = s_answers.map_err(|e| VerifyError::new(Side::Source, source.label, None, e))?;
    let t_answers = t_answers.map_err(terr(None))?;
    let mut s_answers = differing.iter().map(|(b, _)| *b).zip(s_answers);
    let mut next_source = s_answers.next();
    for (&(bot, queries), t) in asked.iter().zip(t_answers) {
        let s = match &next_source {
            Some((b, _)) if *b == bot => {
                let s = next_source.take().map(|(_, s)| s).unwrap_or_default();
                next_source = s_answers.next();
                s
            }
            _ => {
                overlap_by_checksum += 1;
                t.clone()
            }
        };
        let mut overlap_sum = 0.0;
        let mut recall_sum = 0.0;
        let mut first_uses_index = false;
        for (i, q) in queries.iter().enumerate() {
            overlap_sum += overlap(&s[i], &t[i]);
            let Some(idx) = &index else {
                // Without a vector index the platform's query is an exact search: recall 1.
                recall_sum += 1.0;
                continue;
            };
            // A plan without the vector index (the bot's own index and a sort, which the
            // planner often prefers for small bots) is an exact search too: its answer is the
            // exact one, so it is not run (it would read every vector of the bot again).
            let uses = uses_index(target, &tgt.platform, bot, q, limit, &idx.name)
                .await
                .map_err(terr(Some(bot)))?;
            if i == 0 {
                first_uses_index = uses;
            }
            if !uses {
                exact_by_plan += 1;
                recall_sum += 1.0;
                continue;
            }
            let approx: Vec<String> = target
                .client
                .query(&tgt.platform, &[&bot.as_str(), q, &limit])
                .await
                .map_err(|e| {
                    VerifyError::new(
                        Side::Target,
                        target.label,
                        Some(bot),
                        StoreError::query("running the platform's query", e),
                    )
                })?
                .iter()
                .map(|r| {
                    r.get::<_, Option<String>>(0)
                        .unwrap_or_else(|| NULL_KEY.to_owned())
                })
                .collect();
            if approx.len() < t[i].len() {
                short_results += 1;
            }
            recall_sum += recall(&approx, &t[i]);
        }
        if first_uses_index {
            index_used_bots += 1;
        }
        let n = queries.len();
        total_queries += n;
        overlaps.push(BotScore {
            bot_id: bot.clone(),
            score: overlap_sum / n as f64,
            queries: n,
        });
        recalls.push(BotScore {
            bot_id: bot.clone(),
            score: recall_sum / n as f64,
            queries: n,
        });
    }
    let settings = pgvector_settings(target).await.map_err(terr(None))?;
    let mean = |scores: &[BotScore]| {
        let (sum, n) = scores.iter().fold((0.0, 0usize), |(s, n), b| {
            (s + b.score * b.queries as f64, n + b.queries)
        });
        if n == 0 {
            1.0
        } else {
            sum / n as f64
        }
    };
    let min = |scores: &[BotScore]| scores.iter().map(|b| b.score).fold(1.0, f64::min);
    let mut lowest: Vec<BotScore> = recalls.iter().filter(|b| b.score < 1.0).cloned().collect();
    lowest.sort_by(|a, b| a.score.total_cmp(&b.score));
    lowest.truncate(WORST_LISTED);
    Ok(RetrievalReport {
        k,
        queries_per_bot,
        bots: overlaps.len(),
        queries: total_queries,
        overlap_by_checksum,
        overlap_at_k: mean(&overlaps),
        min_overlap: min(&overlaps),
        disagreeing: overlaps.iter().filter(|b| b.score < 1.0).cloned().collect(),
        recall_at_k: mean(&recalls),
        min_recall: min(&recalls),
        lowest_recall: lowest,
        short_results,
        index,
        index_used_bots,
        exact_by_plan,
        settings,
    })
}

/// Whether the planner picks the vector index for the platform's query of this bot.
async fn uses_index(
    store: &Store<'_>,
    platform_sql: &str,
    bot: &str,
    query: &Vector,
    limit: i64,
    index_name: &str,
) -> Result<bool, StoreError> {
    let row = store
        .client
        .query_one(
            &format!("EXPLAIN (FORMAT JSON) {platform_sql}"),
            &[&bot, query, &limit],
        )
        .await
        .map_err(|e| StoreError::query("explaining the platform's query", e))?;
    let plan: serde_json::Value = row.get(0);
    Ok(plan
        .to_string()
        .contains(&format!("\"Index Name\":\"{index_name}\"")))
}

/// pgvector's query-time settings as the target's sessions get them (database, role and server
/// defaults included).
async fn pgvector_settings(store: &Store<'_>) -> Result<BTreeMap<String, String>, StoreError> {
    // pgvector registers its settings when its library loads; make sure it has.
    store
        .client
        .batch_execute("SELECT '[1]'::vector <-> '[1]'::vector")
        .await
        .map_err(|e| StoreError::query("loading pgvector", e))?;
    let rows = store
        .client
        .query(
            "SELECT name, setting FROM pg_settings
              WHERE name LIKE 'hnsw.%' OR name LIKE 'ivfflat.%' ORDER BY name",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading pgvector settings", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, Option<String>>(1).unwrap_or_default()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_nearest_ties_by_id_as_a_full_sort_would() {
        let seen = [
            (3.0, "c"),
            (1.0, "z"),
            (2.0, "b"),
            (1.0, "a"),
            (f64::INFINITY, "n"),
            (2.0, "a"),
            (0.5, "q"),
        ];
        for k in 0..=seen.len() + 1 {
            let mut top = TopK::new(k);
            for (d, id) in seen {
                top.offer(d, id);
            }
            let mut sorted = seen.to_vec();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            let want: Vec<String> = sorted.iter().take(k).map(|x| x.1.to_owned()).collect();
            assert_eq!(top.into_ids(), want, "k = {k}");
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overlap_and_recall() {
        assert_eq!(overlap(&ids(&["a", "b"]), &ids(&["b", "a"])), 1.0);
        assert_eq!(overlap(&ids(&["a", "b"]), &ids(&["a"])), 0.5);
        assert_eq!(overlap(&[], &[]), 1.0);
        assert_eq!(recall(&ids(&["a"]), &ids(&["a", "b", "c", "d"])), 0.25);
        assert_eq!(recall(&ids(&["x"]), &[]), 1.0);
        assert!(
            ragshift_store::schema::version_at_least("0.8.0", (0, 7))
                && !ragshift_store::schema::version_at_least("0.6.2", (0, 7))
        );
    }
}
