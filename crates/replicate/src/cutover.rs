//! `replicate cutover`, in an order that loses no write: wait for the initial sync and catch
//! up; fence writes on the source table ([`crate::fence`]); wait until the target has
//! confirmed everything up to the source position read after the fence; verify both sides;
//! detach (drop the subscription, which drops its slot, and the publication); only then build
//! the vector index, so the build never holds back the apply worker; report what the
//! application must switch. The fence stays after a successful cutover, so the old cluster
//! can't take writes that would be lost.
//!
//! If any step before detaching fails (verification finds a difference, a time-out, a lost
//! connection; a fence whose COMMIT's outcome is unknown included), the fence is lifted again,
//! replication keeps running, and the error says what to run next. A cutover interrupted
//! after it verified and began detaching (killed, or its target connection lost) leaves the
//! source fenced and the subscription gone: the next cutover verifies again under the fence
//! and finishes it. Once it has begun to fence, no failure exits as "nothing started". Without the fence (`fence: false`, which the CLI allows only with an
//! explicit acknowledgement), writes reaching the source after the catch-up are not copied.

use std::fmt;
use std::time::{Duration, Instant};

use ragshift_store::ident::quote_ident;
use ragshift_store::index::{ensure_vector_index_with, IndexOutcome, VectorIndex};
use ragshift_store::index_build::{build_index, IndexBuild, IndexBuildOptions};
use ragshift_store::journal::Status;
use ragshift_store::{connect, Layout, StoreError};
use ragshift_verify::{verify, Store};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{OnSide, Which};
use crate::record::{self, Mark, ObjectKind, Record};
use crate::status::{self, ReplicationStatus};
use crate::{
    abort, fence, locked_record, slot, subscription, ReplicateError, ReplicateErrorKind, Sides,
};

/// What to run after a cutover that stopped before detaching.
const RETRY: &str = "replication keeps running: see `ragshift replicate status`, then run `ragshift replicate cutover` again (or `ragshift replicate abort` to give up)";

/// What to run after a cutover that verified but couldn't finish detaching or recording it.
const UNFINISHED: &str = "the target has every row and the source stays fenced (writes there fail), but the cutover could not finish: run `ragshift replicate cutover` again to finish it (it verifies again), or `ragshift replicate abort` to lift the fence and remove replication";

/// How to cut over.
#[derive(Debug, Clone)]
pub struct CutoverOptions {
    /// How long to wait for the initial sync and for catch-up, in total.
    pub timeout: Duration,
    /// Time between status polls.
    pub poll: Duration,
    /// What `verify` checks.
    pub verify: ragshift_verify::Options,
    /// The vector index to build if the target has none.
    pub index: VectorIndex,
    /// Memory, parallel workers and progress reports for the index build (`[index]`).
    pub index_build: IndexBuildOptions,
    /// Fence writes on the source before the last catch-up (the default). Without it, writes
    /// that reach the source after the catch-up are lost.
    pub fence: bool,
    /// How long the fence may wait for transactions writing to the table to end.
    pub fence_lock_timeout: Duration,
}

/// Progress of a cutover, for the terminal.
#[derive(Debug)]
pub enum Step<'a> {
    /// Waiting; the latest status.
    Waiting(&'a ReplicationStatus),
    /// Fencing writes to this table on the source.
    Fencing(&'a str),
    /// Caught up to this source position; verifying.
    Verifying(&'a str),
    /// A step failed: lifting the fence again.
    Unfencing,
    /// Dropping the subscription, slot and publication.
    Detaching,
    /// Building the vector index.
    BuildingIndex,
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Waiting(s) if !s.synced => write!(
                f,
                "waiting for the initial sync: {} ({} of {} rows)",
                s.tables
                    .iter()
                    .map(|t| format!("{} {}", t.table, t.description))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.target_rows,
                s.source_rows
            ),
            Self::Waiting(s) => write!(
                f,
                "catching up: {} bytes of WAL behind",
                s.behind_bytes.map_or("?".to_owned(), |b| b.to_string())
            ),
            Self::Fencing(table) => write!(
                f,
                "fencing writes to {table} on the source (waiting for the transactions writing to it)"
            ),
            Self::Verifying(lsn) => write!(f, "caught up to source position {lsn}; verifying"),
            Self::Unfencing => f.write_str("lifting the write fence on the source"),
            Self::Detaching => {
                f.write_str("dropping the subscription, its slot and the publication")
            }
            Self::BuildingIndex => f.write_str("building the vector index on the target"),
        }
    }
}

/// The write fence a cutover put on the source.
#[derive(Debug, Clone, Serialize)]
pub struct FenceSummary {
    /// The fenced table.
    pub table: String,
    /// The trigger's (and its function's) name.
    pub name: String,
    /// The source position read once the fence was in place.
    pub lsn: Option<String>,
    /// Whether it is still in place (after a successful cutover it stays).
    pub in_place: bool,
    /// The statements that lift it, to run on the source.
    pub removal_sql: String,
}

/// The vector index after cutover.
#[derive(Debug, Clone, Serialize)]
pub struct IndexSummary {
    /// Built now (else it was already there).
    pub built: bool,
    /// Its definition.
    pub definition: String,
    /// Build time in seconds.
    pub seconds: f64,
}

/// What the cutover found and did.
#[derive(Debug, Clone, Serialize)]
pub struct CutoverReport {
    /// The run.
    pub run_id: String,
    /// Whether the cutover happened (verification passed).
    pub passed: bool,
    /// The source position the target had confirmed when verified.
    pub caught_up_to: String,
    /// The verification.
    pub verify: ragshift_verify::Report,
    /// The vector index (`None` when refused, or when building it failed).
    pub index: Option<IndexSummary>,
    /// Why building the vector index failed after the cutover (the data is complete).
    pub index_error: Option<String>,
    /// The write fence (`None` with `fence: false`).
    pub fence: Option<FenceSummary>,
    /// Objects removed.
    pub removed: Vec<String>,
    /// Objects left, with the statement to run.
    pub left: Vec<String>,
    /// What the application must switch.
    pub switch: Vec<String>,
    /// What to run next when the cutover was refused.
    pub next: Vec<String>,
}

impl CutoverReport {
    /// Whether the cutover did all it should: verified, everything removed, the index built
    /// (what `replicate cutover` exits 0 for).
    pub fn succeeded(&self) -> bool {
        self.passed && self.left.is_empty() && self.index_error.is_none()
    }
}

/// Catches up, fences, verifies, detaches and builds the index; `Ok` with `passed = false`
/// when verification refused the cutover (the fence lifted, replication still running).
pub async fn cutover(
    sides: &Sides,
    options: &CutoverOptions,
    progress: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<CutoverReport, ReplicateError> {
    let mut fenced = false;
    run(sides, options, progress, &mut fenced)
        .await
        .map_err(|e| if fenced { e.after_work() } else { e })
}

/// The cutover; sets `fenced` once it begins to fence (or finds the source fenced by an
/// interrupted cutover), after which no failure is "nothing started".
async fn run(
    sides: &Sides,
    options: &CutoverOptions,
    progress: &mut (dyn FnMut(Step<'_>) + Send),
    fenced: &mut bool,
) -> Result<CutoverReport, ReplicateError> {
    let (source, mut target) = sides.connect("cutover").await?;
    let (_lock, record, layout) = locked_record(sides, &target, "replicate cutover").await?;
    let run = record.names.run_id.clone();
    let w = Wait {
        sides,
        source: &source,
        target: &target,
        record: &record,
        layout: &layout,
        options,
        deadline: Instant::now() + options.timeout,
    };

    let fence_name = fence::name(&record.names);
    // A cutover killed after it verified and began detaching left the source fenced and the
    // subscription dropped: there is nothing to wait for; verify again and finish.
    let resumed =
        detached_under_fence(sides, &source, &target, &record, &layout, &fence_name).await?;
    let mut fence_summary = None;
    if resumed {
        *fenced = true;
        tracing::info!(
            "an earlier cutover of {run} was interrupted after it verified and began detaching (the source is fenced, the subscription gone): verifying again and finishing it"
        );
        fence_summary = Some(FenceSummary {
            table: layout.display_name(),
            name: fence_name.clone(),
            lsn: None,
            in_place: true,
            removal_sql: fence::removal_sql(&layout, &fence_name),
        });
    } else {
        // Initial sync first, then catch up to now: the fence then holds writes back briefly.
        let before = async {
            loop {
                let st = w.status().await?;
                progress(Step::Waiting(&st));
                fatal_problems(&st)?;
                if st.synced && st.apply_worker {
                    break;
                }
                w.pause("the initial sync to finish").await?;
            }
            let now = slot::current_lsn(&source).await.on(sides, Which::Source)?;
            w.catch_up(&now, progress).await
        };
        before
            .await
            .map_err(|e| e.context(&format!("nothing was fenced; {RETRY}")))?;
    }
    if options.fence && !resumed {
        *fenced = true;
        let table = layout.display_name();
        progress(Step::Fencing(&table));
        let (journal, fence) = (&sides.journal, (ObjectKind::Fence, fence_name.as_str()));
        record::mark(&target, journal, &run, fence, Mark::Planned)
            .await
            .on(sides, Which::Target)?;
        if let Err(e) =
            fence::install(&source, &layout, &fence_name, options.fence_lock_timeout).await
        {
            // Usually its transaction rolled back; but when the connection broke, its COMMIT
            // may have been carried out: lift whatever is there before saying it isn't.
            let e = ReplicateError::store("source", sides.source.label(), e);
            return Err(
                match lift(sides, &source, &target, &record, &layout, &fence_name).await {
                    Ok(()) => e.context(&format!(
                        "the source is not fenced; {RETRY} once the cause is gone (a long transaction: wait for it, or give a longer --fence-lock-timeout)"
                    )),
                    Err(why) => e.context(&format!(
                        "the source may be STILL FENCED (checking failed: {why}): run `ragshift replicate abort` to remove replication and the fence, or on the source: {}",
                        fence::removal_sql(&layout, &fence_name)
                    )),
                },
            );
        }
        if let Err(e) = record::mark(&target, journal, &run, fence, Mark::Created)
            .await
            .on(sides, Which::Target)
        {
            let lifted = lift(sides, &source, &target, &record, &layout, &fence_name).await;
            return Err(e.context(&match lifted {
                Ok(()) => format!("the fence was lifted again; {RETRY}"),
                Err(why) => format!(
                    "the source is STILL FENCED ({why}): run on the source {}",
                    fence::removal_sql(&layout, &fence_name)
                ),
            }));
        }
        fence_summary = Some(FenceSummary {
            table,
            name: fence_name.clone(),
            lsn: None,
            in_place: true,
            removal_sql: fence::removal_sql(&layout, &fence_name),
        });
    }

    // Catch up to the fence (or to now) and verify. Unfenced, writes racing the verification
    // get one more round.
    let attempts = if options.fence { 1 } else { 2 };
    let outcome = async {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let lsn = slot::current_lsn(&source).await.on(sides, Which::Source)?;
            if !resumed {
                w.catch_up(&lsn, progress).await?;
            }
            progress(Step::Verifying(&lsn));
            finish_tables(sides, &source, &target, &layout).await?;
            let report = w.verify().await?;
            if report.passed() || attempt >= attempts {
                return Ok::<_, ReplicateError>((report, lsn));
            }
            tracing::info!(
                "verification found differences; catching up once more in case writes raced it"
            );
        }
    }
    .await;
    let (report, lsn) = match outcome {
        Ok((report, lsn)) if report.passed() => (report, lsn),
        failed => {
            let mut next = Vec::new();
            if let Some(f) = fence_summary.as_mut() {
                progress(Step::Unfencing);
                match lift(sides, &source, &target, &record, &layout, &fence_name).await {
                    Ok(()) => {
                        f.in_place = false;
                        next.push("the write fence on the source was lifted: it accepts writes again".to_owned());
                    }
                    Err(e) => next.push(format!(
                        "the source is STILL FENCED (lifting it failed: {e}): run `ragshift replicate abort` to remove replication and the fence, or on the source: {}",
                        f.removal_sql
                    )),
                }
            }
            next.push(if resumed {
                "the interrupted cutover had already dropped the subscription, so replication can't go on: run `ragshift replicate abort`, then `ragshift replicate start` again".to_owned()
            } else {
                RETRY.to_owned()
            });
            return match failed {
                Err(e) => Err(e.context(&next.join("; "))),
                Ok((report, lsn)) => Ok(CutoverReport {
                    run_id: run,
                    passed: false,
                    caught_up_to: lsn,
                    verify: report,
                    index: None,
                    index_error: None,
                    fence: fence_summary,
                    removed: Vec::new(),
                    left: Vec::new(),
                    switch: Vec::new(),
                    next,
                }),
            };
        }
    };
    if let Some(f) = fence_summary.as_mut() {
        f.lsn = Some(lsn.clone());
    }

    // Everything is on the target: detach first, so the index build blocks no apply worker.
    progress(Step::Detaching);
    let replication: Vec<record::Object> = record::objects(&target, &sides.journal, &run)
        .await
        .on(sides, Which::Target)
        .map_err(|e| e.context(UNFINISHED))?
        .into_iter()
        .filter(|o| {
            matches!(
                o.kind,
                ObjectKind::Subscription | ObjectKind::Slot | ObjectKind::Publication
            )
        })
        .collect();
    let mut detached = abort::remove(
        Some(&source),
        &target,
        &sides.journal,
        &record,
        &replication,
    )
    .await;
    if !detached.left.is_empty() {
        // Usually the source went away mid-detach (a failover): its slot would keep WAL there
        // for ever. Reconnect (for a while) and remove what is left.
        if let Some(fresh) = reconnect_source(sides).await {
            let again =
                abort::remove(Some(&fresh), &target, &sides.journal, &record, &replication).await;
            detached.removed.extend(again.removed);
            detached.left = again.left;
        }
    }

    progress(Step::BuildingIndex);
    let typed = ragshift_store::schema::table_dimension(&target, &layout)
        .await
        .map(|d| d.is_some())
        .unwrap_or(true);
    let (index, index_error) = if !typed {
        // Not `vector(n)` (halfvec, an untyped vector): the configured index can't be built
        // on it; the source's own vector indexes are, as it defines them.
        like_the_source(sides, &source, &mut target, &layout, &options.index_build).await
    } else {
        match ensure_vector_index_with(
        &mut target,
        Some(&sides.target),
        &layout,
        options.index,
        &options.index_build,
    )
    .await
    {
        Ok(IndexOutcome::Built {
            definition,
            elapsed,
        }) => (
            Some(IndexSummary {
                built: true,
                definition,
                seconds: elapsed.as_secs_f64(),
            }),
            None,
        ),
        Ok(IndexOutcome::Present(i)) => (
            Some(IndexSummary {
                built: false,
                definition: i.definition,
                seconds: 0.0,
            }),
            None,
        ),
        Err(e) => (
            None,
            Some(format!(
                "building the vector index on {} failed ({e}); the data is complete: build it with `ragshift build-index`",
                sides.target.label()
            )),
        ),
    }
    };

    let mut switch = vec![
        format!(
            "point the application at {} (table {}): it now holds every row and no longer follows the source",
            sides.target.label(),
            layout.display_name()
        ),
        "Bedrock Chat: update the database secret the API and the embedding task read (DB_SECRETS_ARN: host, port, dbname, username, password) to the new cluster, then restart them".to_owned(),
    ];
    match &fence_summary {
        Some(f) => switch.push(format!(
            "the old source {} stays fenced: writes to {} there fail (SQLSTATE {}, \"{} {} are fenced ...\"); to lift the fence (e.g. to roll back) run `ragshift replicate abort`, or on the source: {}",
            sides.source.label(),
            f.table,
            fence::SQLSTATE,
            fence::MESSAGE_START,
            f.table,
            f.removal_sql
        )),
        None => switch.push(format!(
            "writes that reached the old source ({}) after position {lsn} were NOT copied (no fence)",
            sides.source.label()
        )),
    }
    let report = CutoverReport {
        run_id: run.clone(),
        passed: true,
        caught_up_to: lsn,
        verify: report,
        index,
        index_error,
        fence: fence_summary,
        removed: detached.removed,
        left: detached.left,
        switch,
        next: Vec::new(),
    };
    record::finish(
        &target,
        &sides.journal,
        &run,
        Status::Succeeded,
        &serde_json::json!({ "outcome": "cut over", "caught_up_to": report.caught_up_to,
                             "fence": report.fence, "index_error": report.index_error,
                             "removed": report.removed, "left": report.left }),
    )
    .await
    .on(sides, Which::Target)
    .map_err(|e| e.context(UNFINISHED))?;
    Ok(report)
}

/// What replication doesn't carry, done once the data is in: each sequence of the chunk table
/// and of the tables it refers to set to where the source's stands (or past the target's
/// largest id), and every table's foreign keys added (the initial copy filled the tables one
/// by one, so they wait for it). Safe to repeat.
async fn finish_tables(
    sides: &Sides,
    source: &Client,
    target: &Client,
    layout: &Layout,
) -> Result<(), ReplicateError> {
    use ragshift_store::catalog::{read_table, sync_sequences};
    let mut tables = vec![layout.clone()];
    for r in ragshift_store::schema::referenced_tables(source, layout)
        .await
        .on(sides, Which::Source)?
    {
        tables.push(ragshift_store::schema::counterpart(layout, layout, &r).0);
    }
    for table in &tables {
        let Some(def) = read_table(source, table).await.on(sides, Which::Source)? else {
            continue;
        };
        let set = sync_sequences(source, target, &def, table, table)
            .await
            .on(sides, Which::Target)?;
        for s in set {
            tracing::info!("sequence {s}");
        }
        let on_target = read_table(target, table).await.on(sides, Which::Target)?;
        for fk in def.constraints.iter().filter(|c| c.kind == "f") {
            let present = on_target
                .as_ref()
                .is_some_and(|t| t.constraints.iter().any(|c| c.name == fk.name));
            if present {
                continue;
            }
            target
                .batch_execute(&format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} {}",
                    table.qualified(),
                    quote_ident(&fk.name),
                    fk.definition
                ))
                .await
                .map_err(|e| {
                    ReplicateError::store(
                        "target",
                        sides.target.label(),
                        StoreError::query(format!("adding foreign key {}", fk.name), e),
                    )
                })?;
            tracing::info!("foreign key {} added: {}", fk.name, fk.definition);
        }
    }
    Ok(())
}

/// The source's vector indexes on the target, each as the source defines it (an untyped or
/// halfvec column needs the source's own operator class or expression). None on the source:
/// none on the target, as before the move.
async fn like_the_source(
    sides: &Sides,
    source: &Client,
    target: &mut Client,
    layout: &Layout,
    index_build: &IndexBuildOptions,
) -> (Option<IndexSummary>, Option<String>) {
    let fail = |e: String| {
        (
            None,
            Some(format!(
                "building the vector index on {} failed ({e}); the data is complete: build it with `ragshift build-index`",
                sides.target.label()
            )),
        )
    };
    use ragshift_store::catalog::read_table;
    let (wanted, present) =
        match tokio::join!(read_table(source, layout), read_table(&*target, layout)) {
            (Ok(w), Ok(p)) => (
                w.map(|d| d.indexes).unwrap_or_default(),
                p.map(|d| d.indexes).unwrap_or_default(),
            ),
            (Err(e), _) | (_, Err(e)) => return fail(e.to_string()),
        };
    let mut summary = None;
    for index in wanted.into_iter().filter(|i| i.is_vector()) {
        let (name, definition) = (index.name, index.definition);
        if present.iter().any(|p| p.name == name) {
            summary.get_or_insert(IndexSummary {
                built: false,
                definition,
                seconds: 0.0,
            });
            continue;
        }
        let one = IndexBuild {
            schema: &layout.schema,
            table: &layout.table,
            name: &name,
            sql: &definition,
            rows: None,
            parallel_workers: None,
        };
        let built = match build_index(target, Some(&sides.target), &one, index_build).await {
            Ok(b) => b,
            Err(e) => return fail(format!("{name}: {e}")),
        };
        summary.get_or_insert(IndexSummary {
            built: true,
            definition,
            seconds: built.elapsed.as_secs_f64(),
        });
    }
    (summary, None)
}

/// How long a cutover that lost the source while detaching tries to reach it again.
const SOURCE_AGAIN: Duration = Duration::from_secs(30);

/// A new connection to the source, retried (the one retry policy) for [`SOURCE_AGAIN`].
async fn reconnect_source(sides: &Sides) -> Option<Client> {
    let policy = ragshift_retry::Policy {
        budget: SOURCE_AGAIN,
        ..ragshift_retry::Policy::default()
    };
    policy
        .run(
            "reconnecting to the source",
            ragshift_store::StoreError::retry_verdict,
            || connect(&sides.source, "ragshift replicate cutover"),
        )
        .await
        .ok()
}

/// Whether an earlier cutover of this run was interrupted after it verified and began
/// detaching: its fence is recorded and on the source, and the subscription is gone.
async fn detached_under_fence(
    sides: &Sides,
    source: &Client,
    target: &Client,
    record: &Record,
    layout: &Layout,
    fence_name: &str,
) -> Result<bool, ReplicateError> {
    let subscribed = subscription::oid(target, &record.names.subscription)
        .await
        .on(sides, Which::Target)?
        .is_some();
    if subscribed {
        return Ok(false);
    }
    let recorded = record::objects(target, &sides.journal, &record.names.run_id)
        .await
        .on(sides, Which::Target)?
        .iter()
        .any(|o| o.kind == ObjectKind::Fence && o.name == fence_name && o.created && !o.removed);
    Ok(recorded
        && fence::exists(source, layout, fence_name)
            .await
            .on(sides, Which::Source)?)
}

/// Lifts the fence and records it; tries a fresh connection if the cutover's one broke.
async fn lift(
    sides: &Sides,
    source: &Client,
    target: &Client,
    record: &Record,
    layout: &Layout,
    name: &str,
) -> Result<(), String> {
    let result = match fence::remove(source, layout, name).await {
        Ok(_) => Ok(()),
        Err(first) => match connect(&sides.source, "ragshift replicate cutover").await {
            Ok(fresh) => fence::remove(&fresh, layout, name)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(_) => Err(first.to_string()),
        },
    };
    if result.is_ok() {
        if let Err(e) = record::mark(
            target,
            &sides.journal,
            &record.names.run_id,
            (ObjectKind::Fence, name),
            Mark::Removed,
        )
        .await
        {
            tracing::warn!("the fence was lifted, but recording it failed: {e}");
        }
    }
    result
}

/// What waiting needs: both sides, the run and its deadline.
struct Wait<'a> {
    sides: &'a Sides,
    source: &'a Client,
    target: &'a Client,
    record: &'a Record,
    layout: &'a Layout,
    options: &'a CutoverOptions,
    deadline: Instant,
}

impl Wait<'_> {
    async fn status(&self) -> Result<ReplicationStatus, ReplicateError> {
        status::read(self.source, self.target, self.record, self.layout)
            .await
            .map_err(|e| self.sides.side_error(e))
    }

    /// Waits until the slot has confirmed everything up to `lsn`.
    async fn catch_up(
        &self,
        lsn: &str,
        progress: &mut (dyn FnMut(Step<'_>) + Send),
    ) -> Result<(), ReplicateError> {
        while !slot::confirmed_past(self.source, &self.record.names.slot, lsn)
            .await
            .on(self.sides, Which::Source)?
        {
            let st = self.status().await?;
            progress(Step::Waiting(&st));
            fatal_problems(&st)?;
            self.pause("the target to catch up").await?;
        }
        Ok(())
    }

    async fn verify(&self) -> Result<ragshift_verify::Report, ReplicateError> {
        let s = Store {
            client: self.source,
            layout: self.layout,
            label: self.sides.source.label(),
            beside: None,
        };
        let t = Store {
            client: self.target,
            layout: self.layout,
            label: self.sides.target.label(),
            beside: None,
        };
        // The vector index is built after the detach, so its absence isn't a difference yet.
        let options = ragshift_verify::Options {
            vector_index_later: true,
            ..self.options.verify.clone()
        };
        verify(&s, &t, &options)
            .await
            .map_err(|e| ReplicateError::new(ReplicateErrorKind::Store, e.to_string()))
    }

    async fn pause(&self, what: &str) -> Result<(), ReplicateError> {
        if Instant::now() >= self.deadline {
            return Err(ReplicateError::new(
                ReplicateErrorKind::Timeout,
                format!(
                    "gave up after {:?} waiting for {what} (--timeout)",
                    self.options.timeout
                ),
            ));
        }
        tokio::time::sleep(self.options.poll).await;
        Ok(())
    }
}

/// Problems that waiting can't fix.
fn fatal_problems(st: &ReplicationStatus) -> Result<(), ReplicateError> {
    if st.slot.is_none() || !st.subscription_exists {
        return Err(ReplicateError::new(
            ReplicateErrorKind::Store,
            format!("replication is broken: {}", st.problems.join("; ")),
        ));
    }
    Ok(())
}
