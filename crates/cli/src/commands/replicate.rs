//! `ragshift replicate start|status|cutover|abort`: near-zero-downtime migration with
//! PostgreSQL's logical replication, from a live source to the target.

use std::time::Duration;

use clap::{Args, Subcommand};
use ragshift_config::{Config, Layers};
use ragshift_print as print;
use ragshift_replicate::{CutoverOptions, Sides, StartOptions};
use ragshift_store::index::VectorIndex;

use crate::args::{given, overrides_of, GlobalArgs, IndexArgs, Overrides, SidesArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// `replicate` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReplicateCommand {
    /// Check prerequisites, prepare the target table, create the publication and subscription
    #[command(after_help = "\
Examples:
  ragshift replicate start --source postgres://app:pw@old.example/rag --target postgres://app:pw@new.example/rag
  ragshift replicate start --source arn:aws:secretsmanager:...:secret:old --target arn:...:secret:new --dry-run

The source needs wal_level = logical (Aurora/RDS: rds.logical_replication = 1); every missing
prerequisite is listed with its fix and nothing is created. The subscription connects FROM the
target server: when ragshift reaches the source another way (a tunnel), give the address the
target sees with --source-from-target; the route is tried from the target before anything is
created.")]
    Start(StartArgs),
    /// Initial sync, WAL bytes behind, apply errors and row counts
    #[command(after_help = "\
Examples:
  ragshift replicate status
  ragshift replicate status --watch --interval 10
  ragshift replicate status --watch --until-caught-up --json")]
    Status(StatusArgs),
    /// Fence writes on the source, wait until the target has them all, verify, detach, build the vector index
    #[command(after_help = "\
Examples:
  ragshift replicate cutover
  ragshift replicate cutover --timeout 2h --queries 10 --target-index hnsw

Order: catch up; fence writes to the table on the source (a trigger that makes every write fail
with SQLSTATE 25006 \"ragshift cutover: writes to <table> are fenced ...\", installed under a brief
SHARE ROW EXCLUSIVE lock that lets the writes in flight finish); wait until the target has applied
everything up to the source position after the fence; verify; drop the subscription, its slot and
the publication; build the vector index. The fence stays on the old source after a successful
cutover (lift it with `ragshift replicate abort`). If anything fails before the detach, the fence
is lifted, replication keeps running (exit 1) and the message says what to run next.")]
    Cutover(CutoverArgs),
    /// Remove everything ragshift created for replication on both sides
    #[command(after_help = "\
Examples:
  ragshift replicate abort

Drops the write fence, the subscription, its slots and the publication, and the target table,
schema and extension only if this replication recorded creating them, by the names in its
journal (not the current configuration). Nothing else is touched. After a cutover, lifts the
write fence it left on the old source.")]
    Abort(AbortArgs),
}

/// The two databases, shared by every `replicate` subcommand.
#[derive(Debug, Args)]
#[command(
    mut_arg("source", |a| a.help("Source: a postgres:// URL or a Secrets Manager secret ARN")),
    mut_arg("target", |a| a.help("Target: a postgres:// URL or a Secrets Manager secret ARN"))
)]
pub struct ReplicateSides {
    /// The databases, the run journal's schema and AWS (for secret ARNs).
    #[command(flatten)]
    pub sides: SidesArgs,
}

/// Flags of `replicate start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The databases.
    #[command(flatten)]
    pub sides: ReplicateSides,
    /// Run the checks and show the plan; create nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The source's address as the TARGET server reaches it, when ragshift reaches it another
    /// way (a tunnel, another VPC): the subscription connects there with --source's
    /// credentials, database and TLS settings
    #[arg(long, value_name = "HOST[:PORT]")]
    pub source_from_target: Option<String>,
}

/// Flags of `replicate status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The databases.
    #[command(flatten)]
    pub sides: ReplicateSides,
    /// Repeat until interrupted (Ctrl-C)
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two reports with --watch
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub interval: u64,
    /// With --watch: stop (exit 0) once caught up
    #[arg(long, requires = "watch")]
    pub until_caught_up: bool,
}

/// Flags of `replicate cutover`.
#[derive(Debug, Args)]
pub struct CutoverArgs {
    /// The databases.
    #[command(flatten)]
    pub sides: ReplicateSides,
    /// How long to wait for the initial sync and catch-up (e.g. 90s, 30m, 2h)
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub timeout: String,
    /// Sample queries per bot for the verification's retrieval agreement
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub queries: usize,
    /// Vector index to build: hnsw or ivfflat [config: target.index]
    #[arg(long, value_name = "KIND")]
    pub target_index: Option<String>,
    /// Memory and parallel workers for the index build.
    #[command(flatten)]
    pub index: IndexArgs,
    /// How long fencing may wait for the transactions writing to the source table (e.g. 10s)
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub fence_lock_timeout: String,
    /// Don't fence writes on the source: writes reaching it after the last catch-up are LOST.
    /// Only with --accept-losing-writes
    #[arg(long)]
    pub no_fence: bool,
    /// Acknowledges that with --no-fence, writes reaching the source after the catch-up are not copied
    #[arg(long)]
    pub accept_losing_writes: bool,
}

/// Flags of `replicate abort`.
#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The databases.
    #[command(flatten)]
    pub sides: ReplicateSides,
}

overrides_of!(ReplicateSides: sides);

impl Overrides for CutoverArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.index.apply(self.sides.apply(l));
        given!(l, self, target_index => "target.index")
    }
}

/// Both sides as the flags (`args`) and the configuration describe them.
async fn sides(global: &GlobalArgs, args: &dyn Overrides) -> Result<(Sides, Config), Failure> {
    let loaded = settings::load(global, &[args])?;
    Ok((
        ragshift_run::sides::replication(&loaded).await?,
        loaded.config,
    ))
}

/// Runs one `replicate` subcommand.
pub async fn run(global: &GlobalArgs, cmd: &ReplicateCommand) -> Result<Outcome, Failure> {
    match cmd {
        ReplicateCommand::Start(a) => start(global, a).await,
        ReplicateCommand::Status(a) => status(global, a).await,
        ReplicateCommand::Cutover(a) => cutover(global, a).await,
        ReplicateCommand::Abort(a) => abort(global, a).await,
    }
}

async fn start(global: &GlobalArgs, args: &StartArgs) -> Result<Outcome, Failure> {
    let (mut sides, _) = sides(global, &args.sides).await?;
    if let Some(address) = &args.source_from_target {
        sides.reach_source_at(address).map_err(anyhow::Error::msg)?;
    }
    let report = ragshift_replicate::start(
        &sides,
        &StartOptions {
            dry_run: args.dry_run,
        },
    )
    .await
    .map_err(Failure::phased)?;
    output::report(global, &report, print::replicate::start)?;
    Ok(Outcome::Success)
}

async fn status(global: &GlobalArgs, args: &StatusArgs) -> Result<Outcome, Failure> {
    let (sides, _) = sides(global, &args.sides).await?;
    loop {
        let st = ragshift_replicate::status(&sides)
            .await
            .map_err(Failure::phased)?;
        match (global.json, args.watch) {
            (true, true) => output::line(serde_json::to_string(&st)?),
            (true, false) => output::json(&st)?,
            (false, _) => output::text(print::replicate::status(&st)),
        }
        if !args.watch || (args.until_caught_up && st.caught_up) {
            return Ok(Outcome::Success);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(Outcome::Success),
        }
    }
}

async fn cutover(global: &GlobalArgs, args: &CutoverArgs) -> Result<Outcome, Failure> {
    let fence = CutoverOptions::fence_choice(args.no_fence, args.accept_losing_writes)
        .map_err(anyhow::Error::msg)?;
    let timeout = ragshift_replicate::parse_duration(&args.timeout).map_err(anyhow::Error::msg)?;
    let fence_lock_timeout =
        ragshift_replicate::parse_duration(&args.fence_lock_timeout).map_err(anyhow::Error::msg)?;
    let (sides, config) = sides(global, args).await?;
    let index = VectorIndex::from_config(&config.target);
    let options = CutoverOptions {
        timeout,
        poll: Duration::from_secs(1),
        verify: ragshift_verify::Options {
            queries: args.queries,
            ..ragshift_verify::Options::default()
        },
        index,
        index_build: args.index.options(
            &config.index,
            Some(print::progress::index_observer(global.json)),
        )?,
        fence,
        fence_lock_timeout,
    };
    let report = ragshift_replicate::cutover(&sides, &options, &mut print::replicate::steps())
        .await
        .map_err(Failure::phased)?;
    output::report(global, &report, print::replicate::cutover)?;
    Ok(Outcome::from_passed(report.succeeded()))
}

async fn abort(global: &GlobalArgs, args: &AbortArgs) -> Result<Outcome, Failure> {
    let (sides, _) = sides(global, &args.sides).await?;
    let report = ragshift_replicate::abort(&sides)
        .await
        .map_err(Failure::phased)?;
    output::report(global, &report, |r| {
        print::replicate::abort(r, sides.target.label())
    })?;
    Ok(Outcome::from_passed(report.left.is_empty()))
}
