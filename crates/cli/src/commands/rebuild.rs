//! `ragshift rebuild`: the platform's re-embedding migration, done right. Scans the registry,
//! shows the plan, then runs one job per bot (at most N at once, in-process or as ECS tasks),
//! journals every bot in the target, sets `SyncStatus` as the platform's worker does, resumes
//! after a crash, builds the vector index at the end and reports honestly (exit 1 if any bot
//! failed). The run is [`ragshift_run::launch`]; this asks, shows progress and prints.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use clap::{Args, ValueEnum};
use figment::value::Value;
use ragshift_config::Layers;
use ragshift_print as print;
use ragshift_run::launch::{PreparedRebuild, RebuildRequest};
use ragshift_run::plan::Plan;

use crate::args::{given, FlagValue, GlobalArgs, IndexArgs, Overrides, WorkerArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Where the jobs run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExecutorChoice {
    /// In-process workers.
    Local,
    /// One ECS task per bot.
    Ecs,
}

/// Flags of `rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Only this bot (BOT_ID or USER_ID/BOT_ID); repeatable
    #[arg(long = "bot", value_name = "ID")]
    pub bots: Vec<String>,
    /// Only bots of this user; repeatable
    #[arg(long = "user", value_name = "ID")]
    pub users: Vec<String>,
    /// Don't ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Load and split everything and report chunk counts and cost; embed and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Resume this run: bots that succeeded in it (with the knowledge they have now) are
    /// skipped. Without it, an unfinished run with the same selection and settings younger
    /// than --resume-window is resumed
    #[arg(long, value_name = "RUN_ID", conflicts_with = "fresh")]
    pub resume: Option<String>,
    /// Start a new run even when an unfinished one could be resumed
    #[arg(long)]
    pub fresh: bool,
    /// How old an unfinished run may be and still be resumed without --resume (e.g. 90m,
    /// 24h, 7d; 0 never resumes on its own) [config: run.resume_window, default 24h]
    #[arg(long, value_name = "DURATION", value_parser = ragshift_config::parse_duration)]
    pub resume_window: Option<std::time::Duration>,
    /// Leave SyncStatus in the registry untouched
    #[arg(long)]
    pub no_status_updates: bool,
    /// Where jobs run [config: executor.kind]
    #[arg(long, value_enum, value_name = "KIND")]
    pub executor: Option<ExecutorChoice>,
    /// Jobs at once [config: executor.concurrency]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Let a bot succeed (with a warning) when only some of its sources failed
    #[arg(long)]
    pub allow_partial: bool,
    /// Don't reuse or record vectors in the target's embedding cache
    #[arg(long)]
    pub no_cache: bool,
    /// Don't build the vector index after the last bot
    #[arg(long)]
    pub no_index: bool,
    /// Memory and parallel workers for the index build.
    #[command(flatten)]
    pub index: IndexArgs,
    /// First fill the embedding cache from the [source] store's rows (an old cluster, a
    /// restored snapshot), so unchanged chunks cost nothing; their vectors must come from the
    /// configured model
    #[arg(long, conflicts_with = "no_cache")]
    pub seed_cache_from_source: bool,
    /// Source database for --seed-cache-from-source.
    #[command(flatten)]
    pub source: crate::args::SourceArgs,
    /// Registry, documents, embedding, target, journal and AWS.
    #[command(flatten)]
    pub worker: WorkerArgs,
}

impl Overrides for RebuildArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.index.apply(self.source.apply(self.worker.apply(l)));
        given!(l, self,
            executor => "executor.kind",
            resume_window => "run.resume_window",
            concurrency => "executor.concurrency",
            allow_partial => "ingest.allow_partial",
        )
    }
}

/// `--executor` as the configuration names it.
impl FlagValue for Option<ExecutorChoice> {
    fn value(&self) -> Option<Value> {
        let name = self.and_then(|e| e.to_possible_value())?;
        Some(name.get_name().to_owned().into())
    }
}

pub async fn run(global: &GlobalArgs, args: &RebuildArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[args])?;
    let config = &loaded.config;
    let request = RebuildRequest {
        bots: args.bots.clone(),
        users: args.users.clone(),
        dry_run: args.dry_run,
        use_cache: !args.no_cache,
        seed_cache_from_source: args.seed_cache_from_source,
        status_updates: !args.no_status_updates,
        build_index: !args.no_index,
        resume: args.resume.clone(),
        fresh: args.fresh,
    };
    let prepared = PreparedRebuild::prepare(config, request).await?;

    // The plan, exactly as `ragshift plan` shows it (on stderr's side of things: with --json,
    // stdout carries only the run's events).
    if !global.json {
        let plan = Plan::compute(config, &prepared.selected.query).await?;
        output::text(print::plan::table(&plan));
    }
    print::rebuild::announce(global.json, config, &prepared, args.dry_run);
    if !args.yes && !args.dry_run && !confirm()? {
        output::line("nothing done");
        return Ok(Outcome::Success);
    }

    let executor = prepared.executor().await?;
    let index_build = args.index.options(
        &config.index,
        Some(print::progress::index_observer(global.json)),
    )?;
    let observer = print::progress::observer(global.json, prepared.selected.bots.len());
    let outcome = prepared
        .run(
            executor,
            index_build,
            &*observer,
            crate::signals::shutdown(),
        )
        .await
        .map_err(Failure::phased)?;
    if global.json {
        output::line(print::rebuild::report_json(&outcome).map_err(Failure::work)?);
    } else {
        output::text(print::rebuild::report(&outcome));
    }
    Ok(Outcome::from_passed(outcome.report.failed == 0))
}

/// Asks on the terminal; refuses to assume consent without one.
fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not on a terminal: pass --yes to run without confirmation");
    }
    eprint!("Proceed? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}
