//! `replicate cutover`: wait for the initial sync, then until the target has confirmed every
//! change the source had when the cutover began; verify both sides; build the vector index;
//! then drop the subscription (which drops its slot) and the publication, and say what the
//! application must switch. Verification failing refuses the cutover and leaves replication
//! running.

use std::fmt;
use std::time::{Duration, Instant};

use ragshift_store::index::{ensure_vector_index, IndexOutcome, VectorIndex};
use ragshift_store::journal::Status;
use ragshift_store::lock::TargetLock;
use ragshift_verify::{verify, Store};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{OnSide, Which};
use crate::record::{self, Record};
use crate::status::{self, ReplicationStatus};
use crate::{abort, active_record, slot, ReplicateError, ReplicateErrorKind, Sides};

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
    /// `maintenance_work_mem` for the index build.
    pub maintenance_work_mem: String,
}

/// Progress of a cutover, for the terminal.
#[derive(Debug)]
pub enum Step<'a> {
    /// Waiting; the latest status.
    Waiting(&'a ReplicationStatus),
    /// Caught up to this source position; verifying.
    Verifying(&'a str),
    /// Building the vector index.
    BuildingIndex,
    /// Dropping the subscription, slot and publication.
    Detaching,
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
            Self::Verifying(lsn) => write!(f, "caught up to source position {lsn}; verifying"),
            Self::BuildingIndex => f.write_str("building the vector index on the target"),
            Self::Detaching => {
                f.write_str("dropping the subscription, its slot and the publication")
            }
        }
    }
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
    /// The vector index (`None` when refused).
    pub index: Option<IndexSummary>,
    /// Objects removed.
    pub removed: Vec<String>,
    /// Objects left, with the statement to run.
    pub left: Vec<String>,
    /// What the application must switch.
    pub switch: Vec<String>,
}

/// Waits, verifies, builds the index and detaches; `Ok` with `passed = false` when
/// verification refused the cutover.
pub async fn cutover(
    sides: &Sides,
    options: &CutoverOptions,
    progress: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<CutoverReport, ReplicateError> {
    let (source, mut target) = sides.connect("cutover").await?;
    let _lock = TargetLock::acquire(&sides.target, &sides.layout, "replicate cutover")
        .await
        .on(sides, Which::Target)?;
    let record = active_record(sides, &target).await?;
    let deadline = Instant::now() + options.timeout;

    // Initial sync first.
    loop {
        let st = read_status(sides, &source, &target, &record).await?;
        progress(Step::Waiting(&st));
        fatal_problems(&st)?;
        if st.synced && st.apply_worker {
            break;
        }
        wait(deadline, options, "the initial sync to finish").await?;
    }

    // Then catch up to "now" and verify; writes racing the verification get one more round.
    let mut attempt = 0;
    let (report, lsn) = loop {
        attempt += 1;
        let lsn = slot::current_lsn(&source).await.on(sides, Which::Source)?;
        while !slot::confirmed_past(&source, &record.names.slot, &lsn)
            .await
            .on(sides, Which::Source)?
        {
            let st = read_status(sides, &source, &target, &record).await?;
            progress(Step::Waiting(&st));
            fatal_problems(&st)?;
            wait(deadline, options, "the target to catch up").await?;
        }
        progress(Step::Verifying(&lsn));
        let s = Store {
            client: &source,
            layout: &sides.layout,
            label: sides.source.label(),
        };
        let t = Store {
            client: &target,
            layout: &sides.layout,
            label: sides.target.label(),
        };
        let report = verify(&s, &t, &options.verify)
            .await
            .map_err(|e| ReplicateError::new(ReplicateErrorKind::Store, e.to_string()))?;
        if report.passed() || attempt >= 2 {
            break (report, lsn);
        }
        tracing::info!(
            "verification found differences; catching up once more in case writes raced it"
        );
    };
    if !report.passed() {
        return Ok(CutoverReport {
            run_id: record.names.run_id.clone(),
            passed: false,
            caught_up_to: lsn,
            verify: report,
            index: None,
            removed: Vec::new(),
            left: Vec::new(),
            switch: Vec::new(),
        });
    }

    progress(Step::BuildingIndex);
    let index = match ensure_vector_index(
        &mut target,
        &sides.layout,
        options.index,
        &options.maintenance_work_mem,
    )
    .await
    .on(sides, Which::Target)?
    {
        IndexOutcome::Built {
            definition,
            elapsed,
        } => IndexSummary {
            built: true,
            definition,
            seconds: elapsed.as_secs_f64(),
        },
        IndexOutcome::Present(i) => IndexSummary {
            built: false,
            definition: i.definition,
            seconds: 0.0,
        },
    };

    progress(Step::Detaching);
    let objects = record::objects(&target, &record.names.run_id)
        .await
        .on(sides, Which::Target)?;
    // Only the replication objects go; the table, schema and extension now hold the data.
    let replication: Vec<record::Object> = objects
        .into_iter()
        .filter(|o| {
            matches!(
                o.kind,
                record::ObjectKind::Subscription
                    | record::ObjectKind::Slot
                    | record::ObjectKind::Publication
            )
        })
        .collect();
    let detached =
        abort::remove(Some(&source), &target, &record, &replication, &sides.layout).await;
    let switch = vec![
        format!(
            "point the application at {} (table {}): it now holds every row and no longer follows the source",
            sides.target.label(),
            sides.layout.display_name()
        ),
        "Bedrock Chat: update the database secret the API and the embedding task read (DB_SECRETS_ARN: host, port, dbname, username, password) to the new cluster, then restart them".to_owned(),
        format!(
            "writes that reach the old source ({}) from now on are NOT copied: stop them first",
            sides.source.label()
        ),
    ];
    let report = CutoverReport {
        run_id: record.names.run_id.clone(),
        passed: true,
        caught_up_to: lsn,
        verify: report,
        index: Some(index),
        removed: detached.removed,
        left: detached.left,
        switch,
    };
    record::finish(
        &target,
        &record.names.run_id,
        Status::Succeeded,
        &serde_json::json!({ "outcome": "cut over", "caught_up_to": report.caught_up_to,
                             "removed": report.removed, "left": report.left }),
    )
    .await
    .on(sides, Which::Target)?;
    Ok(report)
}

async fn read_status(
    sides: &Sides,
    source: &Client,
    target: &Client,
    record: &Record,
) -> Result<ReplicationStatus, ReplicateError> {
    status::read(source, target, record, &sides.layout)
        .await
        .map_err(|e| sides.side_error(e))
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

async fn wait(
    deadline: Instant,
    options: &CutoverOptions,
    what: &str,
) -> Result<(), ReplicateError> {
    if Instant::now() >= deadline {
        return Err(ReplicateError::new(
            ReplicateErrorKind::Timeout,
            format!(
                "gave up after {:?} waiting for {what}; replication keeps running: check `ragshift replicate status` and run cutover again (--timeout)",
                options.timeout
            ),
        ));
    }
    tokio::time::sleep(options.poll).await;
    Ok(())
}
