//! Indexes and constraints for the target, read from the source catalog and built after the
//! data is in: every index (vector indexes first, they take longest) in parallel on separate
//! connections with `maintenance_work_mem` and parallel maintenance workers raised; primary
//! keys and unique constraints are built as plain unique indexes (so they don't block each
//! other) and attached with `ADD CONSTRAINT ... USING INDEX`; check and exclusion constraints
//! come last. Whatever the target already has (same name or same definition) is left alone, so
//! a resumed run only builds what is missing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Mutex;

use crate::ident::{quote_ident, Layout};
use crate::index::{ivfflat_lists_for, VectorIndex};
use crate::index_build::{build_index, IndexBuild, IndexBuildOptions};
use crate::{connect, ConnectSpec, StoreError};

use super::TableDef;

/// One statement (or two, for a constraint attached to its index) to run on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildStep {
    /// Index or constraint name on the target.
    pub name: String,
    /// `CREATE INDEX ...` or `ALTER TABLE ... ADD CONSTRAINT ...`.
    pub sql: String,
    /// `ALTER TABLE ... ADD CONSTRAINT ... USING INDEX` run once every index is built.
    pub attach: Option<String>,
    /// A pgvector index (built first).
    pub vector: bool,
}

/// What to build: indexes in parallel, then constraints one by one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildPlan {
    /// Indexes, built in parallel.
    pub indexes: Vec<BuildStep>,
    /// Check and exclusion constraints, added after the indexes.
    pub constraints: Vec<BuildStep>,
    /// What is not built and why (foreign keys, things already there).
    pub skipped: Vec<String>,
}

impl BuildPlan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty() && self.constraints.is_empty()
    }
}

/// Name of a source index or constraint on the target: the same, unless the target table has
/// another name, then the table's name inside it is replaced (or the target's appended).
pub fn target_name(name: &str, source: &Layout, target: &Layout) -> String {
    if source.table == target.table {
        return name.to_owned();
    }
    let mut renamed = if name.contains(&source.table) {
        name.replacen(&source.table, &target.table, 1)
    } else {
        format!("{name}_{}", target.table)
    };
    while renamed.len() > 63 {
        renamed.pop();
    }
    renamed
}

/// The opclass of the source's vector index, so a replacement index keeps the distance.
fn vector_opclass(source: &TableDef) -> &'static str {
    for ops in ["vector_cosine_ops", "vector_ip_ops", "vector_l1_ops"] {
        if source
            .indexes
            .iter()
            .any(|i| i.is_vector() && i.definition.contains(ops))
        {
            return ops;
        }
    }
    "vector_l2_ops"
}

/// Works out what the target lacks. `vector` replaces the source's vector indexes with the
/// user's choice; `rows` sizes ivfflat `lists` when not given.
pub fn plan_builds(
    source: &TableDef,
    source_layout: &Layout,
    target: &TableDef,
    target_layout: &Layout,
    vector: Option<VectorIndex>,
    rows: i64,
    foreign_keys: bool,
) -> BuildPlan {
    let mut plan = BuildPlan::default();
    let tgt_table = target_layout.qualified();
    let has_index = |name: &str, body: &str| {
        target
            .indexes
            .iter()
            .any(|i| i.name == name || i.body() == body)
    };
    for idx in &source.indexes {
        if idx.is_vector() && vector.is_some() {
            plan.skipped.push(format!(
                "{} (replaced by the chosen vector index)",
                idx.name
            ));
            continue;
        }
        let constraint = idx
            .constraint
            .as_ref()
            .and_then(|c| source.constraints.iter().find(|k| &k.name == c));
        if let Some(c) = constraint {
            if c.kind == "x" {
                continue; // added with its constraint below
            }
        }
        let Some((_, body)) = idx
            .definition
            .split_once(&format!("{} USING ", source.printed_name))
        else {
            plan.skipped.push(format!(
                "{} (definition not understood: {})",
                idx.name, idx.definition
            ));
            continue;
        };
        let name = target_name(&idx.name, source_layout, target_layout);
        if has_index(&name, body) {
            continue;
        }
        let unique = if idx.definition.starts_with("CREATE UNIQUE INDEX") {
            "UNIQUE "
        } else {
            ""
        };
        let attach = constraint.and_then(|c| {
            let con_name = target_name(&c.name, source_layout, target_layout);
            if target.constraints.iter().any(|t| t.name == con_name) {
                return None;
            }
            let what = match c.kind.as_str() {
                "p" => "PRIMARY KEY",
                "u" => "UNIQUE",
                _ => return None,
            };
            let mut sql = format!(
                "ALTER TABLE {tgt_table} ADD CONSTRAINT {} {what} USING INDEX {}",
                quote_ident(&con_name),
                quote_ident(&name)
            );
            if c.definition.contains("INITIALLY DEFERRED") {
                sql.push_str(" DEFERRABLE INITIALLY DEFERRED");
            } else if c.definition.contains("DEFERRABLE")
                && !c.definition.contains("NOT DEFERRABLE")
            {
                sql.push_str(" DEFERRABLE");
            }
            Some(sql)
        });
        plan.indexes.push(BuildStep {
            sql: format!(
                "CREATE {unique}INDEX {} ON {tgt_table} USING {body}",
                quote_ident(&name)
            ),
            name,
            attach,
            vector: idx.is_vector(),
        });
    }
    if let Some(kind) = vector {
        let name = target_layout.index_name(&target_layout.embedding);
        let col = quote_ident(&target_layout.embedding);
        let ops = vector_opclass(source);
        let (method, with) = match kind {
            VectorIndex::Hnsw { m, ef_construction } => {
                let mut o = Vec::new();
                if let Some(m) = m {
                    o.push(format!("m = {m}"));
                }
                if let Some(ef) = ef_construction {
                    o.push(format!("ef_construction = {ef}"));
                }
                ("hnsw", o)
            }
            VectorIndex::Ivfflat { lists } => (
                "ivfflat",
                vec![format!(
                    "lists = {}",
                    lists.unwrap_or_else(|| ivfflat_lists_for(rows.max(0) as u64))
                )],
            ),
        };
        let with = if with.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", with.join(", "))
        };
        let body = format!("{method} ({col} {ops}){with}");
        let exists = target
            .indexes
            .iter()
            .any(|i| i.name == name || i.is_vector());
        if !exists {
            plan.indexes.push(BuildStep {
                sql: format!(
                    "CREATE INDEX {} ON {tgt_table} USING {body}",
                    quote_ident(&name)
                ),
                name,
                attach: None,
                vector: true,
            });
        }
    }
    for c in &source.constraints {
        let name = target_name(&c.name, source_layout, target_layout);
        let present = target
            .constraints
            .iter()
            .any(|t| t.name == name || (t.kind == c.kind && t.definition == c.definition));
        match c.kind.as_str() {
            "f" if !foreign_keys => plan.skipped.push(format!(
                "foreign key {} ({}): the table it refers to is not moved with this one (another schema on the target)",
                c.name, c.definition
            )),
            "c" | "x" | "f" if !present => plan.constraints.push(BuildStep {
                sql: format!(
                    "ALTER TABLE {tgt_table} ADD CONSTRAINT {} {}",
                    quote_ident(&name),
                    c.definition
                ),
                name,
                attach: None,
                vector: false,
            }),
            _ => {}
        }
    }
    // Longest first: vector indexes, then the rest in name order.
    plan.indexes
        .sort_by(|a, b| b.vector.cmp(&a.vector).then(a.name.cmp(&b.name)));
    plan
}

/// How one step went.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltIndex {
    /// Index or constraint name.
    pub name: String,
    /// The statement.
    pub sql: String,
    /// Seconds it took.
    pub seconds: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// Session settings for index builds.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// Memory, workers and where progress goes, for each index build (the one build engine,
    /// [`crate::index_build`]).
    pub index: IndexBuildOptions,
    /// Builds at once.
    pub jobs: usize,
    /// How long a build waits for the table's lock before giving up (naming who holds it).
    pub lock_timeout: std::time::Duration,
}

/// Runs the plan on `layout`'s table; every step's outcome is returned (a failed index
/// doesn't stop the others). Each index goes through the one build engine, which sizes its
/// memory and reports its progress.
pub async fn build(
    spec: &ConnectSpec,
    layout: &Layout,
    plan: &BuildPlan,
    settings: &BuildSettings,
    on_done: &(dyn Fn(&BuiltIndex) + Send + Sync),
) -> Result<Vec<BuiltIndex>, StoreError> {
    let setup = format!(
        "SET statement_timeout = 0; SET lock_timeout = {};",
        settings.lock_timeout.as_millis().max(1),
    );
    let table = layout.qualified();
    // Names who holds the table's lock when a step gave up waiting for it.
    let explain = |what: String, e: tokio_postgres::Error| {
        let table = table.clone();
        async move {
            if e.code() != Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
                return StoreError::query(what, e).to_string();
            }
            match connect(spec, "ragshift copy (lock check)").await {
                Ok(observer) => crate::ddl::lock_timeout_error(
                    &observer,
                    &what,
                    &table,
                    settings.lock_timeout,
                    e,
                )
                .await
                .to_string(),
                Err(_) => StoreError::query(what, e).to_string(),
            }
        }
    };
    // The vector index is the long build that everything waits for: it gets the parallel
    // workers, and the btree builds running beside it stay in one process each.
    let with_vector = plan.indexes.iter().any(|s| s.vector);
    let workers_for = move |step: &BuildStep| {
        if step.vector || !with_vector {
            None
        } else {
            Some(0)
        }
    };
    let queue = Arc::new(Mutex::new(
        plan.indexes.iter().cloned().collect::<VecDeque<_>>(),
    ));
    let workers = settings.jobs.clamp(1, plan.indexes.len().max(1));
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for i in 0..workers {
        let c = connect(spec, &format!("ragshift copy (index builder {i})")).await?;
        c.batch_execute(&setup)
            .await
            .map_err(|e| StoreError::query("setting index build memory", e))?;
        clients.push(c);
    }
    let run_one = |mut client: tokio_postgres::Client| {
        let queue = queue.clone();
        let results = results.clone();
        async move {
            loop {
                let Some(step) = queue.lock().await.pop_front() else {
                    break;
                };
                let started = Instant::now();
                let one = IndexBuild {
                    schema: &layout.schema,
                    table: &layout.table,
                    name: &step.name,
                    sql: &step.sql,
                    rows: None,
                    parallel_workers: workers_for(&step),
                };
                let error = match build_index(&mut client, Some(spec), &one, &settings.index).await
                {
                    Ok(_) => None,
                    Err(e) => match e.into_source() {
                        Ok(pg) => Some(explain(format!("building {}", step.name), pg).await),
                        Err(e) => Some(e.to_string()),
                    },
                };
                let done = BuiltIndex {
                    name: step.name.clone(),
                    sql: step.sql.clone(),
                    seconds: started.elapsed().as_secs_f64(),
                    error,
                };
                on_done(&done);
                results.lock().await.push((step, done));
            }
            client
        }
    };
    let mut futs = Vec::new();
    for c in clients {
        futs.push(run_one(c));
    }
    let mut clients = futures_util::future::join_all(futs).await;
    let Some(client) = clients.pop() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let built: Vec<(BuildStep, BuiltIndex)> = std::mem::take(&mut *results.lock().await);
    // A statement after the builds (a constraint attached to its index, or added alone),
    // timed and reported like a build.
    let statement = |name: String, sql: &str, doing: String| {
        let (client, explain, sql) = (&client, &explain, sql.to_owned());
        async move {
            let started = Instant::now();
            let error = match client.batch_execute(&sql).await {
                Ok(()) => None,
                Err(e) => Some(explain(doing, e).await),
            };
            BuiltIndex {
                name,
                sql,
                seconds: started.elapsed().as_secs_f64(),
                error,
            }
        }
    };
    for (step, done) in built {
        let ok = done.error.is_none();
        out.push(done);
        if let (true, Some(attach)) = (ok, &step.attach) {
            let name = format!("{} (constraint)", step.name);
            let doing = format!("attaching constraint to {}", step.name);
            let done = statement(name, attach, doing).await;
            on_done(&done);
            out.push(done);
        }
    }
    for step in &plan.constraints {
        let doing = format!("adding constraint {}", step.name);
        let done = statement(step.name.clone(), &step.sql, doing).await;
        on_done(&done);
        out.push(done);
    }
    Ok(out)
}
