//! A copy run from start to end: snapshot and plan on the source, target prepared and locked,
//! partitions copied by N workers, indexes and constraints built, both sides verified, the
//! journal kept up to date so that `--resume` picks up where a crash left off.
//!
//! Under faults:
//! - A source and target that are the same table of the same database (by
//!   [`ragshift_store::identity`], not by URL) are refused before anything.
//! - TRUNCATE, DDL and the partitions' writes run under `lock_timeout`; a wait says whom it waits
//!   for and a timeout names them ([`ragshift_store::ddl`]).
//! - A partition that fails transiently (SQLSTATE 08*, 57P01–57P03, 53300, 40001, 40P01, a closed
//!   connection) is retried under one [`Policy`] (exponential backoff with jitter within a total
//!   time budget, `--retry-budget`), on new connections. If the writer's connection broke, the
//!   outcome of its COMMIT is unknown: its old session is ended and waited for ([`end_session`]), then
//!   the journal, which commits in the same transaction as the data, says whether the partition
//!   is done; if not, its rows are deleted and copied again in one transaction. Nothing is ever
//!   written twice. A partition that can't be done within the budget (reconnections included)
//!   fails alone; the run goes on with the others and ends `failed`.
//! - Before each partition commits, the run checks that it still holds its target lock; a lost
//!   lock fails that partition and stops the run (another run may be writing the table).
//! - The exported snapshot lives only as long as the session that exported it. If that session
//!   dies, the rest can't be copied from the same point in time, and the run stops: the
//!   partitions copied are kept, and `--resume` continues from a new snapshot. For a restored
//!   snapshot (a source nobody writes) that is exact; for a live source the consistency point
//!   moves, and the verification, which checksums every bot of the new snapshot, says which bots
//!   changed in between (re-copy them with `--replace --bot`). It is a choice: silently
//!   re-exporting would mix two points in time in one run.
//! - Whatever stops a run once it is in the journal, the journal ends it `failed` with the
//!   reason (or `succeeded`), and the error is the work's (exit 1), not a usage error.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio_postgres::Client;

use ragshift_retry::{Next, Policy};
use ragshift_store::ddl;
use ragshift_store::ident::quote_literal;
use ragshift_store::identity::{identify, same_database};
use ragshift_store::index::VectorIndex;
use ragshift_store::journal::{Journal, Status, UnitResult};
use ragshift_store::lock::TargetLock;
use ragshift_store::session::{end_session, session_id, SessionId};
use ragshift_store::{connect, ConnectSpec, Layout, StoreError, StoreErrorKind};

use crate::catalog::{read_table, TableDef};
use crate::error::CopyError;
use crate::indexes::{build, plan_builds, BuildPlan, BuildSettings, BuiltIndex};
use crate::pipe::{copy_partition, store_verdict, Copied, Moved, PartitionSql, PipeError};
use crate::plan::{plan, Partition};
use crate::progress::{Counters, Event, EventSink};
use crate::resume::{previous_run, PreviousRun};
use crate::snapshot::SourceSnapshot;
use crate::verify::{verify, verify_against, VerifyReport};
use ragshift_store::checksum::{bot_checksums, BotChecksum};
use ragshift_store::index_build::IndexEvent;

/// The journal's kind for copy runs.
pub const RUN_KIND: &str = "copy";

/// Where to copy from and to.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The source server (a restored snapshot, or the old cluster).
    pub source: ConnectSpec,
    /// The chunk table on the source.
    pub source_layout: Layout,
    /// The new cluster.
    pub target: ConnectSpec,
    /// The table on the target (its columns are the source's).
    pub target_layout: Layout,
}

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Partitions copied at once (and index builds run at once).
    pub jobs: usize,
    /// Bytes per partition (stored size, TOAST included); about four partitions per job when
    /// `None` ([`crate::plan::auto_partition_bytes`]).
    pub partition_bytes: Option<u64>,
    /// At most this many rows per partition, when given.
    pub partition_rows: Option<u64>,
    /// Only these bots.
    pub bots: Option<Vec<String>>,
    /// Continue the latest copy run on this target table.
    pub resume: bool,
    /// Empty the target table (or the chosen bots' rows) first.
    pub replace: bool,
    /// Build the source's indexes and constraints after the data.
    pub build_indexes: bool,
    /// Build this vector index instead of the source's.
    pub vector_index: Option<VectorIndex>,
    /// Memory and parallel workers for index builds (`[index]`); their progress goes to the
    /// run's events besides any observer set here.
    pub index_build: ragshift_store::index_build::IndexBuildOptions,
    /// Compare both sides after the copy.
    pub verify: bool,
    /// Plan only: read the source and the target, change nothing.
    pub dry_run: bool,
    /// How often a progress event is sent.
    pub progress_every: Duration,
    /// How long TRUNCATE, DDL and the partitions' writes wait for a table lock before giving
    /// up (naming who holds it).
    pub lock_timeout: Duration,
    /// Retries of a partition, reconnections and journal writes: backoff with jitter within a
    /// total time budget (long enough to ride out a failover).
    pub retry: Policy,
    /// The run journal in the target (`[run] journal_schema`): the run, its plan and every
    /// partition's state, which `--resume` reads back.
    pub journal: Journal,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            jobs: 4,
            partition_bytes: None,
            partition_rows: None,
            bots: None,
            resume: false,
            replace: false,
            build_indexes: true,
            vector_index: None,
            index_build: Default::default(),
            verify: true,
            dry_run: false,
            progress_every: Duration::from_secs(2),
            lock_timeout: ddl::DEFAULT_LOCK_TIMEOUT,
            retry: Policy::default(),
            journal: Journal::default(),
        }
    }
}

/// A partition that failed.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionFailure {
    /// Partition id.
    pub partition: String,
    /// What it holds (bots, id range).
    pub what: String,
    /// Why.
    pub error: String,
}

/// What a copy did.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// Journal run id.
    pub run_id: String,
    /// Only planned.
    pub dry_run: bool,
    /// Continued an earlier run.
    pub resumed: bool,
    /// Source server (password masked).
    pub source: String,
    /// Source table.
    pub source_table: String,
    /// Target server (password masked).
    pub target: String,
    /// Target table.
    pub target_table: String,
    /// The source snapshot copied.
    pub snapshot: String,
    /// The target table was created by this run.
    pub created_table: bool,
    /// Partitions in the plan.
    pub partitions: usize,
    /// Partitions an earlier attempt had done.
    pub partitions_skipped: usize,
    /// Partitions this run copied.
    pub partitions_copied: usize,
    /// Partitions that failed.
    pub failures: Vec<PartitionFailure>,
    /// Rows in the plan.
    pub planned_rows: i64,
    /// Bytes in the plan (stored size, TOAST included; 0 for a plan recorded before partitions
    /// were sized by bytes).
    pub planned_bytes: i64,
    /// The partitions' target size in bytes (`None` when resuming an earlier run's plan).
    pub partition_bytes: Option<u64>,
    /// Rows this run copied.
    pub rows: u64,
    /// Bytes of COPY data this run streamed.
    pub bytes: u64,
    /// Seconds of the data phase.
    pub data_seconds: f64,
    /// Indexes and constraints to build (what a dry run would do).
    pub index_plan: BuildPlan,
    /// Indexes and constraints built.
    pub indexes: Vec<BuiltIndex>,
    /// Seconds of the index phase.
    pub index_seconds: f64,
    /// Tables the chunk table refers to by foreign key, copied whole before it (LangChain's
    /// collections).
    pub parents: Vec<crate::parents::ParentCopied>,
    /// Sequences set on the target after the data (`name = value`), so the application's
    /// next insert gets a new id.
    pub sequences: Vec<String>,
    /// The comparison, unless turned off.
    pub verify: Option<VerifyReport>,
    /// Seconds in all.
    pub seconds: f64,
    /// Why the run stopped taking partitions (its target lock was lost, the source snapshot
    /// is gone), if it did.
    pub stopped: Option<String>,
    /// The error that ended the run after it started, if one did.
    pub error: Option<String>,
    /// The partitions (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<Partition>>,
}

impl CopyReport {
    /// Everything copied, built and (when asked) verified.
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty()
            && self.stopped.is_none()
            && self.error.is_none()
            && self.indexes.iter().all(|i| i.error.is_none())
            && self.verify.as_ref().is_none_or(VerifyReport::passed)
    }
}

/// Runs a copy (or plans it, with `dry_run`). Errors are returned for what stops the run
/// before or between phases; failed partitions, indexes and verification mismatches are in the
/// report.
///
/// The steps, in order: refuse what can't work, [plan](Steps::plan_run) (new or resumed), prepare
/// the target, record the run in the journal, then (recorded) empty the target if asked, copy
/// the referenced tables and the data with workers, set the sequences, build the indexes
/// beside the verification, and end the run in the journal.
pub async fn copy(
    ep: &Endpoints,
    opts: &CopyOptions,
    events: EventSink,
) -> Result<CopyReport, CopyError> {
    let started = Instant::now();
    if opts.resume && opts.replace {
        return Err(CopyError::Refused(
            "--resume and --replace contradict each other: resume keeps what an earlier run copied, replace empties the table".into(),
        ));
    }
    let mut target = connect(&ep.target, "ragshift copy")
        .await
        .map_err(CopyError::target(ep.target.label()))?;
    refuse_copy_into_itself(ep, &target).await?;
    let snap = SourceSnapshot::open(&ep.source, "ragshift copy (snapshot)")
        .await
        .map_err(CopyError::source(ep.source.label()))?;
    let src_def = read_source_table(ep, opts, &snap).await?;
    let tgt_def = read_table(&target, &ep.target_layout)
        .await
        .map_err(CopyError::target(ep.target.label()))?;
    let steps = Steps {
        ep,
        opts,
        events: &events,
        snap: &snap,
        src_def: &src_def,
    };
    let plan = steps.plan_run(&target).await?;
    let mut report = steps.new_report(&plan);
    steps.refuse_other_shape(tgt_def.as_ref())?;
    let parents =
        crate::parents::referenced_tables(snap.client(), &ep.source_layout, &ep.target_layout)
            .await
            .map_err(CopyError::source(ep.source.label()))?;
    report.parents = parents
        .iter()
        .map(|p| crate::parents::ParentCopied {
            table: p.target.display_name(),
            rows: 0,
            action: "planned".into(),
        })
        .collect();
    if opts.dry_run {
        steps.plan_dry_run(tgt_def.as_ref(), &plan, &mut report);
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // From here on the target changes: one run at a time.
    let lock = TargetLock::acquire(
        &ep.target,
        &ep.target_layout,
        &format!("copy run {}", plan.run_id),
    )
    .await
    .map_err(CopyError::target(ep.target.label()))?;
    let emptying = steps
        .prepare_target(
            &target,
            &lock,
            tgt_def.as_ref(),
            &parents,
            &plan,
            &mut report,
        )
        .await?;
    steps.start_journal_run(&target, &plan, &report).await?;

    // Data. From here on the run is in the journal: whatever happens, it ends there `failed`
    // with its reason or `succeeded`.
    let outcome: Result<Status, CopyError> = async {
        if let Some((sql, what)) = &emptying {
            ddl::run(
                &target,
                lock.client(),
                sql,
                what,
                &ep.target_layout.qualified(),
                opts.lock_timeout,
            )
            .await
            .map_err(CopyError::target(ep.target.label()))?;
        }
        steps
            .copy_referenced_tables(&mut target, &parents, &mut report)
            .await?;
        let source_sums = steps.copy_data(&target, &lock, &plan, &mut report).await;
        if !report.failures.is_empty() || report.stopped.is_some() {
            return Ok(Status::Failed);
        }
        steps.set_sequences(&mut target, &mut report).await?;
        steps
            .build_indexes_and_verify(&target, &plan, source_sums, &mut report)
            .await?;
        Ok(if report.succeeded() {
            Status::Succeeded
        } else {
            Status::Failed
        })
    }
    .await;
    report.seconds = started.elapsed().as_secs_f64();
    let result = end_run(ep, opts, &mut target, outcome, report).await;
    let _ = lock.release().await;
    drop(snap);
    result
}

/// The source's table as its catalog describes it, refused when it lacks a column the copy
/// needs.
async fn read_source_table(
    ep: &Endpoints,
    opts: &CopyOptions,
    snap: &SourceSnapshot,
) -> Result<TableDef, CopyError> {
    let sl = &ep.source_layout;
    let src_label = ep.source.label();
    let src_def = read_table(snap.client(), sl)
        .await
        .map_err(CopyError::source(src_label))?
        .ok_or_else(|| {
            CopyError::Refused(format!(
                "source table {} not found on {src_label}: check [source] schema and table (--source-table)",
                sl.display_name()
            ))
        })?;
    // Copy moves every column whatever its name; it needs the id and bot columns (partitions,
    // per-bot checksums) and the embedding column only for the vector index it builds.
    let mut needed = vec![sl.id.as_str()];
    if !sl.bot.is_empty() {
        needed.push(sl.bot.as_str());
    }
    if opts.vector_index.is_some() {
        needed.push(sl.embedding.as_str());
    }
    let missing: Vec<&str> = needed
        .into_iter()
        .filter(|c| !src_def.columns.iter().any(|d| d.name == *c))
        .collect();
    if !missing.is_empty() {
        return Err(CopyError::Refused(format!(
            "source table {} on {src_label} has no column {}: its columns are {}; set the [source] *_column keys",
            sl.display_name(),
            missing.join(", "),
            src_def.shape()
        )));
    }
    Ok(src_def)
}

/// A run's plan: new, or the earlier run's when resuming.
struct RunPlan {
    run_id: String,
    /// An earlier run is continued.
    resumed: bool,
    partitions: Vec<Partition>,
    /// The bots the run is limited to.
    bots: Option<Vec<String>>,
    /// The partitions' target size (`None` for a resumed plan).
    partition_bytes: Option<u64>,
    planned_rows: i64,
    planned_bytes: i64,
    /// The partitions still to copy.
    todo: Vec<Partition>,
}

/// The checksums of the source's bots, read in the copy's snapshot while the data moved, and
/// how long that took (`None` when nothing is verified).
type SourceSums = Option<Result<(Vec<BotChecksum>, f64), StoreError>>;

/// What every step of one run reads: where, how, its events, the source snapshot and table.
struct Steps<'a> {
    ep: &'a Endpoints,
    opts: &'a CopyOptions,
    events: &'a EventSink,
    snap: &'a SourceSnapshot,
    src_def: &'a TableDef,
}

impl Steps<'_> {
    fn src_label(&self) -> &str {
        self.ep.source.label()
    }

    fn tgt_label(&self) -> &str {
        self.ep.target.label()
    }

    /// The plan: new (partitions of the source's snapshot), or the earlier run's.
    async fn plan_run(&self, target: &Client) -> Result<RunPlan, CopyError> {
        let (opts, sl, tl) = (self.opts, &self.ep.source_layout, &self.ep.target_layout);
        let previous = if opts.resume {
            Some(
                previous_run(target, &opts.journal, tl)
                    .await
                    .map_err(CopyError::target(self.tgt_label()))?
                    .ok_or_else(|| {
                        CopyError::Refused(format!(
                            "no copy run to resume into {} on {}: run without --resume",
                            tl.display_name(),
                            self.tgt_label()
                        ))
                    })?,
            )
        } else {
            None
        };
        let mut partition_bytes = None;
        let (run_id, partitions, bots, done): (
            String,
            Vec<Partition>,
            Option<Vec<String>>,
            HashSet<String>,
        ) = match &previous {
            Some(PreviousRun {
                run_id,
                partitions,
                bots,
                done,
                ..
            }) => (
                run_id.clone(),
                partitions.clone(),
                bots.clone(),
                done.clone(),
            ),
            None => {
                let columns: Vec<String> = self
                    .src_def
                    .columns
                    .iter()
                    .filter(|c| c.copied())
                    .map(|c| c.name.clone())
                    .collect();
                let (parts, limits) = plan(
                    self.snap.client(),
                    sl,
                    &columns,
                    opts.bots.as_deref(),
                    opts.partition_bytes,
                    opts.partition_rows,
                    opts.jobs,
                )
                .await
                .map_err(CopyError::source(self.src_label()))?;
                partition_bytes = Some(limits.bytes);
                (new_run_id(), parts, opts.bots.clone(), HashSet::new())
            }
        };
        if let (Some(p), Some(asked)) = (&previous, &opts.bots) {
            if p.bots.as_ref() != Some(asked) {
                tracing::warn!(
                    "--bot is ignored when resuming: the run keeps the bots it started with"
                );
            }
        }
        let todo: Vec<Partition> = partitions
            .iter()
            .filter(|p| !done.contains(&p.id))
            .cloned()
            .collect();
        Ok(RunPlan {
            run_id,
            resumed: previous.is_some(),
            planned_rows: partitions.iter().map(|p| p.rows).sum(),
            planned_bytes: partitions.iter().map(|p| p.bytes).sum(),
            partitions,
            bots,
            partition_bytes,
            todo,
        })
    }

    /// The report before anything is copied.
    fn new_report(&self, plan: &RunPlan) -> CopyReport {
        CopyReport {
            run_id: plan.run_id.clone(),
            dry_run: self.opts.dry_run,
            resumed: plan.resumed,
            source: self.src_label().to_owned(),
            source_table: self.ep.source_layout.display_name(),
            target: self.tgt_label().to_owned(),
            target_table: self.ep.target_layout.display_name(),
            snapshot: self.snap.id().to_owned(),
            created_table: false,
            partitions: plan.partitions.len(),
            partitions_skipped: plan.partitions.len() - plan.todo.len(),
            partitions_copied: 0,
            failures: Vec::new(),
            planned_rows: plan.planned_rows,
            planned_bytes: plan.planned_bytes,
            partition_bytes: plan.partition_bytes,
            rows: 0,
            bytes: 0,
            data_seconds: 0.0,
            index_plan: BuildPlan::default(),
            indexes: Vec::new(),
            index_seconds: 0.0,
            sequences: Vec::new(),
            parents: Vec::new(),
            verify: None,
            seconds: 0.0,
            stopped: None,
            error: None,
            plan: None,
        }
    }

    /// Refuses a target table whose columns can't take the source's (it is left untouched).
    fn refuse_other_shape(&self, tgt_def: Option<&TableDef>) -> Result<(), CopyError> {
        if let Some(t) = tgt_def {
            let bad = self.src_def.incompatible_columns(t);
            if !bad.is_empty() {
                return Err(CopyError::Refused(format!(
                    "target table {} on {} has another shape and is left untouched:\n  source: {}\n  target: {}\nuse another target table (--target-table) or drop it",
                    self.ep.target_layout.display_name(),
                    self.tgt_label(),
                    self.src_def.shape(),
                    t.shape()
                )));
            }
        }
        Ok(())
    }

    /// What a dry run reports besides the plan: the indexes it would build, whether it would
    /// create the table, the partitions.
    fn plan_dry_run(&self, tgt_def: Option<&TableDef>, plan: &RunPlan, report: &mut CopyReport) {
        let (opts, sl, tl) = (self.opts, &self.ep.source_layout, &self.ep.target_layout);
        let empty = TableDef {
            printed_name: String::new(),
            columns: Vec::new(),
            indexes: Vec::new(),
            constraints: Vec::new(),
            bytes: 0,
        };
        report.index_plan = if opts.build_indexes {
            plan_builds(
                self.src_def,
                sl,
                tgt_def.unwrap_or(&empty),
                tl,
                opts.vector_index,
                plan.planned_rows,
                sl.schema == tl.schema,
            )
        } else {
            BuildPlan::default()
        };
        report.created_table = tgt_def.is_none();
        report.plan = Some(plan.partitions.clone());
    }

    /// Makes the target ready under the run's lock, before the run is recorded: lock timeout,
    /// column types, the vector extension, the journal's schema, the table created (or found
    /// fit to load into). Returns the statement that empties it for `--replace`, which runs
    /// only once the run is in the journal.
    async fn prepare_target(
        &self,
        target: &Client,
        lock: &TargetLock,
        tgt_def: Option<&TableDef>,
        parents: &[crate::parents::Parent],
        plan: &RunPlan,
        report: &mut CopyReport,
    ) -> Result<Option<(String, String)>, CopyError> {
        let (opts, sl, tl) = (self.opts, &self.ep.source_layout, &self.ep.target_layout);
        let tgt_label = self.tgt_label();
        // Every statement of the run's main session gives up waiting for a lock after
        // `lock_timeout`; TRUNCATE and DDL also say whom they wait for.
        ddl::set_lock_timeout(target, opts.lock_timeout)
            .await
            .map_err(CopyError::target(tgt_label))?;
        self.refuse_missing_types(target, parents).await?;
        let has_vector = ragshift_store::schema::vector_version(self.snap.client())
            .await
            .map_err(CopyError::source(self.src_label()))?
            .is_some();
        if has_vector {
            ragshift_store::schema::ensure_vector_extension(target)
                .await
                .map_err(CopyError::target(tgt_label))?;
        }
        opts.journal
            .ensure_schema(target)
            .await
            .map_err(CopyError::target(tgt_label))?;
        let mut emptying: Option<(String, String)> = None;
        match tgt_def {
            None if plan.resumed => {
                return Err(CopyError::Refused(format!(
                    "target table {} is gone from {tgt_label}, so copy run {} can't be resumed: run without --resume",
                    tl.display_name(),
                    plan.run_id
                )))
            }
            None => {
                ddl::run(
                    target,
                    lock.client(),
                    &self.src_def.create_sql(tl, sl),
                    &format!("creating {}", tl.display_name()),
                    &tl.qualified(),
                    opts.lock_timeout,
                )
                .await
                .map_err(CopyError::target(tgt_label))?;
                report.created_table = true;
            }
            Some(def) => {
                if opts.replace {
                    // Emptied only once the run is in the journal (below), so a failure from here
                    // on is recorded and never leaves an emptied table behind an exit code 2.
                    emptying = Some(emptying_sql(tl, plan.bots.as_deref()));
                } else if !plan.resumed {
                    self.refuse_rows_there(target).await?;
                }
                if !def.indexes.is_empty() {
                    tracing::info!(
                        "target table {} already has indexes; loading into an indexed table is slower than into a bare one",
                        tl.display_name()
                    );
                }
            }
        }
        Ok(emptying)
    }

    /// Refuses a target that lacks a type of the chunk table's or a referenced table's columns,
    /// before anything is created.
    async fn refuse_missing_types(
        &self,
        target: &Client,
        parents: &[crate::parents::Parent],
    ) -> Result<(), CopyError> {
        let (src_label, tgt_label) = (self.src_label(), self.tgt_label());
        let mut missing = crate::catalog::types_missing_on(target, self.src_def)
            .await
            .map_err(CopyError::target(tgt_label))?;
        for p in parents {
            if let Some(def) = read_table(self.snap.client(), &p.source)
                .await
                .map_err(CopyError::source(src_label))?
            {
                let lacking = crate::catalog::types_missing_on(target, &def)
                    .await
                    .map_err(CopyError::target(tgt_label))?;
                missing.extend(
                    lacking
                        .into_iter()
                        .map(|m| format!("{}.{m}", p.source.display_name())),
                );
            }
        }
        if !missing.is_empty() {
            return Err(CopyError::Refused(format!(
                "the target can't hold every column of {}, so nothing was created: {}",
                self.ep.source_layout.display_name(),
                missing.join("; ")
            )));
        }
        Ok(())
    }

    /// Refuses to load into a target table that already holds rows (without `--replace` or
    /// `--resume`), naming the run to resume when there is one.
    async fn refuse_rows_there(&self, target: &Client) -> Result<(), CopyError> {
        let (tl, tgt_label) = (&self.ep.target_layout, self.tgt_label());
        let nonempty: bool = target
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", tl.qualified()),
                &[],
            )
            .await
            .map_err(|e| {
                CopyError::target(tgt_label)(StoreError::query(
                    format!("looking into {}", tl.display_name()),
                    e,
                ))
            })?
            .get(0);
        if nonempty {
            let hint = match previous_run(target, &self.opts.journal, tl)
                .await
                .ok()
                .flatten()
            {
                Some(p) => format!(
                    "--resume to continue copy run {} ({}), ",
                    p.run_id, p.status
                ),
                None => String::new(),
            };
            return Err(CopyError::Refused(format!(
                "target table {} on {tgt_label} already holds rows: add {hint}--replace to empty it first, or use another table (--target-table)",
                tl.display_name()
            )));
        }
        Ok(())
    }

    /// Records the run and its partitions in the journal (what `--resume` reads back), then
    /// announces the plan.
    async fn start_journal_run(
        &self,
        target: &Client,
        plan: &RunPlan,
        report: &CopyReport,
    ) -> Result<(), CopyError> {
        let tgt_label = self.tgt_label();
        let selection = json!({
            "source": self.src_label(),
            "source_table": self.ep.source_layout.display_name(),
            "target_table": self.ep.target_layout.display_name(),
            "snapshot": self.snap.id(),
            "bots": plan.bots,
            "partitions": plan.partitions,
        });
        self.opts
            .journal
            .start_run(target, &plan.run_id, RUN_KIND, tgt_label, &selection)
            .await
            .map_err(CopyError::target(tgt_label))?;
        let units: Vec<(String, Option<String>)> = plan
            .partitions
            .iter()
            .map(|p| (p.id.clone(), None))
            .collect();
        self.opts
            .journal
            .queue_units(target, &plan.run_id, "partition", &units)
            .await
            .map_err(CopyError::target(tgt_label))?;
        (self.events)(Event::Planned {
            run_id: plan.run_id.clone(),
            resumed: plan.resumed,
            partitions: plan.partitions.len(),
            already_done: report.partitions_skipped,
            rows: plan.planned_rows,
            snapshot: self.snap.id().to_owned(),
        });
        Ok(())
    }

    /// The tables the chunk table refers to, copied whole before it.
    async fn copy_referenced_tables(
        &self,
        target: &mut Client,
        parents: &[crate::parents::Parent],
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        report.parents.clear();
        for p in parents {
            let copied = crate::parents::copy_parent(self.snap.client(), target, p)
                .await
                .map_err(CopyError::target(self.tgt_label()))?;
            tracing::info!(
                "referenced table {}: {} ({} rows)",
                copied.table,
                copied.action,
                copied.rows
            );
            report.parents.push(copied);
        }
        Ok(())
    }

    /// The partitions still to do, copied by `jobs` workers (biggest first) while the source's
    /// checksums are read; the report gets what was copied, what failed and why the run
    /// stopped, if it did.
    async fn copy_data(
        &self,
        target: &Client,
        lock: &TargetLock,
        plan: &RunPlan,
        report: &mut CopyReport,
    ) -> SourceSums {
        let (opts, sl, events) = (self.opts, &self.ep.source_layout, self.events);
        let todo = &plan.todo;
        let table_rows: i64 = plan.planned_rows.max(1);
        let counters = Arc::new(Counters::new(
            plan.partitions.len(),
            report.partitions_skipped,
            todo.iter().map(|p| p.rows.max(0) as u64).sum(),
            self.src_def.bytes as f64 / table_rows as f64,
        ));
        let ticker = {
            let counters = counters.clone();
            let events = events.clone();
            let every = opts.progress_every;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    events(counters.snapshot());
                }
            })
        };
        let mut order = todo.clone();
        // Biggest first, so the last partitions to finish are small ones.
        order.sort_by(|a, b| {
            (b.bytes, b.rows)
                .cmp(&(a.bytes, a.rows))
                .then(a.id.cmp(&b.id))
        });
        let queue = Arc::new(Mutex::new(order.into_iter().collect::<VecDeque<_>>()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let columns = self.src_def.column_list();
        let stop = Mutex::new(None);
        let ctx = WorkerContext {
            ep: self.ep,
            snap: self.snap,
            target,
            lock,
            run_id: &plan.run_id,
            columns: &columns,
            counters: &counters,
            events,
            policy: &opts.retry,
            journal: &opts.journal,
            lock_timeout: opts.lock_timeout,
            stop: &stop,
        };
        let workers = opts.jobs.clamp(1, todo.len().max(1));
        // The source's checksums come from the coordinator's connection in the same snapshot, so
        // they can be read while the data moves: the copy leaves CPU idle while it waits on the
        // target's writes, and the verification after it then reads the target only.
        let source_sums = async {
            if !opts.verify {
                return None;
            }
            let t = Instant::now();
            serial(self.snap.client()).await;
            let sums = bot_checksums(self.snap.client(), sl, plan.bots.as_deref()).await;
            Some(sums.map(|s| (s, t.elapsed().as_secs_f64())))
        };
        let (_, source_sums) = tokio::join!(
            futures_util::future::join_all((0..workers).map(|w| worker(
                &ctx,
                w,
                queue.clone(),
                failures.clone()
            )),),
            source_sums
        );
        ticker.abort();
        report.stopped = stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        events(counters.snapshot());
        report.failures = std::mem::take(&mut *failures.lock().unwrap_or_else(|e| e.into_inner()));
        report.partitions_copied = counters
            .partitions_done
            .load(Ordering::Relaxed)
            .saturating_sub(report.partitions_skipped);
        report.rows = counters.rows.load(Ordering::Relaxed);
        report.bytes = counters.bytes.load(Ordering::Relaxed);
        report.data_seconds = counters.elapsed().as_secs_f64();
        source_sums
    }

    /// Sets the target's sequences past the copied ids, so the application's next insert gets
    /// a new id.
    async fn set_sequences(
        &self,
        target: &mut Client,
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        let tgt_label = self.tgt_label();
        // The main session sat idle through the data phase; it may have been cut meanwhile.
        reconnect_if_closed(target, &self.ep.target, &self.opts.retry)
            .await
            .map_err(CopyError::target(tgt_label))?;
        report.sequences = crate::catalog::sync_sequences(
            self.snap.client(),
            target,
            self.src_def,
            &self.ep.source_layout,
            &self.ep.target_layout,
        )
        .await
        .map_err(CopyError::target(tgt_label))?;
        for s in &report.sequences {
            tracing::info!("sequence {s}");
        }
        Ok(())
    }

    /// Indexes and constraints (then statistics) beside the verification of the target: they
    /// only read the data.
    async fn build_indexes_and_verify(
        &self,
        target: &Client,
        plan: &RunPlan,
        source_sums: SourceSums,
        report: &mut CopyReport,
    ) -> Result<(), CopyError> {
        let (ep, opts, events) = (self.ep, self.opts, self.events);
        let (sl, tl) = (&ep.source_layout, &ep.target_layout);
        let (src_label, tgt_label) = (self.src_label(), self.tgt_label());
        let bots = &plan.bots;
        let snap = self.snap;
        let index_started = Instant::now();
        let analyze = self.analyze_sql();
        let mut settings = None;
        if opts.build_indexes {
            let now = read_table(target, tl)
                .await
                .map_err(CopyError::target(tgt_label))?
                .ok_or_else(|| {
                    CopyError::Refused(format!("target table {} vanished", tl.display_name()))
                })?;
            report.index_plan = plan_builds(
                self.src_def,
                sl,
                &now,
                tl,
                opts.vector_index,
                plan.planned_rows,
                sl.schema == tl.schema,
            );
            for s in &report.index_plan.skipped {
                tracing::info!("not built on the target: {s}");
            }
            settings = Some(self.build_settings());
        }
        let ev = events.clone();
        let on_done = move |b: &BuiltIndex| {
            ev(Event::Index {
                name: b.name.clone(),
                seconds: b.seconds,
                error: b.error.clone(),
            })
        };
        // ANALYZE after the builds: it would wait for their locks anyway, and while it waited an
        // index build queued behind it would wait too.
        let index_plan = &report.index_plan;
        let indexes = async {
            let r = match &settings {
                Some(settings) => build(&ep.target, tl, index_plan, settings, &on_done).await,
                None => Ok(Vec::new()),
            };
            let seconds = index_started.elapsed().as_secs_f64();
            (r, seconds, analyze_on(&ep.target, &analyze).await)
        };
        let checks = async {
            if !opts.verify {
                return None;
            }
            serial(target).await;
            let v = match source_sums {
                Some(Ok((sums, seconds))) => {
                    verify_against(
                        snap.client(),
                        sl,
                        sums,
                        seconds,
                        target,
                        tl,
                        bots.as_deref(),
                    )
                    .await
                }
                Some(Err(e)) => Err(crate::verify::VerifyError::Source(e)),
                None => verify(snap.client(), sl, target, tl, bots.as_deref()).await,
            };
            if let Ok(v) = &v {
                events(Event::Verified {
                    passed: v.passed(),
                    bots: v.bots,
                    mismatches: v.mismatches.len(),
                    seconds: v.seconds,
                });
            }
            Some(v)
        };
        let ((built, index_seconds, analyzed), checked) = tokio::join!(indexes, checks);
        report.indexes = built.map_err(CopyError::target(tgt_label))?;
        report.index_seconds = index_seconds;
        if let Err(e) = analyzed {
            tracing::warn!(
                "ANALYZE of the target failed (the planner will guess until autovacuum runs): {e}"
            );
        }
        if let Some(v) = checked {
            report.verify = Some(v.map_err(|e| match e {
                crate::verify::VerifyError::Source(e) => CopyError::source(src_label)(e),
                crate::verify::VerifyError::Target(e) => CopyError::target(tgt_label)(e),
            })?);
        }
        Ok(())
    }

    /// `ANALYZE` of the target table. Statistics for the columns the planner uses; the vector
    /// column's would only cost a detoast of every sampled vector (autovacuum's own ANALYZE
    /// takes them later anyway).
    fn analyze_sql(&self) -> String {
        let tl = &self.ep.target_layout;
        let stats_columns: Vec<String> = self
            .src_def
            .columns
            .iter()
            .filter(|c| !c.type_sql.starts_with("vector") && !c.type_sql.starts_with("halfvec"))
            .map(|c| ragshift_store::quote_ident(&c.name))
            .collect();
        if stats_columns.is_empty() {
            format!("ANALYZE {}", tl.qualified())
        } else {
            format!("ANALYZE {} ({})", tl.qualified(), stats_columns.join(", "))
        }
    }

    /// How the indexes are built: `[index]` limits, `jobs` at once, the run's lock timeout, and
    /// their progress sent to the run's events besides any observer of the caller's.
    fn build_settings(&self) -> BuildSettings {
        let opts = self.opts;
        let ev = self.events.clone();
        let outer = opts.index_build.observer.clone();
        let observer: ragshift_store::index_build::IndexObserver = Arc::new(move |e| {
            if let Some(o) = &outer {
                o(e);
            }
            ev(match e {
                IndexEvent::IndexMemory(m) => Event::IndexMemory(m.clone()),
                IndexEvent::IndexProgress(p) => Event::IndexProgress(p.clone()),
            })
        });
        BuildSettings {
            index: ragshift_store::index_build::IndexBuildOptions {
                limits: opts.index_build.limits.clone(),
                observer: Some(observer),
            },
            jobs: opts.jobs,
            lock_timeout: opts.lock_timeout,
        }
    }
}

/// The statement (and what it does, for messages) that empties the target table for
/// `--replace`: only the chosen bots' rows when the run is limited to some.
fn emptying_sql(tl: &Layout, bots: Option<&[String]>) -> (String, String) {
    match bots {
        Some(b) => {
            let ids: Vec<String> = b.iter().map(|id| quote_literal(id)).collect();
            (
                format!(
                    "DELETE FROM {} WHERE {}::text = ANY(ARRAY[{}]::text[])",
                    tl.qualified(),
                    ragshift_store::quote_ident(&tl.bot),
                    ids.join(", ")
                ),
                format!("deleting the chosen bots from {}", tl.display_name()),
            )
        }
        None => (
            format!("TRUNCATE {}", tl.qualified()),
            format!("emptying {}", tl.display_name()),
        ),
    }
}

/// Ends a recorded run: the run's journal entry always ends, `failed` with its reason or
/// `succeeded`; a table this run created is dropped again if it failed with the table empty.
async fn end_run(
    ep: &Endpoints,
    opts: &CopyOptions,
    target: &mut Client,
    outcome: Result<Status, CopyError>,
    mut report: CopyReport,
) -> Result<CopyReport, CopyError> {
    let (status, error) = match outcome {
        Ok(status) => (status, None),
        Err(e) => {
            report.error = Some(e.to_string());
            (Status::Failed, Some(e))
        }
    };
    if status == Status::Failed && report.created_table {
        remove_if_empty(target, &ep.target_layout).await;
    }
    finish(
        target,
        &ep.target,
        &opts.retry,
        &opts.journal,
        &report,
        status,
    )
    .await;
    match error {
        Some(error) => Err(CopyError::RunFailed {
            run_id: report.run_id,
            error: Box::new(error),
        }),
        None => Ok(report),
    }
}

/// Drops the table this run created when it failed before any row landed in it, so a failed
/// run leaves no empty table behind (one with rows stays, for `--resume`).
async fn remove_if_empty(target: &Client, tl: &Layout) {
    let sql = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM {t}) THEN DROP TABLE {t}; END IF; END $$",
        t = tl.qualified()
    );
    match target.batch_execute(&sql).await {
        Ok(()) => tracing::info!(
            "removed the empty table {} this run had created",
            tl.display_name()
        ),
        Err(e) => tracing::warn!(
            "could not remove the empty table {} this run created: {}",
            tl.display_name(),
            StoreError::query("dropping it", e)
        ),
    }
}

/// Refuses a copy whose source and target are the same table of the same database, however
/// they are reached (`localhost` and `127.0.0.1`, an alias, a tunnel): its snapshot would block
/// its own TRUNCATE, and a replace would empty the table. Compared by
/// [`ragshift_store::identity`], on a separate source session (outside the snapshot).
async fn refuse_copy_into_itself(ep: &Endpoints, target: &Client) -> Result<(), CopyError> {
    let (sl, tl) = (&ep.source_layout, &ep.target_layout);
    let src_label = ep.source.label();
    let source = connect(&ep.source, "ragshift copy (identity)")
        .await
        .map_err(CopyError::source(src_label))?;
    let (s, t) = tokio::join!(identify(&source), identify(target));
    let s = s.map_err(CopyError::source(src_label))?;
    let t = t.map_err(CopyError::target(ep.target.label()))?;
    if same_database(&s, &t) && sl.schema == tl.schema && sl.table == tl.table {
        return Err(CopyError::Refused(format!(
            "source and target are the same table: {} of {s}, reached as {src_label} and {}; copying a table into itself would block on its own snapshot (and --replace would empty it). Give the new cluster as --target, or another --target-table",
            sl.display_name(),
            ep.target.label()
        )));
    }
    Ok(())
}

/// Keeps a checksum query to one process: it shares the machine with the copy or the index
/// builds, which are the critical path, and parallel workers would take their CPU.
async fn serial(client: &Client) {
    if let Err(e) = client
        .batch_execute("SET max_parallel_workers_per_gather = 0")
        .await
    {
        tracing::debug!("checksums may use parallel workers: {e}");
    }
}

async fn analyze_on(spec: &ConnectSpec, sql: &str) -> Result<(), StoreError> {
    let c = connect(spec, "ragshift copy (analyze)").await?;
    c.batch_execute(sql)
        .await
        .map_err(|e| StoreError::query("analyzing the target table", e))
}

/// Records the end of the run: on the main session, or on a new one if it was cut (within the
/// retry budget). A target that stays unreachable leaves the run `running`, which `status`
/// shows as stale once the process is gone.
async fn finish(
    target: &mut Client,
    spec: &ConnectSpec,
    policy: &Policy,
    journal: &Journal,
    report: &CopyReport,
    status: Status,
) {
    let value = serde_json::to_value(report).unwrap_or_default();
    let why = report
        .error
        .clone()
        .or_else(|| report.stopped.clone())
        .or_else(|| {
            report.failures.first().map(|f| {
                format!(
                    "{} partition(s) failed; the first, {} ({}): {}",
                    report.failures.len(),
                    f.partition,
                    f.what,
                    f.error
                )
            })
        });
    let why = why.filter(|_| status == Status::Failed);
    let mut attempts = policy.attempts();
    loop {
        let r = match reconnect_if_closed(target, spec, policy).await {
            Ok(()) => {
                journal
                    .finish_run(&*target, &report.run_id, status, &value, why.as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        let Err(e) = r else { return };
        match attempts.after_failure(store_verdict(&e)) {
            Next::Wait(d) => {
                tokio::time::sleep(d).await;
                attempts.record_attempt();
            }
            Next::Stop(reason) => {
                tracing::error!(
                    "could not record the end of run {} in the journal: {}",
                    report.run_id,
                    attempts.gave_up(e, reason)
                );
                return;
            }
        }
    }
}

/// Replaces a closed connection with a new one (retried within `policy`).
async fn reconnect_if_closed(
    client: &mut Client,
    spec: &ConnectSpec,
    policy: &Policy,
) -> Result<(), StoreError> {
    if !client.is_closed() {
        return Ok(());
    }
    *client = policy
        .run("reconnecting to the target", store_verdict, || {
            connect(spec, "ragshift copy")
        })
        .await
        .map_err(|g| g.into_inner())?;
    Ok(())
}

/// A run id that sorts by time: `copy-<unix seconds>-<nanos>`.
fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("copy-{}-{:09}", now.as_secs(), now.subsec_nanos())
}

struct WorkerContext<'a> {
    ep: &'a Endpoints,
    snap: &'a SourceSnapshot,
    /// The run's main target connection: records a unit's failure when its writer is gone.
    target: &'a Client,
    lock: &'a TargetLock,
    run_id: &'a str,
    columns: &'a str,
    counters: &'a Counters,
    events: &'a EventSink,
    policy: &'a Policy,
    journal: &'a Journal,
    lock_timeout: Duration,
    /// Set when the run must stop taking partitions (lock lost, source snapshot gone): why.
    stop: &'a Mutex<Option<String>>,
}

/// A target session that writes partitions, and who it is on the server (to end it for sure
/// after its connection broke: see [`end_session`]).
struct Writer {
    client: Client,
    session: SessionId,
}

async fn open_writer(
    spec: &ConnectSpec,
    app: &str,
    lock_timeout: Duration,
) -> Result<Writer, StoreError> {
    let client = connect(spec, app).await?;
    ddl::set_lock_timeout(&client, lock_timeout).await?;
    let session = session_id(&client).await?;
    Ok(Writer { client, session })
}

/// The connections one worker keeps between partitions.
#[derive(Default)]
struct Sessions {
    reader: Option<Client>,
    writer: Option<Writer>,
    /// A writer whose connection broke: it must be gone before the next attempt writes.
    broken: Option<Writer>,
}

impl Sessions {
    /// Drops what an error may have left unusable: the reader always (its COPY may be half
    /// read or its transaction aborted; a new one adopts the same snapshot), the writer when
    /// its connection broke (kept aside to be fenced).
    fn after_error(&mut self) {
        self.reader = None;
        if self.writer.as_ref().is_some_and(|w| w.client.is_closed()) {
            if let Some(w) = self.writer.take() {
                self.broken = Some(w);
            }
        }
    }
}

/// One attempt at a partition: (re)opens what is missing, fences a broken writer, copies.
async fn attempt(
    ctx: &WorkerContext<'_>,
    app: &str,
    sessions: &mut Sessions,
    sql: &PartitionSql,
    p: &Partition,
) -> Result<Copied, PipeError> {
    if sessions.reader.is_none() {
        if ctx.snap.client().is_closed() {
            return Err(PipeError::Source(snapshot_lost()));
        }
        sessions.reader = Some(ctx.snap.reader(app).await.map_err(|e| {
            if ctx.snap.client().is_closed() {
                PipeError::Source(snapshot_lost())
            } else {
                PipeError::Source(e)
            }
        })?);
    }
    if sessions.writer.is_none() {
        let w = open_writer(&ctx.ep.target, app, ctx.lock_timeout)
            .await
            .map_err(PipeError::Target)?;
        if let Some(old) = &sessions.broken {
            end_session(&w.client, &old.session)
                .await
                .map_err(PipeError::Target)?;
        }
        sessions.broken = None;
        sessions.writer = Some(w);
    }
    match (&sessions.reader, &mut sessions.writer) {
        (Some(reader), Some(writer)) => {
            copy_partition(
                reader,
                &mut writer.client,
                sql,
                ctx.journal,
                ctx.run_id,
                &p.id,
                p.rows,
                &ctx.counters.bytes,
                ctx.lock,
            )
            .await
        }
        _ => Err(PipeError::Target(StoreError::new(
            StoreErrorKind::Connect,
            "no connection to copy with",
        ))),
    }
}

/// The error for a source whose snapshot session died.
fn snapshot_lost() -> StoreError {
    StoreError::new(
        StoreErrorKind::Query,
        "the source snapshot is gone (the session that exported it was disconnected), so the rest can't be copied from the same point in time; the partitions copied so far are kept: run the same command with --resume, which continues from a new snapshot (verification then compares every bot with that new snapshot)",
    )
}

async fn worker(
    ctx: &WorkerContext<'_>,
    n: usize,
    queue: Arc<Mutex<VecDeque<Partition>>>,
    failures: Arc<Mutex<Vec<PartitionFailure>>>,
) {
    let app = format!("ragshift copy (worker {n})");
    let (sl, tl) = (&ctx.ep.source_layout, &ctx.ep.target_layout);
    let mut sessions = Sessions::default();
    loop {
        if ctx.stop.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            break;
        }
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        let Some(p) = next else { break };
        let sql = PartitionSql {
            copy_out: format!(
                "COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT binary)",
                ctx.columns,
                sl.qualified(),
                p.predicate(sl)
            ),
            copy_in: format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                tl.qualified(),
                ctx.columns
            ),
            delete: format!("DELETE FROM {} WHERE {}", tl.qualified(), p.predicate(tl)),
        };
        let started = Instant::now();
        let mut attempts = ctx.policy.attempts();
        let outcome = loop {
            match attempt(ctx, &app, &mut sessions, &sql, &p).await {
                Ok(c) => break Ok(c),
                Err(e) => {
                    sessions.after_error();
                    match attempts.after_failure(e.verdict()) {
                        Next::Wait(delay) => {
                            tracing::warn!(
                                partition = %p.id,
                                "{}: {e}; retrying in {:.1}s (attempt {})",
                                p.describe(),
                                delay.as_secs_f64(),
                                attempts.made() + 1
                            );
                            tokio::time::sleep(delay).await;
                            attempts.record_attempt();
                        }
                        Next::Stop(reason) => {
                            if matches!(e, PipeError::LockLost(_)) || ctx.snap.client().is_closed()
                            {
                                let mut stop = ctx.stop.lock().unwrap_or_else(|e| e.into_inner());
                                stop.get_or_insert_with(|| e.to_string());
                            }
                            break Err(attempts.gave_up(e, reason).to_string());
                        }
                    }
                }
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(copied) => {
                let moved = match copied {
                    Copied::Now(m) => m,
                    Copied::Already => {
                        tracing::warn!(
                            partition = %p.id,
                            "{}: an earlier attempt had committed it (its answer was lost); not copied again",
                            p.describe()
                        );
                        Moved::default()
                    }
                };
                ctx.counters.rows.fetch_add(moved.rows, Ordering::Relaxed);
                ctx.counters.partitions_done.fetch_add(1, Ordering::Relaxed);
                (ctx.events)(Event::Partition {
                    partition: p.id.clone(),
                    what: p.describe(),
                    status: "succeeded",
                    rows: moved.rows,
                    bytes: moved.bytes,
                    seconds,
                    error: None,
                });
            }
            Err(error) => {
                tracing::error!(partition = %p.id, "{} failed: {error}", p.describe());
                let result = UnitResult {
                    error: Some(error.clone()),
                    ..UnitResult::default()
                };
                // On the writer if it still works, else on the run's main connection. The
                // status is only changed if the partition did not commit after all.
                let journal: &Client = match &sessions.writer {
                    Some(w) if !w.client.is_closed() => &w.client,
                    _ => ctx.target,
                };
                if let Err(je) = mark_failed(journal, ctx.journal, ctx.run_id, &p.id, &result).await
                {
                    tracing::warn!("could not record the failure of {}: {je}", p.id);
                }
                (ctx.events)(Event::Partition {
                    partition: p.id.clone(),
                    what: p.describe(),
                    status: "failed",
                    rows: 0,
                    bytes: 0,
                    seconds,
                    error: Some(error.clone()),
                });
                failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(PartitionFailure {
                        partition: p.id.clone(),
                        what: p.describe(),
                        error,
                    });
            }
        }
    }
    if let Some(reader) = &sessions.reader {
        let _ = reader.batch_execute("COMMIT").await;
    }
}

/// Records a unit as failed unless it is marked succeeded (a commit whose answer was lost).
async fn mark_failed(
    client: &Client,
    journal: &Journal,
    run_id: &str,
    unit_id: &str,
    result: &UnitResult,
) -> Result<(), StoreError> {
    client
        .execute(
            &*format!(
                "UPDATE {} SET status = 'failed', error = $3, finished_at = now()
                  WHERE run_id = $1 AND unit_id = $2 AND status <> 'succeeded'",
                journal.units_table()
            ),
            &[&run_id, &unit_id, &result.error],
        )
        .await
        .map_err(|e| StoreError::query(format!("recording the failure of {unit_id}"), e))?;
    Ok(())
}
