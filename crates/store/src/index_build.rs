//! The one way ragshift builds an index (copy, replicate cutover, rebuild, build-index): the
//! building session gets a `maintenance_work_mem` sized from the index's estimated memory and
//! capped by what the server may give, and its parallel maintenance workers; a warning says so
//! before the build when the estimate is over the cap; and while `CREATE INDEX` runs, a second
//! connection reads `pg_stat_progress_create_index` for the building backend and reports the
//! phase, tuples (or blocks) done of total and an ETA.
//!
//! ## Memory
//! - **HNSW**: pgvector builds the graph in memory until it reaches `maintenance_work_mem`,
//!   then writes it out and inserts the remaining rows one by one on disk, much more slowly
//!   (NOTICE *"hnsw graph no longer fits into maintenance_work_mem after N tuples"*). Each row
//!   costs its vector (`8 + 4 × dimensions` bytes for `vector`, `8 + 2 × dimensions` for
//!   `halfvec`), its layer-0 neighbour list (`2m` candidates of 16 bytes) and about 272 bytes
//!   for the element, the upper layers and allocation overhead (measured on pgvector 0.8: 908
//!   bytes a row at 32 dimensions, 4,880 at 1,024, m = 16). The estimate is
//!   `rows × (value + 32 × m + 272) + 4 MB` (the build's memory blocks, and the 3 MB a
//!   parallel build keeps back from its shared area).
//! - **IVFFlat**: k-means over up to `max(50 × lists, 10000)` sampled rows must fit, or pgvector
//!   refuses the build (*"memory required is N MB"*, which the error then turns into what to
//!   set): the samples (counted twice: the sample and k-means' copy), three sets of centers, a
//!   `4 × samples × lists` bound matrix and `4 × lists²` center distances, an approximation
//!   of pgvector's own sum. Then every row is sorted by list (`value + 48` bytes a row), which
//!   spills to disk when it doesn't fit.
//! - **Other indexes** (btree, ...): the table's heap size, an upper bound of what their sort
//!   holds.
//!
//! `maintenance_work_mem` = `min(cap, max(estimate, the server's own setting,
//! 32 MB × (workers + 1) when the build has parallel workers))`: never less than the server's default, enough
//! for PostgreSQL to start the parallel workers (it gives each participant at least 32 MB), and
//! never more than the cap: `[index] max_memory`, else the larger of 1 GB and the server's
//! `maintenance_work_mem`. ragshift can't see the server's RAM from SQL; 1 GB fits every server
//! class it targets, and a server configured with more has said it can spare it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use crate::ident::{quote_ident, quote_literal};
use crate::{connect, ConnectSpec, StoreError};

/// One mebibyte.
pub const MB: u64 = 1024 * 1024;

/// The cap when `[index] max_memory` is not set and the server's own setting is lower.
pub const DEFAULT_MAX_MEMORY: u64 = 1024 * MB;

/// Per-row overhead of an HNSW element besides its vector and layer-0 neighbours (measured).
const HNSW_ROW_OVERHEAD: u64 = 272;

/// Fixed part of the HNSW estimate: memory blocks and the parallel area's reserve.
const HNSW_FIXED: u64 = 4 * MB;

/// Per-row overhead of a sorted IVFFlat tuple besides its vector.
const IVFFLAT_SORT_OVERHEAD: u64 = 48;

/// Memory PostgreSQL wants per participant before it starts parallel workers for a build.
const PER_PARTICIPANT: u64 = 32 * MB;

/// How often the progress of a running build is read.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// How much memory and how many parallel workers index builds may use (`[index]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildLimits {
    /// An exact `maintenance_work_mem` in bytes, used whatever the estimate (the estimate is
    /// still compared with it, and a shortfall reported).
    pub memory: Option<u64>,
    /// The most the estimate may be given, in bytes; `None`: the larger of
    /// [`DEFAULT_MAX_MEMORY`] and the server's `maintenance_work_mem`.
    pub max_memory: Option<u64>,
    /// `max_parallel_maintenance_workers` for the build; `None`: the server's setting.
    pub parallel_workers: Option<u32>,
}

/// Receives what builds report (a progress bar, JSON lines, log lines).
pub type IndexObserver = Arc<dyn Fn(&IndexEvent) + Send + Sync>;

/// Limits plus where reports go, as the commands hand them to the engine.
#[derive(Clone, Default)]
pub struct IndexBuildOptions {
    /// Memory and workers.
    pub limits: BuildLimits,
    /// Who hears about memory and progress (`None`: logs only).
    pub observer: Option<IndexObserver>,
}

impl std::fmt::Debug for IndexBuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuildOptions")
            .field("limits", &self.limits)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl IndexBuildOptions {
    /// Options with an exact `maintenance_work_mem` (a PostgreSQL memory size) and no observer.
    pub fn fixed_memory(size: &str) -> Result<Self, String> {
        Ok(Self {
            limits: BuildLimits {
                memory: Some(parse_memory(size)?),
                ..BuildLimits::default()
            },
            observer: None,
        })
    }

    /// Options from `[index]` (most memory per build, parallel workers), an exact
    /// `maintenance_work_mem` in bytes for every build if one was asked for, reports going to
    /// `observer`; a bad `[index] max_memory` is an error naming the key.
    pub fn configured(
        config: &ragshift_config::IndexConfig,
        memory: Option<u64>,
        observer: Option<IndexObserver>,
    ) -> Result<Self, String> {
        let max_memory = match &config.max_memory {
            Some(s) => Some(parse_memory(s).map_err(|e| format!("[index] max_memory: {e}"))?),
            None => None,
        };
        Ok(Self {
            limits: BuildLimits {
                memory,
                max_memory,
                parallel_workers: config.parallel_workers,
            },
            observer,
        })
    }

    fn emit(&self, event: &IndexEvent) {
        if let Some(o) = &self.observer {
            o(event);
        }
    }
}

/// A memory size checked as [`parse_memory`] reads it and kept as written (trimmed): what a
/// setting such as `[index] max_memory` holds, so that a typo in its flag is refused before any
/// work rather than failing an index build after the data moved.
pub fn memory_setting(s: &str) -> Result<String, String> {
    parse_memory(s).map(|_| s.trim().to_owned())
}

/// Bytes in a PostgreSQL memory size (`512MB`, `2GB`, `65536` kB, `1.5GB`), within what
/// `maintenance_work_mem` accepts (1 MB to 2 TB).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        format!("{s:?} is not a PostgreSQL memory size: use e.g. 512MB or 2GB (units B, kB, MB, GB, TB)")
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let kb = match unit.trim() {
        "" | "kB" => n,
        "B" => n / 1024.0,
        "MB" => n * 1024.0,
        "GB" => n * 1024.0 * 1024.0,
        "TB" => n * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    if !(1024.0..=2_147_483_647.0).contains(&kb) {
        return Err(format!(
            "{s:?} is outside what PostgreSQL accepts for maintenance_work_mem (1MB to 2TB)"
        ));
    }
    Ok((kb * 1024.0).round() as u64)
}

/// A size for people in PostgreSQL's own memory units, as `maintenance_work_mem` shows them:
/// `1.5 GB`, `300 MB`, `12 kB` (reports elsewhere use `ragshift_print::human_bytes`).
fn pg_memory_text(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * MB as f64 {
        format!("{:.1} GB", b / (1024.0 * MB as f64))
    } else if b >= MB as f64 {
        format!("{:.0} MB", b / MB as f64)
    } else {
        format!("{:.0} kB", b / 1024.0)
    }
}

/// A size PostgreSQL and the config read back: whole GB or MB, rounded up.
fn setting_text(b: u64) -> String {
    let mb = b.div_ceil(MB);
    if mb >= 1024 && mb.is_multiple_of(1024) {
        format!("{}GB", mb / 1024)
    } else {
        format!("{mb}MB")
    }
}

/// Which kind of index, with the parameters its memory depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum IndexShape {
    /// pgvector HNSW.
    Hnsw {
        /// Connections per layer (16 unless the index says otherwise).
        m: u32,
    },
    /// pgvector IVFFlat.
    Ivfflat {
        /// Lists (100 unless the index says otherwise).
        lists: u32,
    },
    /// Any other access method.
    Other,
}

/// An index statement as ragshift and `pg_get_indexdef` write it, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedIndex {
    shape: IndexShape,
    /// The first indexed column when it is a plain column.
    column: Option<String>,
    /// Dimensions from a cast in an expression (`(embedding::halfvec(3))`), with bytes each.
    cast: Option<(u64, u64)>,
}

/// Finds the text between the `(` at `open` and its matching `)`.
fn balanced(s: &str, open: usize) -> Option<&str> {
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in s[open..].char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Bytes each dimension of a pgvector type takes in memory, from its name.
fn element_bytes(type_name: &str) -> Option<(u64, bool)> {
    // (bytes per element, or bits when true)
    match type_name {
        "vector" => Some((4, false)),
        "halfvec" => Some((2, false)),
        "bit" => Some((1, true)),
        _ => None,
    }
}

/// `8 + bytes × dims` (bits rounded up to bytes), the in-memory size of a pgvector value.
fn value_size(bytes: u64, bits: bool, dims: u64) -> u64 {
    8 + if bits { dims.div_ceil(8) } else { bytes * dims }
}

fn parse_index_sql(sql: &str) -> ParsedIndex {
    let other = ParsedIndex {
        shape: IndexShape::Other,
        column: None,
        cast: None,
    };
    let Some(at) = sql.find(" USING ") else {
        return other;
    };
    let rest = &sql[at + 7..];
    let method: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let Some(open) = rest.find('(') else {
        return other;
    };
    let columns = balanced(rest, open).unwrap_or_default();
    let after = &rest[open + columns.len() + 2..];
    let mut options = std::collections::HashMap::new();
    if let Some(w) = after.find("WITH (") {
        if let Some(body) = balanced(after, w + 5) {
            for part in body.split(',') {
                if let Some((k, v)) = part.split_once('=') {
                    let v = v.trim().trim_matches('\'');
                    if let Ok(n) = v.parse::<u32>() {
                        options.insert(k.trim().to_owned(), n);
                    }
                }
            }
        }
    }
    let shape = match method.to_ascii_lowercase().as_str() {
        "hnsw" => IndexShape::Hnsw {
            m: options.get("m").copied().unwrap_or(16),
        },
        "ivfflat" => IndexShape::Ivfflat {
            lists: options.get("lists").copied().unwrap_or(100),
        },
        _ => IndexShape::Other,
    };
    let first = columns.trim_start();
    let (column, cast) = if first.starts_with('(') {
        // An expression: a cast to a typed vector gives the dimensions.
        let cast = ["vector", "halfvec", "bit"].iter().find_map(|t| {
            let at = first.find(&format!("::{t}("))?;
            let digits: String = first[at + t.len() + 3..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let dims = digits.parse::<u64>().ok()?;
            let (bytes, bits) = element_bytes(t)?;
            // (dims, bytes each; 0 for bits)
            Some((dims, if bits { 0 } else { bytes }))
        });
        (None, cast)
    } else if let Some(q) = first.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = q.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    name.push('"');
                } else {
                    break;
                }
            } else {
                name.push(c);
            }
        }
        (Some(name), None)
    } else {
        let name: String = first
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ',')
            .collect();
        (Some(name), None)
    };
    ParsedIndex {
        shape,
        column,
        cast,
    }
}

/// The memory estimate for an index of `shape` over `rows` values of `value_bytes` each on a
/// heap of `heap_bytes` (see the module's documentation).
pub fn estimate_memory(shape: IndexShape, rows: u64, value_bytes: u64, heap_bytes: u64) -> u64 {
    match shape {
        IndexShape::Hnsw { m } => {
            let per_row = value_bytes + 32 * u64::from(m) + HNSW_ROW_OVERHEAD;
            rows * per_row + HNSW_FIXED
        }
        IndexShape::Ivfflat { lists } => {
            let lists = u64::from(lists);
            let samples = (50 * lists).max(10_000);
            let sampled = samples.min(rows.max(1));
            let item = value_bytes.next_multiple_of(8);
            let kmeans = 2 * samples * item
                + 3 * lists * item
                + 4 * sampled * lists
                + 4 * lists * lists
                + 8 * sampled
                + 16 * lists;
            kmeans + rows * (value_bytes + IVFFLAT_SORT_OVERHEAD)
        }
        IndexShape::Other => heap_bytes,
    }
}

/// What a build was given, worked out before it runs (`--json`: event `index_memory`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryPlan {
    /// Index name.
    pub index: String,
    /// The table (schema-qualified).
    pub table: String,
    /// Access method and its parameters.
    #[serde(flatten)]
    pub shape: IndexShape,
    /// Rows in the table.
    pub rows: u64,
    /// Bytes of one indexed value in memory (0 when not known).
    pub value_bytes: u64,
    /// What the build would like, in bytes.
    pub estimate_bytes: u64,
    /// The most ragshift may give it.
    pub cap_bytes: u64,
    /// The server's own `maintenance_work_mem`.
    pub server_bytes: u64,
    /// `maintenance_work_mem` set for the build (as the server reports it back).
    pub chosen_bytes: u64,
    /// `max_parallel_maintenance_workers` set for the build.
    pub parallel_workers: u32,
    /// The estimate fits in what was given.
    pub fits: bool,
    /// Said before the build when it doesn't fit: what happens and what to set.
    pub warning: Option<String>,
}

/// The `maintenance_work_mem` for an estimate (see the module's documentation);
/// `(chosen, cap)`.
pub fn choose_memory(estimate: u64, server: u64, workers: u32, limits: &BuildLimits) -> (u64, u64) {
    let cap = limits
        .max_memory
        .unwrap_or_else(|| DEFAULT_MAX_MEMORY.max(server));
    let chosen = match limits.memory {
        Some(exact) => exact,
        None => {
            let parallel = if workers > 0 {
                PER_PARTICIPANT * (u64::from(workers) + 1)
            } else {
                0
            };
            estimate.max(server).max(parallel).min(cap)
        }
    };
    // PostgreSQL reads whole kB; at least 1 MB.
    (chosen.next_multiple_of(1024).max(MB), cap)
}

/// The warning for a build whose estimate is over what it gets.
fn warning(plan: &MemoryPlan, limits: &BuildLimits) -> Option<String> {
    if plan.fits {
        return None;
    }
    let what = match plan.shape {
        IndexShape::Hnsw { .. } => "hnsw graph",
        IndexShape::Ivfflat { .. } => "ivfflat build (k-means and sort)",
        IndexShape::Other => "index build",
    };
    let given = if limits.memory.is_some() {
        format!(
            "the maintenance_work_mem given ({})",
            pg_memory_text(plan.chosen_bytes)
        )
    } else {
        format!(
            "the {} ragshift may give it ([index] max_memory{})",
            pg_memory_text(plan.cap_bytes),
            if limits.max_memory.is_some() {
                ""
            } else {
                ", default: 1 GB or the server's maintenance_work_mem if larger"
            }
        )
    };
    let effect = match plan.shape {
        IndexShape::Hnsw { .. } => "the build will be much slower: pgvector writes the graph to disk once it is full and inserts the remaining rows one by one",
        IndexShape::Ivfflat { .. } => "the build will be slower (its sort spills to disk), and pgvector refuses it if its k-means doesn't fit",
        IndexShape::Other => "the build will be slower: its sort spills to disk",
    };
    let set = setting_text(plan.estimate_bytes);
    let fix = if limits.memory.is_some() {
        format!("give --maintenance-work-mem {set} (or leave it out and set [index] max_memory)")
    } else {
        format!(
            "if the server has the memory, set [index] max_memory = \"{set}\" (RAGSHIFT_INDEX_MAX_MEMORY={set}, --index-max-memory {set})"
        )
    };
    Some(format!(
        "the {what} of {} on {} needs about {} ({} rows), more than {given}: {effect}; {fix}",
        plan.index,
        plan.table,
        pg_memory_text(plan.estimate_bytes),
        plan.rows
    ))
}

/// Progress of a running build (`--json`: event `index_progress`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildProgress {
    /// Index name.
    pub index: String,
    /// The table (schema-qualified).
    pub table: String,
    /// `pg_stat_progress_create_index.phase` (`building index: loading tuples`, ...), or
    /// `waiting for a lock` before the build could start, or `done`.
    pub phase: String,
    /// Tuples done in this phase.
    pub tuples_done: u64,
    /// Tuples in this phase (the table's rows when the server doesn't say).
    pub tuples_total: u64,
    /// Heap blocks scanned.
    pub blocks_done: u64,
    /// Heap blocks to scan.
    pub blocks_total: u64,
    /// Seconds since the build started.
    pub elapsed_seconds: f64,
    /// Seconds left in this phase at its rate so far, once there is one.
    pub eta_seconds: Option<f64>,
    /// The build is over (successfully).
    pub done: bool,
}

impl BuildProgress {
    /// Done and total of whichever counter moves in this phase: tuples, else blocks.
    pub fn counter(&self) -> (u64, u64) {
        if self.tuples_total > 0 {
            (self.tuples_done, self.tuples_total)
        } else {
            (self.blocks_done, self.blocks_total)
        }
    }
}

/// What an index build reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum IndexEvent {
    /// The memory and workers chosen, before the build.
    IndexMemory(MemoryPlan),
    /// The build's progress, while it runs and once when it ends.
    IndexProgress(BuildProgress),
}

/// One index to build.
#[derive(Debug, Clone)]
pub struct IndexBuild<'a> {
    /// The table's schema (as named, unquoted).
    pub schema: &'a str,
    /// The table (unquoted).
    pub table: &'a str,
    /// The index name (unquoted), created in the table's schema.
    pub name: &'a str,
    /// The `CREATE INDEX` statement.
    pub sql: &'a str,
    /// The table's rows when the caller knows them (else counted).
    pub rows: Option<u64>,
    /// Overrides the workers of the limits (copy runs btree builds beside the vector one
    /// single-process).
    pub parallel_workers: Option<u32>,
}

/// How a build went.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltReport {
    /// The memory plan it ran with.
    pub memory: MemoryPlan,
    /// Build time.
    pub elapsed: Duration,
    /// Index tuples (`pg_class.reltuples` of the new index).
    pub tuples: u64,
}

/// Works out the memory plan for `build` on `client`'s server, without building.
pub async fn plan_memory(
    client: &Client,
    build: &IndexBuild<'_>,
    limits: &BuildLimits,
) -> Result<MemoryPlan, StoreError> {
    let table = format!("{}.{}", quote_ident(build.schema), quote_ident(build.table));
    let parsed = parse_index_sql(build.sql);
    let q = |what: &'static str| move |e| StoreError::query(what, e);
    let rows = match build.rows {
        Some(r) => r,
        None => {
            let n: i64 = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map_err(q("counting the rows to index"))?
                .get(0);
            n.max(0) as u64
        }
    };
    let settings = client
        .query_one(
            "SELECT pg_size_bytes(current_setting('maintenance_work_mem')),
                    current_setting('max_parallel_maintenance_workers')::int,
                    pg_relation_size($1::text::regclass)",
            &[&table],
        )
        .await
        .map_err(q("reading the server's index build settings"))?;
    let server = settings.get::<_, i64>(0).max(0) as u64;
    let server_workers = settings.get::<_, i32>(1).max(0) as u32;
    let heap = settings.get::<_, i64>(2).max(0) as u64;
    let mut value_bytes = match parsed.cast {
        Some((dims, bytes)) if bytes > 0 => 8 + dims * bytes,
        Some((dims, _)) => value_size(1, true, dims),
        None => 0,
    };
    if let Some(column) = &parsed.column {
        if let Some(row) = client
            .query_opt(
                "SELECT t.typname::text, a.atttypmod FROM pg_attribute a
                   JOIN pg_type t ON t.oid = a.atttypid
                  WHERE a.attrelid = $1::text::regclass AND a.attname = $2 AND NOT a.attisdropped",
                &[&table, column],
            )
            .await
            .map_err(q("reading the indexed column's type"))?
        {
            let type_name: String = row.get(0);
            let typmod: i32 = row.get(1);
            if let (Some((bytes, bits)), true) = (element_bytes(&type_name), typmod > 0) {
                value_bytes = value_size(bytes, bits, typmod as u64);
            }
        }
    }
    let workers = build
        .parallel_workers
        .or(limits.parallel_workers)
        .unwrap_or(server_workers);
    let estimate = estimate_memory(parsed.shape, rows, value_bytes, heap);
    let (chosen, cap) = choose_memory(estimate, server, workers, limits);
    let mut plan = MemoryPlan {
        index: build.name.to_owned(),
        table: format!("{}.{}", build.schema, build.table),
        shape: parsed.shape,
        rows,
        value_bytes,
        estimate_bytes: estimate,
        cap_bytes: cap,
        server_bytes: server,
        chosen_bytes: chosen,
        parallel_workers: workers,
        fits: chosen >= estimate,
        warning: None,
    };
    plan.warning = warning(&plan, limits);
    Ok(plan)
}

/// Builds one index: plans its memory (warning when it won't fit), sets the memory and
/// workers for this build only (`SET LOCAL` in the build's transaction), runs the statement
/// while a second connection to `watch` reports progress, and reports the end. Failures of
/// the progress connection are logged and never fail the build.
pub async fn build_index(
    client: &mut Client,
    watch: Option<&ConnectSpec>,
    build: &IndexBuild<'_>,
    options: &IndexBuildOptions,
) -> Result<BuiltReport, StoreError> {
    let started = Instant::now();
    let mut plan = plan_memory(client, build, &options.limits).await?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| StoreError::query("reading the build's backend pid", e))?
        .get(0);
    let tx = client
        .transaction()
        .await
        .map_err(|e| StoreError::query("starting the index build's transaction", e))?;
    let applied = tx
        .query_one(
            &format!(
                "SELECT set_config('maintenance_work_mem', {}, true),
                        set_config('max_parallel_maintenance_workers', {}, true),
                        pg_size_bytes(current_setting('maintenance_work_mem'))",
                quote_literal(&format!("{}kB", plan.chosen_bytes / 1024)),
                quote_literal(&plan.parallel_workers.to_string()),
            ),
            &[],
        )
        .await
        .map_err(|e| StoreError::query("setting index build memory", e))?;
    plan.chosen_bytes = applied.get::<_, i64>(2).max(0) as u64;
    match &plan.warning {
        Some(w) => tracing::warn!("{w}"),
        None => tracing::info!(
            "building {} on {}: maintenance_work_mem {} (estimate {}), {} parallel workers",
            plan.index,
            plan.table,
            pg_memory_text(plan.chosen_bytes),
            pg_memory_text(plan.estimate_bytes),
            plan.parallel_workers
        ),
    }
    options.emit(&IndexEvent::IndexMemory(plan.clone()));

    let run = async {
        tx.batch_execute(build.sql).await?;
        tx.commit().await
    };
    let watcher = watch_progress(watch, pid, &plan, started, options);
    let result = {
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r,
            () = watcher => run.await,
        }
    };
    result.map_err(|e| {
        // pgvector's "memory required is N MB" (IVFFlat's k-means): say what to set.
        let advice = if e.code() == Some(&tokio_postgres::error::SqlState::PROGRAM_LIMIT_EXCEEDED)
        {
            " (give the build that much: [index] max_memory, RAGSHIFT_INDEX_MAX_MEMORY or --index-max-memory, or --maintenance-work-mem; or use fewer lists)"
        } else {
            ""
        };
        StoreError::query(
            format!("building {} on {}{advice}", plan.index, plan.table),
            e,
        )
    })?;

    let index = format!("{}.{}", quote_ident(build.schema), quote_ident(build.name));
    let tuples = match client
        .query_one(
            "SELECT coalesce((SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)), 0)::float8",
            &[&index],
        )
        .await
    {
        Ok(r) => r.get::<_, f64>(0).max(0.0) as u64,
        Err(e) => {
            tracing::debug!("could not read the tuples of {index}: {e}");
            0
        }
    };
    let elapsed = started.elapsed();
    options.emit(&IndexEvent::IndexProgress(BuildProgress {
        index: plan.index.clone(),
        table: plan.table.clone(),
        phase: "done".to_owned(),
        tuples_done: tuples,
        tuples_total: tuples,
        blocks_done: 0,
        blocks_total: 0,
        elapsed_seconds: elapsed.as_secs_f64(),
        eta_seconds: Some(0.0),
        done: true,
    }));
    Ok(BuiltReport {
        memory: plan,
        elapsed,
        tuples,
    })
}

/// Reads `pg_stat_progress_create_index` (and, before the build starts, whether the backend
/// waits for a lock) every [`POLL_EVERY`] and reports each change; returns only when it can't
/// go on (the caller then just waits for the build).
async fn watch_progress(
    watch: Option<&ConnectSpec>,
    pid: i32,
    plan: &MemoryPlan,
    started: Instant,
    options: &IndexBuildOptions,
) {
    let (Some(spec), Some(_)) = (watch, &options.observer) else {
        return std::future::pending().await;
    };
    let client = match connect(spec, "ragshift index progress").await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("no index build progress: {e}");
            return std::future::pending().await;
        }
    };
    let mut last: Option<BuildProgress> = None;
    // Where the current phase started: (phase, when, tuples then).
    let mut phase_start: Option<(String, Instant, u64)> = None;
    let mut tick = tokio::time::interval(POLL_EVERY);
    loop {
        tick.tick().await;
        let row = match client
            .query_opt(
                "SELECT p.phase, coalesce(p.tuples_done, 0), coalesce(p.tuples_total, 0),
                        coalesce(p.blocks_done, 0), coalesce(p.blocks_total, 0),
                        a.wait_event_type, pg_blocking_pids(a.pid)
                   FROM pg_stat_activity a
                   LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid
                  WHERE a.pid = $1",
                &[&pid],
            )
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!("index build progress stopped: {e}");
                return std::future::pending().await;
            }
        };
        let phase: Option<String> = row.get(0);
        let wait: Option<String> = row.get(5);
        let blockers: Vec<i32> = row.get(6);
        let phase = match (phase, wait.as_deref()) {
            (Some(p), _) => p,
            (None, Some("Lock")) => format!(
                "waiting for a lock on the table (held by pid {})",
                blockers
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, _) => continue,
        };
        let tuples_done = row.get::<_, i64>(1).max(0) as u64;
        let mut tuples_total = row.get::<_, i64>(2).max(0) as u64;
        if tuples_total == 0 && tuples_done > 0 {
            tuples_total = plan.rows.max(tuples_done);
        }
        let now = Instant::now();
        if phase_start.as_ref().is_none_or(|(p, _, _)| *p != phase) {
            phase_start = Some((phase.clone(), now, tuples_done));
        }
        let eta_seconds = phase_start.as_ref().and_then(|(_, since, from)| {
            let secs = now.duration_since(*since).as_secs_f64();
            let moved = tuples_done.saturating_sub(*from) as f64;
            (tuples_total > 0 && moved > 0.0 && secs > 0.0)
                .then(|| tuples_total.saturating_sub(tuples_done) as f64 / (moved / secs))
        });
        let progress = BuildProgress {
            index: plan.index.clone(),
            table: plan.table.clone(),
            phase,
            tuples_done,
            tuples_total,
            blocks_done: row.get::<_, i64>(3).max(0) as u64,
            blocks_total: row.get::<_, i64>(4).max(0) as u64,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            eta_seconds,
            done: false,
        };
        let changed = last.as_ref().is_none_or(|l| {
            (
                &l.phase,
                l.tuples_done,
                l.tuples_total,
                l.blocks_done,
                l.blocks_total,
            ) != (
                &progress.phase,
                progress.tuples_done,
                progress.tuples_total,
                progress.blocks_done,
                progress.blocks_total,
            )
        });
        if changed {
            options.emit(&IndexEvent::IndexProgress(progress.clone()));
            last = Some(progress);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_statements_are_taken_apart() {
        let p = parse_index_sql(
            "CREATE INDEX \"i\" ON \"public\".\"items\" USING hnsw (\"embedding\" vector_l2_ops) WITH (m = 24, ef_construction = 100)",
        );
        assert_eq!(p.shape, IndexShape::Hnsw { m: 24 });
        assert_eq!(p.column.as_deref(), Some("embedding"));
        let p = parse_index_sql(
            "CREATE INDEX i ON public.items USING ivfflat (embedding vector_cosine_ops) WITH (lists='10')",
        );
        assert_eq!(p.shape, IndexShape::Ivfflat { lists: 10 });
        assert_eq!(p.column.as_deref(), Some("embedding"));
        let p = parse_index_sql(
            "CREATE INDEX i ON public.t USING hnsw (((embedding)::halfvec(3)) halfvec_l2_ops)",
        );
        assert_eq!(p.shape, IndexShape::Hnsw { m: 16 });
        assert_eq!((p.column, p.cast), (None, Some((3, 2))));
        let p = parse_index_sql("CREATE UNIQUE INDEX k ON public.t USING btree (id)");
        assert_eq!(p.shape, IndexShape::Other);
    }

    #[test]
    fn memory_settings_are_checked_as_postgresql_reads_them() {
        for ok in ["1GB", "512MB", "65536", "1.5GB", "2048 kB"] {
            assert_eq!(memory_setting(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in ["1gb", "lots", "", "10kB", "3TB", "1 GiB"] {
            assert!(memory_setting(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_is_the_estimate_within_the_server_default_and_the_cap() {
        let limits = BuildLimits::default();
        // Small: the server's default wins.
        assert_eq!(
            choose_memory(10 * MB, 64 * MB, 0, &limits),
            (64 * MB, 1024 * MB)
        );
        // Parallel workers need 32 MB each participant.
        assert_eq!(choose_memory(10 * MB, 64 * MB, 3, &limits).0, 128 * MB);
        // Big: the cap.
        assert_eq!(choose_memory(5000 * MB, 64 * MB, 0, &limits).0, 1024 * MB);
        // A server set higher raises the default cap.
        assert_eq!(
            choose_memory(5000 * MB, 2048 * MB, 0, &limits),
            (2048 * MB, 2048 * MB)
        );
        let exact = BuildLimits {
            memory: Some(200 * MB),
            ..limits
        };
        assert_eq!(choose_memory(5000 * MB, 64 * MB, 0, &exact).0, 200 * MB);
    }

    #[test]
    fn hnsw_estimate_matches_what_pgvector_measured() {
        // pgvector 0.8 filled 8 MB after 1,719 rows of vector(1024), m = 16: 4,880 bytes a row.
        let e = estimate_memory(IndexShape::Hnsw { m: 16 }, 1719, 8 + 4 * 1024, 0);
        let per_row = (e - HNSW_FIXED) as f64 / 1719.0;
        assert!((4880.0..4960.0).contains(&per_row), "{per_row}");
    }

    #[test]
    fn memory_sizes_are_read_as_postgresql_reads_them() {
        assert_eq!(parse_memory("1GB"), Ok(1024 * MB));
        assert_eq!(parse_memory("65536"), Ok(64 * MB));
        assert!(parse_memory("10kB").is_err());
        assert!(parse_memory("lots").is_err());
    }
}
