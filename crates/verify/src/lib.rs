//! Proving a migration: after `rebuild`, `copy`, `import` or `replicate`, does the target hold
//! what the source held, and does it answer questions the same way?
//!
//! - [`checksums`]: per bot, row count and a checksum of every column (vectors in binary form),
//!   computed inside both servers at once; bots missing, extra or different, with the first
//!   differing ids.
//! - [`coverage`]: every bot of the registry with knowledge has rows in the target; rows whose
//!   bot no longer exists (orphans) are listed.
//! - [`sequences`]: every identity or serial column of the source has a sequence on the target
//!   standing past the target's largest value.
//! - [`structure`]: the source's constraints (primary key, unique, check, foreign key, NOT
//!   NULL) and indexes are on the target too (a vector index of another method counts).
//! - [`retrieval`]: sample queries from the bots' own embeddings; exact top-k on both sides
//!   (overlap@k, 1.0 for identical data) and the platform's query on the target's real index
//!   (recall@k, with the settings used).
//! - [`sides`]: the two tables as the configuration names them, and the refusal of a table
//!   compared with itself.
//!
//! [`verify`] runs all three and returns a [`Report`]; [`Report::passed`] is the verdict.
//!
//! ```no_run
//! # async fn demo(s: &tokio_postgres::Client, t: &tokio_postgres::Client) {
//! use ragshift_store::Layout;
//! use ragshift_verify::{verify, Options, Store};
//! let layout = Layout::default();
//! let source = Store { client: s, layout: &layout, label: "postgres://app:****@old/rag", beside: None };
//! let target = Store { client: t, layout: &layout, label: "postgres://app:****@new/rag", beside: None };
//! let report = verify(&source, &target, &Options::default()).await.expect("ran");
//! assert!(report.passed());
//! # }
//! ```

pub mod checksums;
pub mod coverage;
mod error;
pub mod retrieval;
pub mod sequences;
pub mod sides;
pub mod structure;

use std::collections::{HashMap, HashSet};

use ragshift_model::Bot;
use ragshift_store::checksum::{self, Grouping, NULL_KEY};
use ragshift_store::compare;
use ragshift_store::schema::read_shape;
use ragshift_store::{Layout, StoreError, StoreErrorKind};
use serde::Serialize;
use tokio_postgres::Client;

pub use checksums::ChecksumReport;
pub use coverage::CoverageReport;
pub use error::{Side, VerifyError};
pub use retrieval::RetrievalReport;
pub use sides::{layouts, same_table};

/// One side of the comparison: a connection, where the chunks are, and the server's masked
/// label for messages.
#[derive(Clone, Copy)]
pub struct Store<'a> {
    /// An open connection.
    pub client: &'a Client,
    /// The chunk table and its columns.
    pub layout: &'a Layout,
    /// The server as shown to users (password masked).
    pub label: &'a str,
    /// A second connection to the same database, when the caller opened one: the target's
    /// platform queries run on it while `client` reads the checksums, instead of after them.
    pub beside: Option<&'a Client>,
}

impl<'a> Store<'a> {
    /// The same side on its second connection (this one when there is none).
    fn on_beside(&self) -> Store<'a> {
        Store {
            client: self.beside.unwrap_or(self.client),
            ..*self
        }
    }
}

/// What to verify and how hard.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only these bots (all when `None`).
    pub bots: Option<Vec<String>>,
    /// Sample queries per bot for retrieval agreement; 0 skips it.
    pub queries: usize,
    /// Results per query (the platform's `max_results`, 20 by default).
    pub k: usize,
    /// Differing ids listed per bot at most.
    pub max_ids: usize,
    /// The registry's bots, for coverage; `None` skips coverage.
    pub registry: Option<Vec<Bot>>,
    /// Report orphans without failing.
    pub allow_orphans: bool,
    /// Fail when the target's index recall@k is below this.
    pub min_recall: Option<f64>,
    /// The caller builds the vector index after verifying (replicate's cutover): a missing one
    /// is listed without failing.
    pub vector_index_later: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bots: None,
            queries: 5,
            k: 20,
            max_ids: 10,
            registry: None,
            allow_orphans: false,
            min_recall: None,
            vector_index_later: false,
        }
    }
}

impl Options {
    /// These options, unless they can't be checked (no results per query, a recall outside
    /// 0..1): refused before any work, naming the flag.
    pub fn checked(self) -> Result<Self, String> {
        if self.k == 0 {
            return Err("--k must be at least 1".to_owned());
        }
        if let Some(r) = self.min_recall.filter(|r| !(0.0..=1.0).contains(r)) {
            return Err(format!("--min-recall must be between 0 and 1, not {r}"));
        }
        Ok(self)
    }
}

/// Everything a verification found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The source server (masked).
    pub source: String,
    /// The target server (masked).
    pub target: String,
    /// Source table.
    pub source_table: String,
    /// Target table.
    pub target_table: String,
    /// Whether everything matched.
    pub passed: bool,
    /// Why it did not pass, one line each.
    pub failures: Vec<String>,
    /// Per-bot counts and checksums.
    pub checksums: ChecksumReport,
    /// Registry coverage, when a registry was given.
    pub coverage: Option<CoverageReport>,
    /// Retrieval agreement, unless skipped.
    pub retrieval: Option<RetrievalReport>,
    /// Why retrieval agreement was skipped, when it was.
    pub retrieval_skipped: Option<String>,
    /// The target's sequences for the source's numbered columns.
    pub sequences: Vec<sequences::SequenceCheck>,
    /// Tables the chunk table refers to by foreign key, compared whole.
    pub referenced: Vec<ReferencedTable>,
    /// The source's constraints and indexes, each looked for on the target.
    pub structure: Vec<structure::StructureCheck>,
}

impl Report {
    /// Whether everything matched.
    pub fn passed(&self) -> bool {
        self.passed
    }
}

/// Runs every check; errors only when a check could not run (a server, a table, a statement).
pub async fn verify(
    source: &Store<'_>,
    target: &Store<'_>,
    options: &Options,
) -> Result<Report, VerifyError> {
    let (s_shape, t_shape) = tokio::join!(
        read_shape(source.client, source.layout),
        read_shape(target.client, target.layout)
    );
    let s_shape = s_shape.map_err(|e| VerifyError::new(Side::Source, source.label, None, e))?;
    let t_shape = t_shape.map_err(|e| VerifyError::new(Side::Target, target.label, None, e))?;
    // The embedding column's type on each side: `vector(n)` gets retrieval agreement too;
    // other types (halfvec, untyped vector) are compared by their checksums only.
    let mut types = Vec::new();
    for (shape, side, store) in [
        (&s_shape, Side::Source, source),
        (&t_shape, Side::Target, target),
    ] {
        let column = shape
            .as_ref()
            .and_then(|s| s.columns.iter().find(|c| c.name == store.layout.embedding));
        let Some(column) = column else {
            return Err(VerifyError::new(
                side,
                store.label,
                None,
                StoreError::new(
                    StoreErrorKind::ShapeMismatch,
                    format!(
                        "there is no table {} with a column {:?}; check [{side}] schema, table and embedding_column",
                        store.layout.display_name(),
                        store.layout.embedding
                    ),
                ),
            ));
        };
        types.push(column.type_name.clone());
    }
    let dimension = |shape: &Option<ragshift_store::schema::TableShape>, column: &str| {
        shape.as_ref().and_then(|s| s.dimension_of(column))
    };
    let s_dim = dimension(&s_shape, &source.layout.embedding);
    let t_dim = dimension(&t_shape, &target.layout.embedding);

    let bots = options.bots.as_deref();
    // A table without a bot column is compared per range of its id, cut at the source's ids.
    let grouping = checksum::id_ranges(source.client, source.layout)
        .await
        .map_err(|e| VerifyError::new(Side::Source, source.label, None, e))?;
    // Retrieval needs the same vector(n) on both sides; otherwise it is skipped (why) and may
    // fail the check (the failure).
    let mut failures = Vec::new();
    let skipped: Option<String> = if options.queries == 0 {
        Some("--queries 0".to_owned())
    } else if types[0] != types[1] {
        failures.push(format!(
            "the source stores {} and the target {}: their answers can't agree",
            types[0], types[1]
        ));
        Some("the embedding columns' types differ".to_owned())
    } else if s_dim.is_none() {
        Some(format!(
            "the embedding column is {}, and retrieval agreement is measured on vector(n) columns only; every column's checksum was compared",
            types[0]
        ))
    } else if s_dim != t_dim {
        failures.push(format!(
            "the source stores vector({}) and the target vector({}): their answers can't agree",
            s_dim.unwrap_or_default(),
            t_dim.unwrap_or_default()
        ));
        Some("vector dimensions differ".to_owned())
    } else {
        None
    };
    // With retrieval, the queries are sampled first. Then the source reads its checksums and
    // its exact answers in one pass, while the target reads its checksums and answers the
    // platform's queries: each vector is read once on each side.
    let (s_sums, t_sums, searched) = if skipped.is_none() {
        let k = options.k.max(1);
        let src = retrieval::prepare(source, Side::Source).await?;
        let tgt = retrieval::prepare(target, Side::Target).await?;
        let sample = retrieval::sample(source, &src, bots, options.queries).await?;
        // On one connection the platform's queries wait for the checksums; on two they run
        // beside them.
        let on_target = async {
            let sums = async {
                checksum::group_checksums(target.client, target.layout, &grouping, bots)
                    .await
                    .map_err(|e| VerifyError::new(Side::Target, target.label, None, e))
            };
            let beside = target.on_beside();
            tokio::try_join!(sums, retrieval::platform_answers(&beside, &tgt, &sample, k))
        };
        let (on_source, on_target) = tokio::join!(
            retrieval::checksums_and_exact(source, &src, &grouping, bots, &sample, k),
            on_target,
        );
        let (s_sums, source_answers) = on_source?;
        let (t_sums, platform) = on_target?;
        let searched = retrieval::Searched {
            sample,
            source: source_answers,
            platform,
        };
        (s_sums, t_sums, Some((searched, tgt)))
    } else {
        let (s_sums, t_sums) = checksums::read_both(source, target, &grouping, bots).await?;
        (s_sums, t_sums, None)
    };
    let mut sums = checksums::compare(&s_sums, &t_sums);
    checksums::explain(source, target, &grouping, &mut sums, options.max_ids).await?;

    // Collections by name where the bot column refers to a table that names them (LangChain).
    let names = collection_names(source.client, source.layout)
        .await
        .map_err(|e| VerifyError::new(Side::Source, source.label, None, e))?;
    for b in &sums.missing {
        failures.push(format!(
            "{} is missing on the target ({} rows on the source)",
            bot_name(&names, &b.bot_id),
            b.rows
        ));
    }
    for b in &sums.extra {
        failures.push(format!(
            "{} is on the target only ({} rows)",
            bot_name(&names, &b.bot_id),
            b.rows
        ));
    }
    for d in &sums.different {
        let null_ids = [&d.missing_ids, &d.extra_ids, &d.changed_ids]
            .iter()
            .any(|ids| ids.iter().any(|id| id == NULL_KEY));
        let columns: Vec<String> = d
            .changed_columns
            .iter()
            .map(|r| format!("{}: {}", r.id, r.columns.join(", ")))
            .collect();
        failures.push(format!(
            "{} differs: {} rows on the source, {} on the target; missing {:?}, extra {:?}, changed {:?}{}{}{}",
            bot_name(&names, &d.bot_id),
            d.source_rows,
            d.target_rows,
            d.missing_ids,
            d.extra_ids,
            d.changed_ids,
            if d.more { " (more not listed)" } else { "" },
            if columns.is_empty() { String::new() } else { format!("; columns that differ: {}", columns.join("; ")) },
            if null_ids { format!(" ({NULL_KEY} is a row whose id is NULL)") } else { String::new() }
        ));
    }

    let coverage = options
        .registry
        .as_deref()
        .map(|registry| coverage::coverage(registry, &t_sums, bots));
    if let Some(c) = &coverage {
        for key in &c.without_rows {
            failures.push(format!(
                "bot {key} has knowledge in the registry but no rows in the target"
            ));
        }
        if !options.allow_orphans {
            for o in &c.orphans {
                failures.push(format!(
                    "{} has {} rows in the target but is not in the registry (orphan)",
                    bot_name(&names, &o.bot_id),
                    o.rows
                ));
            }
        }
    }

    let sequences = sequences::check(source.client, source.layout, target.client, target.layout)
        .await
        .map_err(|e| VerifyError::new(Side::Target, target.label, None, e))?;
    failures.extend(sequences.iter().filter_map(|s| s.problem.clone()));
    let structure = structure::check(source.client, source.layout, target.client, target.layout)
        .await
        .map_err(|e| VerifyError::new(Side::Target, target.label, None, e))?;
    failures.extend(
        structure
            .iter()
            .filter(|s| !(options.vector_index_later && s.vector_index))
            .filter_map(|s| s.problem.clone()),
    );
    let referenced = referenced_tables(source, target).await?;
    for r in &referenced {
        if let Some(p) = &r.problem {
            failures.push(p.clone());
        }
    }

    let (retrieval, retrieval_skipped) = if let Some((searched, tgt)) = searched {
        // Bots whose rows are all the same on both sides: their exact answers agree already.
        let differing: HashSet<&str> = sums
            .missing
            .iter()
            .map(|b| b.bot_id.as_str())
            .chain(sums.different.iter().map(|d| d.bot_id.as_str()))
            .collect();
        let ids = &searched.sample.bots;
        let same: HashSet<String> = match grouping {
            Grouping::Bot => ids
                .iter()
                .filter(|b| !differing.contains(b.as_str()))
                .cloned()
                .collect(),
            Grouping::IdRanges { .. } if differing.is_empty() && sums.extra.is_empty() => {
                ids.iter().cloned().collect()
            }
            Grouping::IdRanges { .. } => HashSet::new(),
        };
        let r = retrieval::compare(
            target,
            &tgt,
            searched,
            &same,
            options.queries,
            options.k.max(1),
        )
        .await?;
        for b in &r.disagreeing {
            failures.push(format!(
                "{}: exact top-{} answers differ between source and target (overlap@k {:.3})",
                bot_name(&names, &b.bot_id),
                r.k,
                b.score
            ));
        }
        if let Some(min) = options.min_recall {
            if r.recall_at_k < min {
                failures.push(format!(
                    "the target's index gives recall@{} {:.3}, below --min-recall {min}",
                    r.k, r.recall_at_k
                ));
            }
        }
        (Some(r), None)
    } else {
        (None, skipped)
    };

    Ok(Report {
        source: source.label.to_owned(),
        target: target.label.to_owned(),
        source_table: source.layout.display_name(),
        target_table: target.layout.display_name(),
        passed: failures.is_empty(),
        failures,
        checksums: sums,
        coverage,
        retrieval,
        retrieval_skipped,
        sequences,
        referenced,
        structure,
    })
}

/// A table the chunk table refers to by foreign key, compared whole.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReferencedTable {
    /// On the target.
    pub table: String,
    /// Rows on the source.
    pub source_rows: i64,
    /// Rows on the target (`None`: the table is missing there).
    pub target_rows: Option<i64>,
    /// What is wrong, if anything.
    pub problem: Option<String>,
}

/// Compares every column of every row of each table the source's chunk table refers to
/// (LangChain's collections): without them the chunks point at nothing.
async fn referenced_tables(
    source: &Store<'_>,
    target: &Store<'_>,
) -> Result<Vec<ReferencedTable>, VerifyError> {
    let found = ragshift_store::schema::referenced_tables(source.client, source.layout)
        .await
        .map_err(|e| VerifyError::new(Side::Source, source.label, None, e))?;
    let mut out = Vec::new();
    for r in &found {
        let (sl, tl) = ragshift_store::schema::counterpart(source.layout, target.layout, r);
        let c = compare::compare_tables(source.client, &sl, target.client, &tl)
            .await
            .map_err(|e| VerifyError::of(source, target, None, e))?;
        let (s_rows, s_sum) = (c.source.0, &c.source.1);
        let (target_rows, problem) = match &c.target {
            Some((t_rows, t_sum)) => {
                let problem = (!c.same()).then(|| {
                    format!(
                        "referenced table {} differs: {s_rows} rows on the source, {t_rows} on the target, checksums {s_sum} and {t_sum}",
                        tl.display_name()
                    )
                });
                (Some(*t_rows), problem)
            }
            None => (
                None,
                Some(format!(
                    "referenced table {} is missing on the target (the store's chunks, or its --extra-table, need it)",
                    tl.display_name()
                )),
            ),
        };
        out.push(ReferencedTable {
            table: tl.display_name(),
            source_rows: s_rows,
            target_rows,
            problem,
        });
    }
    Ok(out)
}

/// The names of the collections the bot column refers to, by key: when it has a foreign key
/// to a table with a `name` column (LangChain's `langchain_pg_collection`), so failures say
/// "collection manuals" rather than a uuid. Empty otherwise.
async fn collection_names(
    client: &Client,
    layout: &Layout,
) -> Result<HashMap<String, String>, StoreError> {
    if layout.bot.is_empty() {
        return Ok(HashMap::new());
    }
    let what = "finding the names of the collections";
    let parent = client
        .query_opt(
            "SELECT con.confrelid::regclass::text, pa.attname::text
               FROM pg_constraint con
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
               JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[1]
              WHERE con.conrelid = to_regclass($1) AND con.contype = 'f'
                AND cardinality(con.conkey) = 1 AND a.attname = $2
                AND EXISTS (SELECT 1 FROM pg_attribute n WHERE n.attrelid = con.confrelid
                              AND n.attname = 'name' AND NOT n.attisdropped)
              LIMIT 1",
            &[&layout.qualified(), &layout.bot],
        )
        .await
        .map_err(|e| StoreError::query(what, e))?;
    let Some(parent) = parent else {
        return Ok(HashMap::new());
    };
    // The table's name comes from `regclass` output, quoted as needed.
    let (table, key): (String, String) = (parent.get(0), parent.get(1));
    let rows = client
        .query(
            &format!(
                "SELECT {}, name::text FROM {table} WHERE name IS NOT NULL",
                checksum::key_text_sql(&key)
            ),
            &[],
        )
        .await
        .map_err(|e| StoreError::query(what, e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A bot as failures name it; the rows whose bot id is NULL are grouped under [`NULL_KEY`] and
/// said to be so.
fn bot_name(names: &HashMap<String, String>, bot_id: &str) -> String {
    if let Some(name) = names.get(bot_id) {
        return format!("collection {name} ({bot_id})");
    }
    if bot_id.is_empty() {
        "the table's rows (it has no bot column)".to_owned()
    } else if bot_id.starts_with("rows with ") {
        // An id range of a table without a bot column, named by its label.
        format!("the {bot_id}")
    } else if bot_id == NULL_KEY {
        format!("bot {NULL_KEY} (the rows whose bot id is NULL)")
    } else {
        format!("bot {bot_id}")
    }
}
