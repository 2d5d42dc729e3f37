//! `ragshift rebuild`: the platform's re-embedding migration, done right. Scans the registry,
//! shows the plan, then runs one job per bot (at most N at once, in-process or as ECS tasks),
//! journals every bot in the target, sets `SyncStatus` as the platform's worker does, resumes
//! after a crash, builds the vector index at the end and reports honestly (exit 1 if any bot
//! failed).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use ragshift_config::{Config, Layers, VectorIndexKind};
use ragshift_embed::Embedder;
use ragshift_ingest::Ingestor;
use ragshift_model::Bot;
use ragshift_registry::{BotSelector, Registry, Selection};
use ragshift_run::executor::{EcsExecutor, EcsOptions, Executor, LocalExecutor};
use ragshift_run::{Rebuild, RebuildOptions, RunReport, Worker, WorkerOptions};
use ragshift_store::index::VectorIndex;
use ragshift_store::schema;
use serde_json::json;

use crate::args::{
    set_str, AwsArgs, DocumentsArgs, EmbeddingArgs, GlobalArgs, IndexArgs, JournalArgs, Overrides,
    RegistryArgs, TargetArgs,
};
use crate::db::{self, Side};
use crate::failure::{Failure, Outcome};
use crate::{output, progress, settings};
use ragshift_run::components;

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
    /// Registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Documents.
    #[command(flatten)]
    pub documents: DocumentsArgs,
    /// Embedding.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// AWS.
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl Overrides for RebuildArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.registry.apply(l);
        let l = self.documents.apply(l);
        let l = self.embedding.apply(l);
        let l = self.target.apply(l);
        let l = self.journal.apply(l);
        let l = self.aws.apply(l);
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

/// The bots of a `--bot`/`--user` selection, split into those with knowledge and those without.
pub struct Selected {
    /// Bots to process.
    pub bots: Vec<Bot>,
    /// Bots without knowledge (nothing to embed).
    pub skipped: Vec<Bot>,
    /// What was asked for, as recorded with the run.
    pub selection: serde_json::Value,
}

/// Reads the selected bots from the registry; selectors that match nothing are an error.
pub async fn select(
    registry: &dyn Registry,
    bots: &[String],
    users: &[String],
) -> anyhow::Result<Selected> {
    let selection = Selection {
        users: users.to_vec(),
        bots: bots
            .iter()
            .map(|b| b.parse::<BotSelector>().map_err(|e| anyhow!(e)))
            .collect::<anyhow::Result<_>>()?,
    };
    let scan = registry
        .bots(&selection)
        .await
        .with_context(|| format!("reading bots from {}", registry.describe()))?;
    if !scan.not_found.is_empty() {
        bail!(
            "not found in {}: {}",
            registry.describe(),
            scan.not_found.join(", ")
        );
    }
    for bad in &scan.invalid {
        tracing::warn!("invalid registry item {} skipped: {}", bad.key, bad.error);
    }
    let (bots, skipped): (Vec<Bot>, Vec<Bot>) =
        scan.bots.into_iter().partition(|b| !b.knowledge.is_empty());
    let mut u: Vec<String> = users.to_vec();
    u.sort();
    let mut b: Vec<String> = selection.bots.iter().map(|s| s.to_string()).collect();
    b.sort();
    Ok(Selected {
        bots,
        skipped,
        selection: json!({ "users": u, "bots": b }),
    })
}

pub async fn run(global: &GlobalArgs, args: &RebuildArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[args])?;
    let config = &loaded.config;
    if config.executor.kind == ragshift_config::ExecutorKind::Ecs && !args.dry_run {
        // Incomplete ECS settings are refused before anything is read or asked.
        EcsOptions::from_config(&config.executor)?;
    }
    let registry: Arc<dyn Registry> = Arc::from(components::registry(config).await?);
    let documents: Arc<dyn ragshift_documents::DocumentStore> =
        Arc::from(components::documents(config).await?);
    documents.check().await?;
    let selected = select(&*registry, &args.bots, &args.users).await?;
    let registry_for_settings = registry.clone();

    let spec = db::connect_spec(Side::Target, &config.target, &config.aws).await?;
    let layout = db::layout(&config.target);
    let rows = ragshift_store::BotRows::from_config(&config.target);
    let mut client = ragshift_store::connect(&spec, "ragshift rebuild").await?;

    // The embedder decides the table's dimension; a mismatch stops everything before any work.
    let mut throttled: Option<Arc<ragshift_embed::Throttled>> = None;
    let embedder: Arc<dyn Embedder> = if args.dry_run {
        Arc::new(ragshift_run::components::DryRunEmbedder::new(config)?)
    } else {
        let mut e = components::bare_embedder(config).await?;
        if config.embedding.cache && !args.no_cache {
            let client = ragshift_store::connect(&spec, "ragshift embedding cache").await?;
            let cache = components::open_cache(config, client).await?;
            if args.seed_cache_from_source {
                ragshift_run::components::seed_cache(config, &*cache, &e.cache_model()).await?;
            }
            e = e.with_cache(cache);
        }
        let e = Arc::new(e);
        throttled = Some(e.clone());
        e
    };
    let dimension = embedder.dimension();
    if args.dry_run {
        if let Some(have) = schema::table_dimension(&client, &layout).await? {
            ragshift_embed::check_dimension(dimension, have, &layout.display_name())?;
        }
    } else {
        rows.init(&mut client, dimension).await?;
    }

    // The plan, exactly as `ragshift plan` shows it (on stderr's side of things: with --json,
    // stdout carries only the run's events).
    if !global.json {
        let plan_args = crate::commands::plan::PlanArgs {
            bots: args.bots.clone(),
            users: args.users.clone(),
            registry: args.registry.clone(),
            documents: args.documents.clone(),
            embedding: args.embedding.clone(),
            aws: args.aws.clone(),
        };
        crate::commands::plan::run(global, &plan_args).await?;
    }
    show_plan(global, config, &selected, &spec, &rows, dimension, args);
    if !args.yes && !args.dry_run && !confirm()? {
        output::line("nothing done");
        return Ok(Outcome::Success);
    }

    let worker = Worker::new(
        Ingestor::new(components::ingest_options(&config.ingest)?)
            .map_err(|e| anyhow!("setting up fetching: {e}"))?,
        embedder.clone(),
        documents,
        registry.clone(),
        spec.clone(),
        rows.clone(),
        WorkerOptions {
            allow_partial: config.ingest.allow_partial,
            status_updates: !args.no_status_updates,
            dry_run: args.dry_run,
            check_run_lock: true,
            ..WorkerOptions::default()
        },
    );
    let executor: Arc<dyn Executor> = match config.executor.kind {
        // A dry run only loads and splits, which needs no task: it runs here.
        ragshift_config::ExecutorKind::Ecs if !args.dry_run => {
            ecs_executor(config, args, &spec, &rows, registry).await?
        }
        _ => Arc::new(LocalExecutor::new(Arc::new(worker))),
    };
    let index = (!args.no_index).then_some(match config.target.index {
        VectorIndexKind::Hnsw => VectorIndex::Hnsw {
            m: config.target.hnsw_m,
            ef_construction: config.target.hnsw_ef_construction,
        },
        VectorIndexKind::Ivfflat => VectorIndex::Ivfflat {
            lists: config.target.index_lists,
        },
    });
    let options = RebuildOptions {
        resume: args.resume.clone(),
        fresh: args.fresh,
        resume_window: config.run.resume_window,
        settings: run_settings(config, &*registry_for_settings, &*embedder),
        concurrency: config.executor.concurrency.max(1),
        dry_run: args.dry_run,
        selection: selected.selection.clone(),
        index,
        index_build: args
            .index
            .options(&config.index, Some(progress::index_observer(global.json)))?,
        journal: ragshift_store::journal::Journal::from_config(&config.run),
        // In-process workers spend the run's budget in the journal (ECS tasks join it
        // themselves, as `embed-bot --run-id`).
        embedder: match config.executor.kind {
            ragshift_config::ExecutorKind::Ecs => None,
            ragshift_config::ExecutorKind::Local => throttled.clone(),
        },
    };
    let observer = progress::observer(global.json, selected.bots.len());
    let rebuild = Rebuild::new(spec.clone(), layout, executor.clone());
    let run = rebuild.run_until(
        selected.bots,
        selected.skipped.len(),
        &options,
        &*observer,
        crate::signals::shutdown(),
    );
    let report = run.await.map_err(Failure::phased)?;
    let usage = throttled.map(|t| t.report());
    print_report(global, config, &report, &*embedder, usage.as_ref()).map_err(Failure::work)?;
    Ok(if report.failed > 0 {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}

/// What a run's result depends on besides its selection: the registry and documents it reads
/// and the model it embeds with (each bot's chunking is in its unit's fingerprint). A run is
/// only resumed by one with the same settings.
fn run_settings(
    config: &Config,
    registry: &dyn Registry,
    embedder: &dyn Embedder,
) -> serde_json::Value {
    let absolute = |p: &std::path::Path| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let registry = match config.registry.kind {
        ragshift_config::RegistryKind::File => {
            format!("file {}", absolute(&config.registry.path))
        }
        _ => registry.describe(),
    };
    let documents = match config.documents.kind {
        ragshift_config::DocumentsKind::S3 => {
            format!("s3://{}", config.documents.bucket.as_deref().unwrap_or(""))
        }
        ragshift_config::DocumentsKind::Dir => {
            format!("directory {}", absolute(&config.documents.path))
        }
    };
    json!({
        "registry": registry,
        "documents": documents,
        "embedding": format!("{} {} vector({})", embedder.provider(), embedder.model_id(), embedder.dimension()),
    })
}

fn show_plan(
    global: &GlobalArgs,
    config: &Config,
    selected: &Selected,
    spec: &ragshift_store::ConnectSpec,
    rows: &ragshift_store::BotRows,
    dimension: usize,
    args: &RebuildArgs,
) {
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

fn print_report(
    global: &GlobalArgs,
    config: &Config,
    report: &RunReport,
    embedder: &dyn Embedder,
    usage: Option<&ragshift_embed::EmbedReport>,
) -> anyhow::Result<()> {
    let chars: u64 = report.bots.iter().map(|b| b.chars as u64).sum();
    let tokens = ragshift_embed::estimate_tokens(chars);
    let model = embedder.model_id().to_owned();
    let price = components::prices(config, &model).price(embedder.provider(), &model);
    let est_cost = price.map(|p| p * tokens as f64 / 1000.0);
    if global.json {
        let line = json!({
            "event": "report",
            "report": report,
            "embedding": { "provider": embedder.provider(), "model": model, "chars": chars,
                           "est_tokens": tokens, "est_cost_usd": est_cost, "usage": usage },
        });
        output::line(serde_json::to_string(&line)?);
        return Ok(());
    }
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
    if let Some(u) = usage.and_then(|u| u.usage.first()) {
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

/// The ECS executor from `[executor]`: the task's worker gets the flags this run was given, and
/// bots whose task died are set FAILED in the registry unless `--no-status-updates`.
async fn ecs_executor(
    config: &Config,
    args: &RebuildArgs,
    spec: &ragshift_store::ConnectSpec,
    rows: &ragshift_store::BotRows,
    registry: Arc<dyn Registry>,
) -> anyhow::Result<Arc<dyn Executor>> {
    let mut options = EcsOptions::from_config(&config.executor)?;
    options.retry = crate::settings::retry_policy(&config.retry);
    for (on, flag) in [
        (args.no_status_updates, "--no-status-updates"),
        (config.ingest.allow_partial, "--allow-partial"),
        (args.no_cache, "--no-cache"),
    ] {
        if on {
            options.worker_args.push(flag.to_owned());
        }
    }
    options.worker_args.extend(layout_args(&config.target));
    let sdk = ragshift_aws::sdk_config(&config.aws).await;
    let executor = EcsExecutor::new(&sdk, options, spec.clone(), rows.clone());
    Ok(Arc::new(if args.no_status_updates {
        executor
    } else {
        executor.with_status_updates(registry)
    }))
}

/// The flags that make a task's `embed-bot` write the layout this run writes (its table and
/// columns), whatever the task definition's environment says; none for Bedrock Chat's, whose
/// tasks are configured as before.
fn layout_args(target: &ragshift_config::DatabaseConfig) -> Vec<String> {
    if target.layout == ragshift_config::LayoutPreset::BedrockChat {
        return Vec::new();
    }
    let preset = serde_json::to_value(target.layout)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    [
        ("--layout", preset.as_str()),
        ("--target-schema", target.schema.as_str()),
        ("--target-table", target.table.as_str()),
        ("--target-id-column", target.id_column.as_str()),
        ("--target-bot-column", target.bot_column.as_str()),
        ("--target-content-column", target.content_column.as_str()),
        ("--target-source-column", target.source_column.as_str()),
        (
            "--target-embedding-column",
            target.embedding_column.as_str(),
        ),
    ]
    .iter()
    .map(|(flag, value)| format!("{flag}={value}"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_tasks_are_told_the_layout_of_the_run() {
        let bedrock = ragshift_config::DatabaseConfig::default();
        assert!(layout_args(&bedrock).is_empty());
        let llama = ragshift_config::DatabaseConfig {
            layout: ragshift_config::LayoutPreset::Llamaindex,
            table: "kb".to_owned(),
            bot_column: String::new(),
            ..bedrock
        };
        let args = layout_args(&llama);
        assert_eq!(args[0], "--layout=llamaindex");
        assert!(args.contains(&"--target-table=kb".to_owned()));
        assert!(args.contains(&"--target-bot-column=".to_owned()));
    }

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
