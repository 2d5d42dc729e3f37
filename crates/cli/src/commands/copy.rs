//! `ragshift copy`: the source table (a restored snapshot, or the old cluster) to the target
//! with parallel binary COPY from one consistent snapshot, the source's indexes rebuilt after
//! the data, both sides verified; `--resume` continues a run that was interrupted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use ragshift_config::Layers;
use ragshift_copy::{CopyOptions, CopyReport, Endpoints, Event};
use ragshift_store::index_build::IndexEvent;

use crate::args::{set_str, AwsArgs, DatabasesArgs, GlobalArgs, IndexArgs, JournalArgs, Overrides};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use ragshift_run::checks;
use ragshift_run::components::{connect_spec, Side};

/// Flags of `copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The databases.
    #[command(flatten)]
    pub databases: DatabasesArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// AWS settings (for secret ARNs).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Partitions copied at once, and index builds run at once
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
    /// Bytes per partition, as stored (TOAST included): bots are grouped up to it, bigger bots
    /// split into id ranges of about equal bytes [default: the table's size / (4 × --jobs),
    /// within 16 MiB..1 GiB]
    #[arg(long, value_name = "BYTES")]
    pub partition_bytes: Option<u64>,
    /// At most this many rows per partition (on top of --partition-bytes)
    #[arg(long, value_name = "N")]
    pub partition_rows: Option<u64>,
    /// Copy only this bot (repeat for several)
    #[arg(long = "bot", value_name = "ID")]
    pub bots: Vec<String>,
    /// Continue the latest copy run into the target table: only unfinished partitions are copied
    #[arg(long, conflicts_with = "replace")]
    pub resume: bool,
    /// Empty the target table first (with --bot: only those bots' rows)
    #[arg(long)]
    pub replace: bool,
    /// Copy the data only: no indexes or constraints afterwards
    #[arg(long)]
    pub no_index: bool,
    /// Build this vector index (hnsw or ivfflat) instead of the source's [config: target.index]
    #[arg(long, value_name = "KIND")]
    pub target_index: Option<String>,
    /// ivfflat lists for --target-index ivfflat [default: from the row count]
    #[arg(long, value_name = "N")]
    pub target_index_lists: Option<u32>,
    /// Memory and parallel workers for the index builds.
    #[command(flatten)]
    pub index: IndexArgs,
    /// max_parallel_maintenance_workers for the vector index build (same as
    /// --index-parallel-workers)
    #[arg(long, value_name = "N", hide = true)]
    pub maintenance_workers: Option<u32>,
    /// Compare per-bot row counts and checksums of both sides afterwards (the default)
    #[arg(long, overrides_with = "no_verify")]
    pub verify: bool,
    /// Skip the comparison
    #[arg(long, overrides_with = "verify")]
    pub no_verify: bool,
    /// Show the plan (partitions, table, indexes) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds between progress lines
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub progress_secs: u64,
    /// Seconds TRUNCATE, DDL and writes wait for a table lock before giving up, naming who holds it
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub lock_timeout: u64,
    /// Seconds a partition (or a reconnection) keeps being retried after a transient failure,
    /// with backoff and jitter: long enough to ride out a failover
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub retry_budget: u64,
}

impl Overrides for CopyArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.aws.apply(self.databases.apply(l));
        let l = self.journal.apply(l);
        let l = self.index.apply(l);
        let l = match self.maintenance_workers {
            Some(n) => l.flag(
                "--maintenance-workers",
                "index.parallel_workers",
                u64::from(n),
            ),
            None => l,
        };
        let l = set_str(l, "--target-index", "target.index", &self.target_index);
        match self.target_index_lists {
            Some(n) => l.flag("--target-index-lists", "target.index_lists", u64::from(n)),
            None => l,
        }
    }
}

pub async fn run(global: &GlobalArgs, args: &CopyArgs) -> Result<Outcome, Failure> {
    if args.jobs == 0 {
        return Err(anyhow!("--jobs must be at least 1").into());
    }
    if args.partition_rows == Some(0) {
        return Err(anyhow!("--partition-rows must be at least 1").into());
    }
    if args.partition_bytes == Some(0) {
        return Err(anyhow!("--partition-bytes must be at least 1").into());
    }
    let loaded = settings::load(global, &[args])?;
    let config = &loaded.config;
    let source = connect_spec(Side::Source, &config.source, &config.aws).await?;
    let target = connect_spec(Side::Target, &config.target, &config.aws).await?;
    let ep = Endpoints::from_config(config, source, target);
    let opts = CopyOptions {
        jobs: args.jobs,
        partition_bytes: args.partition_bytes,
        partition_rows: args.partition_rows,
        bots: (!args.bots.is_empty()).then(|| args.bots.clone()),
        resume: args.resume,
        replace: args.replace,
        build_indexes: !args.no_index,
        // Index events go out with the copy's own (see `show_event`).
        index_build: args.index.options(&config.index, None)?,
        verify: !args.no_verify,
        dry_run: args.dry_run,
        progress_every: Duration::from_secs(args.progress_secs.max(1)),
        lock_timeout: Duration::from_secs(args.lock_timeout.max(1)),
        retry: ragshift_copy::RetryPolicy {
            budget: Duration::from_secs(args.retry_budget),
            ..ragshift_copy::RetryPolicy::default()
        },
        ..CopyOptions::configured(&loaded)
    };
    if !args.bots.is_empty() && !args.resume {
        let client = ragshift_store::connect(&ep.source, "ragshift copy (bots)").await?;
        let unknown = checks::bots_without_rows(&client, &ep.source_layout, &args.bots).await?;
        checks::refuse_unknown_bots(
            &unknown,
            &format!(
                "{} on {}",
                ep.source_layout.display_name(),
                ep.source.label()
            ),
        )?;
    }
    let json = global.json;
    let began = std::time::Instant::now();
    // Also known without the journal (say the target went away): the plan was announced.
    let planned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = planned.clone();
    let events = Arc::new(move |e: Event| {
        if matches!(e, Event::Planned { .. }) {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        show_event(json, &e)
    });
    let report: CopyReport = match ragshift_copy::copy(&ep, &opts, events).await {
        Ok(r) => r,
        Err(e) if e.work_started() => return Err(Failure::work(e)),
        Err(e) => {
            let e = anyhow::Error::from(e);
            let planned = planned.load(std::sync::atomic::Ordering::SeqCst);
            let stop = ragshift_copy::record_stop(
                &ep.target,
                &opts.journal,
                began.elapsed(),
                planned,
                &format!("{e:#}"),
            )
            .await;
            return Err(match stop.advice() {
                Some(advice) => Failure::work(e.context(advice)),
                None => e.into(),
            });
        }
    };
    if json {
        let mut v = serde_json::to_value(&report).map_err(Failure::work)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), "summary".into());
            o.insert("succeeded".into(), report.succeeded().into());
        }
        output::line(serde_json::to_string(&v).map_err(Failure::work)?);
    } else {
        show_report(&report);
    }
    Ok(if report.succeeded() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}

fn show_event(json: bool, e: &Event) {
    if json {
        if let Ok(s) = serde_json::to_string(e) {
            output::line(s);
        }
        return;
    }
    match e {
        Event::Planned {
            run_id,
            resumed,
            partitions,
            already_done,
            rows,
            snapshot,
        } => tracing::info!(
            "{} run {run_id}: {rows} rows in {partitions} partitions ({already_done} done before), source snapshot {snapshot}",
            if *resumed { "resuming" } else { "starting" }
        ),
        Event::Progress {
            rows,
            mb,
            mb_per_s,
            partitions_done,
            partitions_total,
            eta_seconds,
        } => tracing::info!(
            "{partitions_done}/{partitions_total} partitions, {rows} rows, {mb:.1} MB, {mb_per_s:.1} MB/s{}",
            eta_seconds
                .map(|s| format!(", ETA {}", human_secs(s)))
                .unwrap_or_default()
        ),
        Event::Partition {
            partition,
            what,
            status,
            error: Some(err),
            ..
        } => tracing::error!("partition {partition} ({what}) {status}: {err}"),
        Event::Partition { .. } => {}
        Event::Index {
            name,
            seconds,
            error,
        } => match error {
            None => tracing::info!("built {name} in {seconds:.1}s"),
            Some(err) => tracing::error!("index {name} failed: {err}"),
        },
        Event::Verified { .. } => {}
        Event::IndexMemory(m) => index_events(&IndexEvent::IndexMemory(m.clone())),
        Event::IndexProgress(p) => index_events(&IndexEvent::IndexProgress(p.clone())),
    }
}

/// Index build events on a terminal or in the log (the engine already logged any memory
/// warning).
fn index_events(e: &IndexEvent) {
    static SHOW: std::sync::OnceLock<ragshift_store::index_build::IndexObserver> =
        std::sync::OnceLock::new();
    SHOW.get_or_init(|| crate::progress::index_observer(false))(e)
}

fn human_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn show_report(r: &CopyReport) {
    if r.dry_run {
        output::line(format!(
            "dry run: would copy {} rows ({}) of {} on {} into {} on {} ({}), in {} partitions{}",
            r.planned_rows,
            crate::output::human_bytes(r.planned_bytes.max(0) as u64),
            r.source_table,
            r.source,
            r.target_table,
            r.target,
            if r.created_table {
                "a new table"
            } else {
                "the existing table"
            },
            r.partitions,
            if r.resumed {
                format!(", {} of them done already", r.partitions_skipped)
            } else {
                String::new()
            }
        ));
        for p in &r.parents {
            output::line(format!(
                "  first: {} whole (moved with the chunk table: it refers to it, or --extra-table names it)",
                p.table
            ));
        }
        if let Some(b) = r.partition_bytes {
            output::line(format!(
                "  partitions of about {} each (stored size, TOAST included)",
                crate::output::human_bytes(b)
            ));
        }
        for p in r.plan.iter().flatten() {
            output::line(format!(
                "  {}  {:>9} rows  {:>9}  {}",
                p.id,
                p.rows,
                crate::output::human_bytes(p.bytes.max(0) as u64),
                p.describe()
            ));
        }
        for s in r.index_plan.indexes.iter().chain(&r.index_plan.constraints) {
            output::line(format!("  then: {}", s.sql));
            if let Some(a) = &s.attach {
                output::line(format!("        {a}"));
            }
        }
        for s in &r.index_plan.skipped {
            output::line(format!("  not built: {s}"));
        }
        return;
    }
    output::line(format!(
        "run {}: copied {} rows ({:.1} MB) in {} partitions in {:.1}s ({:.1} MB/s){}; {} → {} on {}",
        r.run_id,
        r.rows,
        r.bytes as f64 / 1e6,
        r.partitions_copied,
        r.data_seconds,
        r.bytes as f64 / 1e6 / r.data_seconds.max(1e-3),
        if r.partitions_skipped > 0 {
            format!(", {} partitions were done before", r.partitions_skipped)
        } else {
            String::new()
        },
        r.source_table,
        r.target_table,
        r.target
    ));
    for p in &r.parents {
        output::line(format!(
            "referenced table {}: {} ({} rows)",
            p.table, p.action, p.rows
        ));
    }
    for s in &r.sequences {
        output::line(format!("sequence {s}"));
    }
    for f in &r.failures {
        output::line(format!(
            "FAILED partition {} ({}): {}",
            f.partition, f.what, f.error
        ));
    }
    if let Some(why) = &r.stopped {
        output::line(format!("STOPPED: {why}"));
    }
    if !r.failures.is_empty() || r.stopped.is_some() {
        output::line(
            "indexes and verification were skipped; fix the cause and run the same command with --resume",
        );
    }
    let built = r.indexes.iter().filter(|i| i.error.is_none()).count();
    if !r.indexes.is_empty() {
        output::line(format!(
            "built {built} of {} indexes/constraints in {:.1}s",
            r.indexes.len(),
            r.index_seconds
        ));
    }
    for i in r.indexes.iter().filter(|i| i.error.is_some()) {
        output::line(format!(
            "FAILED {}: {}",
            i.name,
            i.error.as_deref().unwrap_or_default()
        ));
    }
    if let Some(v) = &r.verify {
        if v.passed() {
            output::line(format!(
                "verified: {} bots, {} rows, counts and checksums of every column match ({:.1}s)",
                v.bots, v.target_rows, v.seconds
            ));
        } else {
            output::line(format!(
                "VERIFICATION FAILED: {} of {} bots differ (source {} rows, target {} rows)",
                v.mismatches.len(),
                v.bots,
                v.source_rows,
                v.target_rows
            ));
            for m in &v.mismatches {
                output::line(format!("  {}", m.describe()));
            }
            output::line("re-copy the listed bots with `ragshift copy --replace --bot ID ...`");
        }
    }
    output::line(format!("done in {:.1}s", r.seconds));
}
