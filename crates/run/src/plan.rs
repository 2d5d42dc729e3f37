//! The plan of a rebuild: which bots the registry holds and what each one's knowledge will cost
//! to embed, before anything is touched.
//!
//! It lives beside the run because it is the run's first step (registry → bots → plan → jobs):
//! `plan` shows it alone, `rebuild` shows it and then runs the same selection ([`select`]). The
//! estimate model (chunks, tokens, cost, time and the assumptions behind each) is in
//! [`estimate`]; listing documents never downloads them, and invalid registry items and missing
//! files are reported, not fatal.

pub mod estimate;

use anyhow::{anyhow, bail, Context};
use futures_util::stream::{self, StreamExt};
use ragshift_config::Config;
use ragshift_documents::{BotDocuments, DocumentStore};
use ragshift_model::Bot;
use ragshift_registry::{BotSelector, Registry, Selection};
use serde::Serialize;

use crate::components;
pub use estimate::Estimator;

/// Bots whose documents are listed at once.
const LISTING_CONCURRENCY: usize = 16;

/// Source counts of one bot.
#[derive(Debug, Serialize)]
pub struct Sources {
    /// Web pages (`SourceUrls`).
    pub urls: usize,
    /// Sitemaps (`SitemapUrls`).
    pub sitemaps: usize,
    /// Uploaded files (`Filenames`).
    pub files: usize,
}

/// One bot with knowledge: what it holds and what embedding it will cost.
#[derive(Debug, Serialize)]
pub struct BotPlan {
    /// Owner.
    pub user_id: String,
    /// Bot id.
    pub bot_id: String,
    /// The bot's title.
    pub title: String,
    /// `SyncStatus` in the registry.
    pub sync_status: Option<String>,
    /// Its sources by kind.
    pub sources: Sources,
    /// Characters per chunk.
    pub chunk_size: usize,
    /// Characters shared by consecutive chunks.
    pub chunk_overlap: usize,
    /// Bytes of its files found in the document store.
    pub bytes: u64,
    /// Estimated chunks.
    pub est_chunks: u64,
    /// Estimated tokens sent to the embedder.
    pub est_tokens: u64,
    /// Estimated cost, when the model's price is known.
    pub est_cost_usd: Option<f64>,
    /// Estimated seconds of embedding at the rate limit.
    pub est_seconds: f64,
    /// Files in its Knowledge that the document store doesn't have.
    pub missing_files: Vec<String>,
    /// Why its documents could not be listed.
    pub errors: Vec<String>,
}

/// A bot that needs no work, or a `--bot` that matched nothing.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// Owner, when known.
    pub user_id: Option<String>,
    /// Bot id (or the selector as given).
    pub bot_id: String,
    /// Why it is skipped.
    pub reason: String,
}

/// A registry item that could not be understood.
#[derive(Debug, Serialize)]
pub struct Invalid {
    /// Its keys.
    pub key: String,
    /// What is wrong with it.
    pub error: String,
}

/// The sums over every bot of the plan.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    /// Bots with knowledge.
    pub bots: usize,
    /// Files found.
    pub files: usize,
    /// Bytes of the files found.
    pub bytes: u64,
    /// Estimated chunks.
    pub est_chunks: u64,
    /// Estimated tokens.
    pub est_tokens: u64,
    /// Estimated cost, when every bot's is known.
    pub est_cost_usd: Option<f64>,
    /// Estimated seconds of embedding.
    pub est_seconds: f64,
    /// Files named in Knowledge but missing.
    pub missing_files: usize,
    /// URL and sitemap sources: fetched at rebuild time, not sized by the plan.
    pub unsized_sources: usize,
    /// Bots skipped.
    pub skipped: usize,
    /// Registry items left out.
    pub invalid: usize,
}

/// What `ragshift plan` reports (and `--json` prints as is).
#[derive(Debug, Serialize)]
pub struct Plan {
    /// The registry read.
    pub registry: String,
    /// The document store listed, when some bot has files.
    pub documents: Option<String>,
    /// Bots with knowledge.
    pub bots: Vec<BotPlan>,
    /// Bots without work, and selectors that matched nothing.
    pub skipped: Vec<Skipped>,
    /// Registry items that could not be understood.
    pub invalid: Vec<Invalid>,
    /// Sums.
    pub totals: Totals,
    /// The model, price and rate the estimates assume.
    pub assumptions: Estimator,
}

impl Plan {
    /// Reads the selected bots from `[registry]`, lists their files in `[documents]` (only
    /// when some bot has files) and estimates each with `[embedding]`'s model. A store-wide
    /// failure is an error; one bot's listing failure is kept in that bot's `errors`.
    pub async fn compute(config: &Config, selection: &Selection) -> anyhow::Result<Self> {
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
            .bots(selection)
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
        Ok(plan)
    }
}

/// Lists each bot's files (in order), a few bots at a time. A store-wide failure stops the
/// plan; one bot's failure is kept for that bot.
async fn list_documents(
    store: Option<&dyn DocumentStore>,
    bots: &[Bot],
) -> anyhow::Result<Vec<Result<BotDocuments, String>>> {
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

/// The bots of a `--bot`/`--user` selection, split into those with knowledge and those without.
pub struct Selected {
    /// Bots to process.
    pub bots: Vec<Bot>,
    /// Bots without knowledge (nothing to embed).
    pub skipped: Vec<Bot>,
    /// What was asked for, as recorded with the run.
    pub selection: serde_json::Value,
    /// What was asked for, as the registry reads it (the plan of the same bots).
    pub query: Selection,
}

/// Reads the selected bots from the registry for a run; unlike the plan, which lists them,
/// selectors that match nothing are an error here (a run never starts on a typo).
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
        selection: serde_json::json!({ "users": u, "bots": b }),
        query: selection,
    })
}
