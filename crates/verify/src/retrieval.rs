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
use ragshift_store::checksum::{
    group_filter, hash_columns, key_text_of, key_text_sql, row_hash_sql, BotChecksum, Grouping,
    HashColumn, NULL_KEY,
};
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
pub struct Statements {
    /// The side they run on, for messages.
    side: Side,
    /// Every bot's sample (`$1` NULL) or some bots' (`$1`: their ids).
    sample_all: String,
    sample_some: String,
    /// The rows of the bots in `$1` with their bot's position `i`, id `id` and vector `e`,
    /// de-TOASTed once.
    asked_rows: String,
    platform: String,
    /// Every column of the table, the vector de-TOASTed once, each under its own name: the
    /// rows [`checksums_and_exact`] hashes and searches.
    detoasted_columns: String,
    /// A row's hash, as the store's checksums compute it.
    hash: String,
    /// Which of `$1`'s bots a row belongs to, by position.
    which: String,
}

/// The asked bots' queries, each bot's in order (`$2`: a bot's position, `$3`: a query).
const QUERIES_CTE: &str = "WITH q AS (
         SELECT u.i, array_agg(u.v ORDER BY u.n) AS qs
           FROM unnest($2::int4[], $3::vector[]) WITH ORDINALITY AS u(i, v, n)
          GROUP BY u.i)";

/// `, l2_distance(r.e, q.qs[1]), …` for `n` queries: one column per query, NULL past the
/// bot's last query. Plain columns, not an array built by a subquery per row, which took more
/// time than reading the vector.
fn distance_columns(n: usize) -> String {
    (1..=n)
        .map(|j| format!(", l2_distance(r.e, q.qs[{j}])"))
        .collect()
}

impl Statements {
    /// `bot_type`: the bot column's type, so a bot id given as text is compared with it as that
    /// type (uuid, bigint, `character(n)`) and the column's index still serves the query.
    /// `columns`: every column of the table (as the checksums hash them).
    fn new(
        store: &Store<'_>,
        side: Side,
        subvector: bool,
        bot_type: &str,
        columns: &[HashColumn],
    ) -> Self {
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
        let sample = |filter: &str| {
            // Each bot's first `$2` rows by md5 of the id: a deterministic sample.
            format!(
                "SELECT s.b, s.e FROM (
                     SELECT {bot_text} AS b, {emb} AS e,
                            row_number() OVER (PARTITION BY {bot} ORDER BY md5({id}::text)) AS n
                       FROM {table} WHERE {filter} AND {bot} IS NOT NULL AND {emb} IS NOT NULL) s
                  WHERE s.n <= $2 ORDER BY s.b, s.n",
                bot_text = key_text_of(&bot),
            )
        };
        let listed: Vec<String> = columns
            .iter()
            .map(|c| {
                let col = quote_ident(&c.name);
                if c.name == l.embedding {
                    format!("{detoasted} AS {col}")
                } else {
                    col
                }
            })
            .collect();
        Self {
            side,
            sample_all: sample("$1::text[] IS NULL"),
            sample_some: sample(&format!("{bot} = ANY({asked})")),
            // The fence (OFFSET 0) makes the vector de-TOASTed once, not once per query.
            asked_rows: format!(
                "SELECT {which} AS i, {id_text} AS id, {detoasted} AS e
                   FROM {table} WHERE {bot} = ANY({asked}) AND {emb} IS NOT NULL
                 OFFSET 0"
            ),
            platform: format!(
                "SELECT {id_text} FROM {table} WHERE {bot} = $1::text::{bot_type} ORDER BY {emb} <-> $2 LIMIT $3"
            ),
            detoasted_columns: listed.join(", "),
            hash: row_hash_sql(columns),
            which,
        }
    }
}

/// The statements retrieval runs on `store`, read once per side from its catalog (pgvector's
/// version, the bot column's type, the columns the checksums hash).
pub async fn prepare(store: &Store<'_>, side: Side) -> Result<Statements, VerifyError> {
    let err = |e| VerifyError::new(side, store.label, None, e);
    let version = vector_version(store.client)
        .await
        .map_err(err)?
        .unwrap_or_default();
    let shape = ragshift_store::schema::read_shape(store.client, store.layout)
        .await
        .map_err(err)?;
    let columns = hash_columns(store.client, store.layout)
        .await
        .map_err(err)?;
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
        side,
        ragshift_store::schema::version_at_least(&version, (0, 7)),
        &bot_type,
        &columns,
    ))
}

/// The query vectors of each bot: a deterministic sample of its own chunks on the source.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Bots with at least one query, as the checksums name them.
    pub bots: Vec<String>,
    /// Each bot's queries, in the order of `bots`.
    pub queries: Vec<Vec<Vector>>,
}

impl Sample {
    /// Each bot with its queries.
    fn asked(&self) -> Vec<(&String, &[Vector])> {
        self.bots
            .iter()
            .zip(&self.queries)
            .map(|(b, q)| (b, q.as_slice()))
            .collect()
    }
}

/// Up to `per_bot` query vectors for each bot (of `wanted`, or all), from the source in one
/// pass. Without a bot column the whole table is one collection, named `""`.
pub async fn sample(
    source: &Store<'_>,
    statements: &Statements,
    wanted: Option<&[String]>,
    per_bot: usize,
) -> Result<Sample, VerifyError> {
    let err = |e| VerifyError::new(statements.side, source.label, None, e);
    let per_bot = i64::try_from(per_bot).unwrap_or(i64::MAX);
    let wanted = wanted.filter(|_| !source.layout.bot.is_empty());
    let sql = if wanted.is_some() {
        &statements.sample_some
    } else {
        &statements.sample_all
    };
    let mut sample = Sample::default();
    let params: [&(dyn ToSql + Sync); 2] = [&wanted, &per_bot];
    for_each_row(source, sql, &params, "sampling query vectors", |r| {
        let (Some(b), Some(v)) = (r.get::<_, Option<String>>(0), r.get::<_, Option<Vector>>(1))
        else {
            return;
        };
        if sample.bots.last() != Some(&b) {
            sample.bots.push(b);
            sample.queries.push(Vec::new());
        }
        if let Some(q) = sample.queries.last_mut() {
            q.push(v);
        }
    })
    .await
    .map_err(err)?;
    Ok(sample)
}

/// Exact answers, nearest first, for each query of each bot asked.
pub type Answers = Vec<Vec<Vec<String>>>;

/// One side's counts and checksums per group (as [`checksum::group_checksums`] computes them)
/// and its exact answers to every sampled query, from ONE read of the table: at a million rows
/// the table outgrows the page cache and reading a vector costs more than hashing it. Rows
/// stream through with their hash and distances; the sums are kept per group (exact, in 128
/// bits) and `k` ids per query.
///
/// [`checksum::group_checksums`]: ragshift_store::checksum::group_checksums
pub async fn checksums_and_exact(
    store: &Store<'_>,
    statements: &Statements,
    grouping: &Grouping,
    wanted: Option<&[String]>,
    sample: &Sample,
    k: usize,
) -> Result<(Vec<BotChecksum>, Answers), VerifyError> {
    let err = |e| VerifyError::new(statements.side, store.label, None, e);
    let group = grouping.sql(store.layout);
    let (filter, wanted) = group_filter(&group, wanted, 4);
    let asked = sample.asked();
    // The fence (OFFSET 0) makes the vector de-TOASTed once for the hash and every distance.
    let sql = format!(
        "{QUERIES_CTE}
         SELECT r.g, r.h, r.id, r.i{distances}
           FROM (SELECT {group} AS g, {hash} AS h, {id_text} AS id, {which} AS i, {emb} AS e
                   FROM (SELECT {columns} FROM {table} WHERE {filter} OFFSET 0) t) r
           LEFT JOIN q ON q.i = r.i",
        distances = distance_columns(most_queries(&asked)),
        hash = statements.hash,
        id_text = key_text_sql(&store.layout.id),
        which = statements.which,
        emb = quote_ident(&store.layout.embedding),
        columns = statements.detoasted_columns,
        table = store.layout.qualified(),
    );
    let (bots, positions, vectors) = by_position(&asked);
    let what = format!("checksumming and searching {}", store.layout.display_name());
    let mut sums: BTreeMap<String, (i64, i128)> = BTreeMap::new();
    let mut best = top_ks(&asked, k);
    let params: [&(dyn ToSql + Sync); 4] = [&bots, &positions, &vectors, &wanted];
    for_each_row(store, &sql, &params, &what, |r| {
        let g: Option<String> = r.get(0);
        let h: i64 = r.get(1);
        let sum = sums
            .entry(g.unwrap_or_else(|| NULL_KEY.to_owned()))
            .or_default();
        sum.0 += 1;
        sum.1 += i128::from(h);
        offer_row(&mut best, r, 3);
    })
    .await
    .map_err(err)?;
    let sums = sums
        .into_iter()
        .map(|(bot_id, (rows, sum))| BotChecksum {
            bot_id,
            rows,
            checksum: sum.to_string(),
        })
        .collect();
    Ok((sums, into_answers(best)))
}

/// Streams the rows of `sql` into `each`, so memory holds one row whatever the table's size.
async fn for_each_row(
    store: &Store<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: &str,
    mut each: impl FnMut(&tokio_postgres::Row),
) -> Result<(), StoreError> {
    let rows = store
        .client
        .query_raw(sql, params.iter().copied())
        .await
        .map_err(|e| StoreError::query(what, e))?;
    let mut rows = std::pin::pin!(rows);
    while let Some(r) = rows
        .try_next()
        .await
        .map_err(|e| StoreError::query(what, e))?
    {
        each(&r);
    }
    Ok(())
}

/// The most queries any bot has.
fn most_queries(asked: &[(&String, &[Vector])]) -> usize {
    asked.iter().map(|(_, q)| q.len()).max().unwrap_or(0)
}

/// The asked bots' ids, and each query with its bot's position (1-based), for `$1..$3`.
fn by_position<'a>(
    asked: &[(&'a String, &'a [Vector])],
) -> (Vec<&'a str>, Vec<i32>, Vec<&'a Vector>) {
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
    (bots, positions, vectors)
}

/// `k` best per query of each bot asked.
fn top_ks(asked: &[(&String, &[Vector])], k: usize) -> Vec<Vec<TopK>> {
    asked
        .iter()
        .map(|(_, q)| (0..q.len()).map(|_| TopK::new(k)).collect())
        .collect()
}

/// Offers one row to its bot's queries: the row has its bot's position (1-based), then its id,
/// then one distance per query, from column `at`.
fn offer_row(best: &mut [Vec<TopK>], row: &tokio_postgres::Row, at: usize) {
    let Some(tops) = row
        .get::<_, Option<i32>>(at)
        .and_then(|i| usize::try_from(i - 1).ok())
        .and_then(|i| best.get_mut(i))
    else {
        return;
    };
    // Ids come as text with NULL spelled out; a NULL distance (none is expected) ranks last.
    let id: Option<String> = row.get(at - 1);
    let id = id.unwrap_or_else(|| NULL_KEY.to_owned());
    for (j, top) in tops.iter_mut().enumerate() {
        let d: Option<f64> = row.get(at + 1 + j);
        top.offer(d.unwrap_or(f64::INFINITY), &id);
    }
}

fn into_answers(best: Vec<Vec<TopK>>) -> Answers {
    best.into_iter()
        .map(|tops| tops.into_iter().map(TopK::into_ids).collect())
        .collect()
}

/// Exact top-k ids for each query of each bot in `asked` (bot, its queries), in query order:
/// nearest first, ties by id (bytewise). The rows of every bot asked about are streamed in one
/// pass and each query keeps only its `k` best so far, so memory holds `k` ids per query
/// whatever the table's size.
async fn exact(
    store: &Store<'_>,
    statements: &Statements,
    asked: &[(&String, &[Vector])],
    k: usize,
) -> Result<Answers, StoreError> {
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{QUERIES_CTE}
         SELECT r.id, r.i{distances} FROM ({rows}) r JOIN q ON q.i = r.i",
        distances = distance_columns(most_queries(asked)),
        rows = statements.asked_rows,
    );
    let (bots, positions, vectors) = by_position(asked);
    let mut best = top_ks(asked, k);
    let params: [&(dyn ToSql + Sync); 3] = [&bots, &positions, &vectors];
    for_each_row(store, &sql, &params, "exact search", |r| {
        offer_row(&mut best, r, 1)
    })
    .await?;
    Ok(into_answers(best))
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

/// The platform's own query on the target for every sampled query.
#[derive(Debug, Clone, Default)]
pub struct PlatformAnswers {
    /// The target's vector index.
    index: Option<IndexInfo>,
    /// Per bot and query: the answer where the planner uses the vector index; `None` where the
    /// plan is an exact search (no vector index, or a plan without it), answering exactly.
    answers: Vec<Vec<Option<Vec<String>>>>,
}

/// Runs the platform's query, `WHERE bot = $1 ORDER BY embedding <-> $2 LIMIT k`, on the target
/// for every sampled query, with the target's index and settings. It needs only the sample, so
/// it runs while the source reads its exact answers.
pub async fn platform_answers(
    target: &Store<'_>,
    tgt: &Statements,
    sample: &Sample,
    k: usize,
) -> Result<PlatformAnswers, VerifyError> {
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
    let mut answers = Vec::with_capacity(sample.bots.len());
    for (bot, queries) in sample.asked() {
        let mut bot_answers = Vec::with_capacity(queries.len());
        for q in queries {
            // Without a vector index, or with a plan that doesn't use it (the bot's own index
            // and a sort, which the planner often prefers for small bots), the platform's query
            // is an exact search: its answer is the exact one, so it is not run (it would read
            // every vector of the bot again).
            let uses = match &index {
                Some(idx) => uses_index(target, &tgt.platform, bot, q, limit, &idx.name)
                    .await
                    .map_err(terr(Some(bot)))?,
                None => false,
            };
            if !uses {
                bot_answers.push(None);
                continue;
            }
            let approx: Vec<String> = target
                .client
                .query(&tgt.platform, &[&bot.as_str(), q, &limit])
                .await
                .map_err(|e| terr(Some(bot))(StoreError::query("running the platform's query", e)))?
                .iter()
                .map(|r| {
                    r.get::<_, Option<String>>(0)
                        .unwrap_or_else(|| NULL_KEY.to_owned())
                })
                .collect();
            bot_answers.push(Some(approx));
        }
        answers.push(bot_answers);
    }
    Ok(PlatformAnswers { index, answers })
}

/// What was read for retrieval while the checksums were: the sample, the source's exact
/// answers (from [`checksums_and_exact`]) and the platform's answers on the target.
#[derive(Debug, Clone, Default)]
pub struct Searched {
    /// The query vectors.
    pub sample: Sample,
    /// The source's exact answers to them.
    pub source: Answers,
    /// The platform's answers to them on the target.
    pub platform: PlatformAnswers,
}

/// Scores the sampled queries: overlap@k of both sides' exact answers, and recall@k of the
/// platform's answers on the target. `same`: the bots whose checksums are equal on both sides, whose
/// exact answers are the same by construction and so are read on the source only. The
/// target's exact answers are read for the other bots.
pub async fn compare(
    target: &Store<'_>,
    tgt: &Statements,
    searched: Searched,
    same: &HashSet<String>,
    queries_per_bot: usize,
    k: usize,
) -> Result<RetrievalReport, VerifyError> {
    let label = target.label;
    let terr = |bot: Option<&str>| {
        let bot = bot.map(str::to_owned);
        move |e| VerifyError::new(Side::Target, label, bot.as_deref(), e)
    };
    let mut overlaps: Vec<BotScore> = Vec::new();
    let mut recalls: Vec<BotScore> = Vec::new();
    let mut short_results = 0usize;
    let mut index_used_bots = 0usize;
    let mut exact_by_plan = 0usize;
    let mut total_queries = 0usize;
    let mut overlap_by_checksum = 0usize;
    let Searched {
        sample,
        source: source_answers,
        platform,
    } = searched;
    let asked = sample.asked();
    let differing: Vec<(&String, &[Vector])> = asked
        .iter()
        .filter(|(b, _)| !same.contains(*b))
        .copied()
        .collect();
    let t_answers = if differing.is_empty() {
        Vec::new()
    } else {
        exact(target, tgt, &differing, k)
            .await
            .map_err(terr(None))?
    };
    let mut t_answers = differing.iter().map(|(b, _)| *b).zip(t_answers).peekable();
    let PlatformAnswers { index, answers } = platform;
    for ((&(bot, queries), s), approx) in asked.iter().zip(source_answers).zip(answers) {
        // The target's answers where they were read; the source's where the rows are equal.
        let t = t_answers.next_if(|(b, _)| *b == bot).map(|(_, t)| t);
        if t.is_none() {
            overlap_by_checksum += 1;
        }
        let t = t.as_ref().unwrap_or(&s);
        let mut overlap_sum = 0.0;
        let mut recall_sum = 0.0;
        for (i, exact_t) in t.iter().enumerate().take(queries.len()) {
            overlap_sum += s.get(i).map_or(1.0, |s| overlap(s, exact_t));
            match approx.get(i) {
                Some(Some(approx)) => {
                    if approx.len() < exact_t.len() {
                        short_results += 1;
                    }
                    recall_sum += recall(approx, exact_t);
                }
                _ => {
                    if index.is_some() {
                        exact_by_plan += 1;
                    }
                    recall_sum += 1.0;
                }
            }
        }
        if matches!(approx.first(), Some(Some(_))) {
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
