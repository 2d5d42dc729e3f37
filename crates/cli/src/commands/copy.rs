//! `ragshift copy`: the source table (a restored snapshot, or the old cluster) to the target
//! with parallel binary COPY from one consistent snapshot, the source's indexes rebuilt after
//! the data, both sides verified; `--resume` continues a run that was interrupted.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ragshift_config::Layers;
use ragshift_copy::{CopyOptions, Endpoints, Event};
use ragshift_print as print;
use ragshift_run::{checks, sides};

use crate::args::{given, GlobalArgs, Overrides, SidesArgs, VectorIndexArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `copy`.
#[derive(Debug, Args)]
#[command(
    mut_arg("target_index", |a| a.help("Build this vector index (hnsw or ivfflat) instead of the source's [config: target.index]")),
    mut_arg("target_index_lists", |a| a.help("ivfflat lists for --target-index ivfflat [default: from the row count]"))
)]
pub struct CopyArgs {
    /// The databases, the run journal's schema and AWS (for secret ARNs).
    #[command(flatten)]
    pub sides: SidesArgs,
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
    /// The vector index and the builds' memory and parallel workers.
    #[command(flatten)]
    pub vector: VectorIndexArgs,
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
        let l = self.vector.apply(self.sides.apply(l));
        given!(l, self, maintenance_workers => "index.parallel_workers")
    }
}

pub async fn run(global: &GlobalArgs, args: &CopyArgs) -> Result<Outcome, Failure> {
    CopyOptions::check_sizes(args.jobs, args.partition_rows, args.partition_bytes)
        .map_err(anyhow::Error::msg)?;
    let loaded = settings::load(global, &[args])?;
    let config = &loaded.config;
    let (source, target) = sides::specs(config).await?;
    let ep = Endpoints::from_config(config, source, target);
    let opts = CopyOptions {
        jobs: args.jobs,
        partition_bytes: args.partition_bytes,
        partition_rows: args.partition_rows,
        bots: (!args.bots.is_empty()).then(|| args.bots.clone()),
        resume: args.resume,
        replace: args.replace,
        build_indexes: !args.no_index,
        // Index events go out with the copy's own (see `print::copy::event`).
        index_build: args.vector.index.options(&config.index, None)?,
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
    if !args.resume {
        let why = "ragshift copy (bots)";
        checks::require_bots(&ep.source, &ep.source_layout, &args.bots, why).await?;
    }
    let json = global.json;
    let events = Arc::new(move |e: Event| print::copy::event(json, &e));
    let report = ragshift_copy::copy_recording_stop(&ep, &opts, events)
        .await
        .map_err(Failure::phased)?;
    if json {
        output::line(print::copy::summary_json(&report).map_err(Failure::work)?);
    } else {
        output::text(print::copy::report(&report));
    }
    Ok(Outcome::from_passed(report.succeeded()))
}
