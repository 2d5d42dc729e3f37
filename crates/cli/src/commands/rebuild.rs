//! `ragshift rebuild`: the platform's re-embedding migration, done right. Scans the registry,
//! shows the plan, then runs one job per bot (at most N at once, in-process or as ECS tasks),
//! journals every bot in the target, sets `SyncStatus` as the platform's worker does, resumes
//! after a crash, builds the vector index at the end and reports honestly (exit 1 if any bot
//! failed). The run is [`ragshift_run::launch`]; this asks, shows progress and prints.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use clap::{Args, ValueEnum};
use ragshift_config::{Config, Layers};
use ragshift_run::launch::{PreparedRebuild, RebuildOutcome, RebuildRequest};
use ragshift_run::plan::Plan;
use serde_json::json;

use crate::args::{set_str, GlobalArgs, IndexArgs, Overrides, WorkerArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, progress, settings};

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
        let l = self.worker.apply(l);
        let l = self.source.apply(l);
        let l = self.index.apply(l);
        let kind = self.executor.map(|e| match e {
            ExecutorChoice::Local => "local".to_owned(),
            ExecutorChoice::Ecs => "ecs".to_owned(),
        });
        let l = set_str(l, "--executor", "executor.kind", &kind);
        let l = match self.resume_window {
            Some(w) => l.flag(
                "--resume-window",
                "run.resume_window",
                format!("{}s", w.as_secs()),
            ),
            None => l,
        };
        let l = match self.concurrency {
            Some(n) => l.flag("--concurrency", "executor.concurrency", n as u64),
            None => l,
        };
        if self.allow_partial {
            l.flag("--allow-partial", "ingest.allow_partial", true)
        } else {
            l
        }
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
        crate::commands::plan::print_table(&plan);
    }
    show_plan(global, config, &prepared, args);
    if !args.yes && !args.dry_run && !confirm()? {
        output::line("nothing done");
        return Ok(Outcome::Success);
    }

    let executor = prepared.executor().await?;
    let index_build = args
        .index
        .options(&config.index, Some(progress::index_observer(global.json)))?;
    let observer = progress::observer(global.json, prepared.selected.bots.len());
    let outcome = prepared
        .run(
            executor,
            index_build,
            &*observer,
            crate::signals::shutdown(),
        )
        .await
        .map_err(Failure::phased)?;
    print_report(global, &outcome).map_err(Failure::work)?;
    Ok(if outcome.report.failed > 0 {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}

fn show_plan(global: &GlobalArgs, config: &Config, prepared: &PreparedRebuild, args: &RebuildArgs) {
    let selected = &prepared.selected;
    let (spec, rows, dimension) = (
        &prepared.target.spec,
        &prepared.target.rows,
        prepared.dimension(),
    );
    let sources: usize = selected.bots.iter().map(|b| b.knowledge.len()).sum();
    let lines = [
        format!(
            "plan: {} bots with knowledge ({sources} sources), {} without (skipped)",
            selected.bots.len(),
            selected.skipped.len()
        ),
        format!(
            "      target {} table {} vector({dimension}); {} executor, {} at once{}",
            spec.label(),
            rows,
            match config.executor.kind {
                ragshift_config::ExecutorKind::Local => "local",
                ragshift_config::ExecutorKind::Ecs => "ECS",
            },
            config.executor.concurrency,
            if args.dry_run {
                "; DRY RUN: nothing is embedded or written"
            } else {
                ""
            }
        ),
    ];
    for l in lines {
        if global.json {
            tracing::info!("{l}");
        } else {
            eprintln!("{l}");
        }
    }
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

fn print_report(global: &GlobalArgs, outcome: &RebuildOutcome) -> anyhow::Result<()> {
    let (report, embedding) = (&outcome.report, &outcome.embedding);
    if global.json {
        let line = json!({ "event": "report", "report": report, "embedding": embedding });
        output::line(serde_json::to_string(&line)?);
        return Ok(());
    }
    let (chars, tokens, est_cost) = (
        embedding.chars,
        embedding.est_tokens,
        embedding.est_cost_usd,
    );
    let mut bots: Vec<_> = report.bots.iter().collect();
    bots.sort_by(|a, b| (&a.user_id, &a.bot_id).cmp(&(&b.user_id, &b.bot_id)));
    output::line(format!(
        "{:<26}  {:<9}  {:>6}  {:>7}  error",
        "bot", "status", "chunks", "seconds"
    ));
    for b in bots {
        output::line(format!(
            "{:<26}  {:<9}  {:>6}  {:>7.1}  {}",
            b.bot_id,
            b.status,
            b.chunks,
            b.seconds,
            b.error.as_deref().unwrap_or("")
        ));
        for s in b.sources.iter().filter(|s| s.error.is_some()) {
            output::line(format!(
                "{:<26}    source {}: {}",
                "",
                s.source,
                s.error.as_deref().unwrap_or("")
            ));
        }
    }
    let verb = if report.dry_run {
        "would embed"
    } else {
        "embedded"
    };
    if let Some(why) = &report.fresh_reason {
        output::line(format!("new run {}: {why}", report.run_id));
    }
    for bot in &report.changed {
        output::line(format!(
            "{bot} changed in the registry since it succeeded in this run: redone"
        ));
    }
    output::line(format!(
        "run {}{}: {} succeeded, {} failed, {} skipped (no knowledge){}; {verb} {chars} characters (~{tokens} tokens{}) in {:.1}s",
        report.run_id,
        match &report.resumed_from {
            Some(r) => format!(
                " (resumed: continues the run started {} ago, {})",
                ragshift_run::rebuild::human_age(r.age_seconds),
                r.started_at
            ),
            None => String::new(),
        },
        report.succeeded,
        report.failed,
        report.skipped,
        if report.already_done > 0 { format!(", {} already done earlier", report.already_done) } else { String::new() },
        est_cost.map(|c| format!(", est. ${c:.4}")).unwrap_or_default(),
        report.seconds
    ));
    if let Some(u) = embedding.usage.as_ref().and_then(|u| u.usage.first()) {
        output::line(format!(
            "embedding {} {}: {} calls, {} retries, {} throttled, {} cache hits, {} truncated",
            u.provider, u.model, u.calls, u.retries, u.throttled, u.cache_hits, u.truncated
        ));
    }
    if let Some(b) = &report.budget {
        output::line(budget_line(b));
    }
    if let Some(def) = &report.index_built {
        output::line(format!("built the vector index: {def}"));
    }
    if report.failed > 0 && !report.dry_run {
        output::line(format!(
            "fix the causes above, then run the same command again (or `--resume {}`): bots that succeeded are skipped",
            report.run_id
        ));
    }
    Ok(())
}

/// The run's embedding budget in one line: what every worker together sent against what the
/// configured limit allowed over the run.
fn budget_line(b: &ragshift_store::budget::BudgetReport) -> String {
    let limit = match (b.requests_per_window, b.tokens_per_window) {
        (Some(r), Some(t)) => format!("{r} requests and {t} tokens"),
        (Some(r), None) => format!("{r} requests"),
        (None, Some(t)) => format!("{t} tokens"),
        (None, None) => "no limit".to_owned(),
    };
    let used = match (b.requests_allowed, b.utilisation) {
        (Some(allowed), Some(u)) => format!(
            "; used {} of {allowed:.0} requests allowed over {:.1}s ({:.0}%)",
            b.calls,
            b.seconds,
            u * 100.0
        ),
        _ => String::new(),
    };
    format!(
        "embedding budget ({limit} per {}s, all workers): {} calls, {} throttled, rate lowered {} times{used}",
        b.window_secs, b.calls, b.throttles, b.rate_decreases
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_line_says_what_all_workers_used_of_the_limit() {
        let b = ragshift_store::budget::BudgetReport {
            window_secs: 60.0,
            requests_per_window: Some(100),
            calls: 150,
            throttles: 3,
            rate_decreases: 1,
            seconds: 90.0,
            requests_allowed: Some(200.0),
            utilisation: Some(0.75),
            ..Default::default()
        };
        assert_eq!(
            budget_line(&b),
            "embedding budget (100 requests per 60s, all workers): 150 calls, 3 throttled, \
             rate lowered 1 times; used 150 of 200 requests allowed over 90.0s (75%)"
        );
    }
}
