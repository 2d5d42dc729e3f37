//! `ragshift plan`: step one of a migration. Finds every bot in the registry (live table or an
//! export), sizes what each holds (documents listed, never downloaded), and estimates chunks,
//! embedding cost and time before anything is touched. It only reads and reports: invalid
//! registry items and missing files are listed, and the exit code stays 0.

mod estimate;

use ragshift_run::components;
use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use clap::Args;
use futures::stream::{self, StreamExt};
use ragshift_documents::{BotDocuments, DocumentStore};
use ragshift_model::Bot;
use ragshift_registry::{BotSelector, Selection};
use serde::Serialize;

use crate::args::{AwsArgs, DocumentsArgs, EmbeddingArgs, GlobalArgs, RegistryArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use estimate::Estimator;

/// Bots whose documents are listed at once.
const LISTING_CONCURRENCY: usize = 16;

/// Flags of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this bot: BOT_ID, or USER_ID/BOT_ID to read it directly (repeatable)
    #[arg(long = "bot", value_name = "ID")]
    pub bots: Vec<String>,
    /// Only this user's bots, or the owner of the --bot ids (repeatable)
    #[arg(long = "user", value_name = "ID")]
    pub users: Vec<String>,
    /// Where the bots are listed.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Where the uploaded files are.
    #[command(flatten)]
    pub documents: DocumentsArgs,
    /// The embedding model whose cost and rate are estimated.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// AWS settings and stack discovery.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Source counts of one bot.
#[derive(Debug, Serialize)]
struct Sources {
    urls: usize,
    sitemaps: usize,
    files: usize,
}

/// One bot with knowledge.
#[derive(Debug, Serialize)]
struct BotPlan {
    user_id: String,
    bot_id: String,
    title: String,
    sync_status: Option<String>,
    sources: Sources,
    chunk_size: usize,
    chunk_overlap: usize,
    bytes: u64,
    est_chunks: u64,
    est_tokens: u64,
    est_cost_usd: Option<f64>,
    est_seconds: f64,
    missing_files: Vec<String>,
    errors: Vec<String>,
}

/// A bot that needs no work, or a `--bot` that matched nothing.
#[derive(Debug, Serialize)]
struct Skipped {
    user_id: Option<String>,
    bot_id: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Invalid {
    key: String,
    error: String,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    bots: usize,
    files: usize,
    bytes: u64,
    est_chunks: u64,
    est_tokens: u64,
    est_cost_usd: Option<f64>,
    est_seconds: f64,
    missing_files: usize,
    /// URL and sitemap sources: fetched at rebuild time, not sized by the plan.
    unsized_sources: usize,
    skipped: usize,
    invalid: usize,
}

#[derive(Debug, Serialize)]
struct Plan {
    registry: String,
    documents: Option<String>,
    bots: Vec<BotPlan>,
    skipped: Vec<Skipped>,
    invalid: Vec<Invalid>,
    totals: Totals,
    assumptions: Estimator,
}

pub async fn run(global: &GlobalArgs, args: &PlanArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(
        global,
        &[&args.registry, &args.documents, &args.embedding, &args.aws],
    )?;
    let config = &loaded.config;
    let selection = Selection {
        users: args.users.clone(),
        bots: args
            .bots
            .iter()
            .map(|b| b.parse::<BotSelector>().map_err(|e| anyhow!("--bot {e}")))
            .collect::<anyhow::Result<_>>()?,
    };
    let estimator = Estimator::from_config(&config.embedding);
    if estimator.price_per_1k_tokens.is_none() {
        tracing::warn!(
            "no price known for model {}: set [embedding] price_per_1k_tokens (RAGSHIFT_EMBEDDING_PRICE_PER_1K_TOKENS) for a cost estimate",
            estimator.model
        );
    }

    let registry = components::registry(config).await?;
    tracing::info!("reading bots from {}", registry.describe());
    let found = registry
        .bots(&selection)
        .await
        .with_context(|| format!("reading bots from {}", registry.describe()))?;
    for l in &found.lookups {
        tracing::debug!("{}: {:?}", l.target, l.method);
    }

    let mut skipped = Vec::new();
    let mut with_knowledge = Vec::new();
    for bot in found.bots {
        if bot.knowledge.is_empty() {
            skipped.push(Skipped {
                user_id: Some(bot.key.user_id.clone()),
                bot_id: bot.key.bot_id.clone(),
                reason: "no knowledge (nothing to embed)".into(),
            });
        } else {
            with_knowledge.push(bot);
        }
    }
    for sel in &found.not_found {
        tracing::warn!("--bot {sel}: not found in {}", registry.describe());
        let parsed: Option<BotSelector> = sel.parse().ok();
        skipped.push(Skipped {
            user_id: parsed.as_ref().and_then(|b| b.owner.clone()),
            bot_id: parsed.map_or_else(|| sel.clone(), |b| b.bot_id),
            reason: format!("not found in {}", registry.describe()),
        });
    }

    // Documents: only needed (and only checked) when some bot has uploaded files.
    let needs_documents = with_knowledge
        .iter()
        .any(|b| !b.knowledge.filenames.is_empty());
    let store = if needs_documents {
        let store = components::documents(config).await?;
        store.check().await?;
        Some(store)
    } else {
        None
    };
    let listings = list_documents(store.as_deref(), &with_knowledge).await?;

    let mut plan = Plan {
        registry: registry.describe(),
        documents: store.as_ref().map(|s| s.describe()),
        bots: Vec::new(),
        skipped,
        invalid: found
            .invalid
            .into_iter()
            .map(|i| Invalid {
                key: i.key,
                error: i.error,
            })
            .collect(),
        totals: Totals::default(),
        assumptions: estimator,
    };
    let mut total_cost = Some(0.0);
    for (bot, listing) in with_knowledge.iter().zip(listings) {
        let p = bot_plan(bot, listing, &plan.assumptions);
        let t = &mut plan.totals;
        t.bots += 1;
        t.files += p.sources.files.saturating_sub(p.missing_files.len());
        t.bytes += p.bytes;
        t.est_chunks += p.est_chunks;
        t.est_tokens += p.est_tokens;
        t.missing_files += p.missing_files.len();
        t.unsized_sources += p.sources.urls + p.sources.sitemaps;
        total_cost = total_cost.zip(p.est_cost_usd).map(|(a, b)| a + b);
        plan.bots.push(p);
    }
    let t = &mut plan.totals;
    t.est_cost_usd = total_cost;
    t.est_seconds = plan.assumptions.seconds(t.est_chunks, t.est_tokens);
    t.skipped = plan.skipped.len();
    t.invalid = plan.invalid.len();

    if global.json {
        output::json(&plan)?;
    } else {
        print_table(&plan);
    }
    Ok(Outcome::Success)
}

/// Lists each bot's files (in order), a few bots at a time. A store-wide failure stops the
/// plan; one bot's failure is kept for that bot.
async fn list_documents(
    store: Option<&dyn DocumentStore>,
    bots: &[Bot],
) -> Result<Vec<Result<BotDocuments, String>>, Failure> {
    let Some(store) = store else {
        return Ok(bots.iter().map(|_| Ok(BotDocuments::default())).collect());
    };
    let total = bots.len();
    let mut done = 0;
    let mut out = Vec::with_capacity(total);
    let mut listings = stream::iter(bots)
        .map(|bot| store.bot_documents(&bot.key, &bot.knowledge.filenames))
        .buffered(LISTING_CONCURRENCY);
    while let Some(result) = listings.next().await {
        done += 1;
        if done % 200 == 0 {
            tracing::info!("listed the documents of {done}/{total} bots");
        }
        match result {
            Ok(docs) => out.push(Ok(docs)),
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                tracing::warn!("{e}");
                out.push(Err(e.to_string()));
            }
        }
    }
    Ok(out)
}

fn bot_plan(bot: &Bot, listing: Result<BotDocuments, String>, est: &Estimator) -> BotPlan {
    let params = &bot.embedding_params;
    let (docs, errors) = match listing {
        Ok(d) => (d, Vec::new()),
        Err(e) => (BotDocuments::default(), vec![e]),
    };
    let missing_files = if errors.is_empty() {
        docs.missing.clone()
    } else {
        Vec::new()
    };
    for m in &missing_files {
        tracing::warn!(
            "bot {}: document {m:?} is in its Knowledge but not in the document store",
            bot.key
        );
    }
    let (mut chunks, mut tokens) = (0, 0);
    for d in &docs.found {
        let e = est.document(&d.filename, d.bytes, params);
        chunks += e.chunks;
        tokens += e.tokens;
    }
    BotPlan {
        user_id: bot.key.user_id.clone(),
        bot_id: bot.key.bot_id.clone(),
        title: bot.title.clone(),
        sync_status: bot.sync_status.map(|s| s.as_str().to_owned()),
        sources: Sources {
            urls: bot.knowledge.source_urls.len(),
            sitemaps: bot.knowledge.sitemap_urls.len(),
            files: bot.knowledge.filenames.len(),
        },
        chunk_size: params.chunk_size,
        chunk_overlap: params.chunk_overlap,
        bytes: docs.bytes(),
        est_chunks: chunks,
        est_tokens: tokens,
        est_cost_usd: est.cost(tokens),
        est_seconds: est.seconds(chunks, tokens),
        missing_files,
        errors,
    }
}

fn human_duration(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn cost(c: Option<f64>) -> String {
    c.map_or_else(|| "?".to_owned(), |c| format!("${c:.4}"))
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

fn print_table(plan: &Plan) {
    let line = |s: String| output::line(s);
    line(format!(
        "{:<20} {:<26} {:<22} {:<9} {:>4} {:>4} {:>5} {:>10} {:>8} {:>10}",
        "USER", "BOT", "TITLE", "STATUS", "URLS", "MAPS", "FILES", "BYTES", "CHUNKS", "COST"
    ));
    for b in &plan.bots {
        line(format!(
            "{:<20} {:<26} {:<22} {:<9} {:>4} {:>4} {:>5} {:>10} {:>8} {:>10}",
            clip(&b.user_id, 20),
            clip(&b.bot_id, 26),
            clip(&b.title, 22),
            b.sync_status.as_deref().unwrap_or("-"),
            b.sources.urls,
            b.sources.sitemaps,
            b.sources.files,
            crate::output::human_bytes(b.bytes),
            b.est_chunks,
            cost(b.est_cost_usd),
        ));
        if !b.missing_files.is_empty() {
            line(format!("    missing files: {}", b.missing_files.join(", ")));
        }
        for e in &b.errors {
            line(format!("    error: {e}"));
        }
    }
    let t = &plan.totals;
    line(String::new());
    line(format!(
        "total: {} bots, {} files, {}, ~{} chunks, ~{} tokens, ~{} to embed, ~{}",
        t.bots,
        t.files,
        crate::output::human_bytes(t.bytes),
        t.est_chunks,
        t.est_tokens,
        cost(t.est_cost_usd),
        human_duration(t.est_seconds),
    ));
    if t.missing_files > 0 {
        line(format!(
            "missing: {} file(s) named in bots' Knowledge are not in {}",
            t.missing_files,
            plan.documents.as_deref().unwrap_or("the document store")
        ));
    }
    if t.unsized_sources > 0 {
        line(format!(
            "not sized: {} URL/sitemap source(s) are fetched at rebuild time and not in the estimates",
            t.unsized_sources
        ));
    }
    if !plan.skipped.is_empty() {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &plan.skipped {
            *reasons.entry(s.reason.as_str()).or_default() += 1;
        }
        line(format!("skipped: {} bot(s)", plan.skipped.len()));
        for s in &plan.skipped {
            let who = match &s.user_id {
                Some(u) => format!("{u}/{}", s.bot_id),
                None => s.bot_id.clone(),
            };
            line(format!("  {who}: {}", s.reason));
        }
    }
    if !plan.invalid.is_empty() {
        line(format!(
            "invalid: {} registry item(s) could not be understood and are left out",
            plan.invalid.len()
        ));
        for i in &plan.invalid {
            line(format!("  {}: {}", i.key, i.error));
        }
    }
    let a = &plan.assumptions;
    line(format!(
        "model: {} ({}), {} per 1k tokens from the {}; tokens ≈ characters/4; rate {} tokens/min{} ({})",
        a.model,
        a.provider,
        a.price_per_1k_tokens
            .map_or_else(|| "no price".to_owned(), |p| format!("${p}")),
        a.price_source,
        a.tokens_per_minute,
        a.requests_per_minute
            .map(|r| format!(", {r} requests/min"))
            .unwrap_or_default(),
        a.rate_source,
    ));
    line(format!("registry: {}", plan.registry));
}
