//! A rebuild from a configuration: everything `ragshift rebuild` does between reading its
//! settings and printing its report, so that a library user gets the same run from the same
//! configuration.
//!
//! In two steps, because a person confirms in between: [`PreparedRebuild::prepare`] reads the
//! registry, selects the bots, reaches the target, sets up the embedder (its cache, seeded from
//! the `[source]` store on request) and makes sure the table has the embedder's dimension;
//! [`PreparedRebuild::run`] then chooses where the jobs run (in this process or as ECS tasks),
//! runs them ([`crate::Rebuild`]) and sums up what was embedded.

use std::sync::Arc;

use ragshift_config::{Config, DatabaseConfig, ExecutorKind, LayoutPreset, VectorIndexKind};
use ragshift_embed::{EmbedReport, Embedder, Throttled};
use ragshift_registry::Registry;
use ragshift_store::index::VectorIndex;
use ragshift_store::index_build::IndexBuildOptions;
use ragshift_store::schema;
use serde::Serialize;
use serde_json::json;

use crate::components::{self, BotSources, ChunkTable};
use crate::executor::{EcsExecutor, EcsOptions, Executor, LocalExecutor};
use crate::plan::{self, Selected};
use crate::rebuild::RebuildError;
use crate::{Observer, Rebuild, RebuildOptions, RunReport, WorkerOptions};

/// What a rebuild is asked to do besides what the configuration says (`rebuild`'s flags).
#[derive(Debug, Clone, Default)]
pub struct RebuildRequest {
    /// `--bot` selectors (BOT_ID or USER_ID/BOT_ID).
    pub bots: Vec<String>,
    /// `--user` ids.
    pub users: Vec<String>,
    /// Load and split only: nothing embedded or written.
    pub dry_run: bool,
    /// Reuse and record vectors in the target's embedding cache (when `[embedding] cache`).
    pub use_cache: bool,
    /// First fill the cache from the `[source]` store's rows.
    pub seed_cache_from_source: bool,
    /// Write `SyncStatus` to the registry.
    pub status_updates: bool,
    /// Build the vector index after the last bot.
    pub build_index: bool,
    /// Resume this run.
    pub resume: Option<String>,
    /// Start a new run even when an unfinished one could be resumed.
    pub fresh: bool,
}

/// A rebuild ready to run: bots selected, target reached, table and embedder agreeing.
pub struct PreparedRebuild<'a> {
    config: &'a Config,
    request: RebuildRequest,
    sources: BotSources,
    /// The bots selected.
    pub selected: Selected,
    /// The target's chunk table.
    pub target: ChunkTable,
    embedder: Arc<dyn Embedder>,
    /// The real embedder (none in a dry run), whose usage the report sums up.
    throttled: Option<Arc<Throttled>>,
    /// Held until the run ends, as the run's own session on the target.
    _client: tokio_postgres::Client,
}

/// What was embedded, priced with the configured model's price.
#[derive(Debug, Serialize)]
pub struct EmbeddingSummary {
    /// `local`, `bedrock` or `openai`.
    pub provider: &'static str,
    /// The model id.
    pub model: String,
    /// Characters of every bot's chunks.
    pub chars: u64,
    /// Tokens estimated from those characters.
    pub est_tokens: u64,
    /// Their cost, when the model's price is known.
    pub est_cost_usd: Option<f64>,
    /// What the provider was really sent (none in a dry run).
    pub usage: Option<EmbedReport>,
}

/// What a rebuild did: the run's report and what its embedding cost.
pub struct RebuildOutcome {
    /// The run.
    pub report: RunReport,
    /// Its embedding.
    pub embedding: EmbeddingSummary,
}

impl<'a> PreparedRebuild<'a> {
    /// Everything before the confirmation; nothing has been written but the table (created
    /// when missing, outside a dry run) and the cache seeding. The embedder decides the table's
    /// dimension: a mismatch stops everything here.
    pub async fn prepare(config: &'a Config, request: RebuildRequest) -> anyhow::Result<Self> {
        if config.executor.kind == ExecutorKind::Ecs && !request.dry_run {
            // Incomplete ECS settings are refused before anything is read or asked.
            EcsOptions::from_config(&config.executor)?;
        }
        let sources = BotSources::open(config).await?;
        sources.documents.check().await?;
        let selected = plan::select(&*sources.registry, &request.bots, &request.users).await?;
        let target = ChunkTable::open(config).await?;
        let mut client = ragshift_store::connect(&target.spec, "ragshift rebuild").await?;

        let mut throttled: Option<Arc<Throttled>> = None;
        let embedder: Arc<dyn Embedder> = if request.dry_run {
            Arc::new(components::DryRunEmbedder::new(config)?)
        } else {
            let mut e = components::bare_embedder(config).await?;
            if config.embedding.cache && request.use_cache {
                let client =
                    ragshift_store::connect(&target.spec, "ragshift embedding cache").await?;
                let cache = components::open_cache(config, client).await?;
                if request.seed_cache_from_source {
                    components::seed_cache(config, &*cache, &e.cache_model()).await?;
                }
                e = e.with_cache(cache);
            }
            let e = Arc::new(e);
            throttled = Some(e.clone());
            e
        };
        let dimension = embedder.dimension();
        if request.dry_run {
            if let Some(have) = schema::table_dimension(&client, &target.layout).await? {
                ragshift_embed::check_dimension(dimension, have, &target.layout.display_name())?;
            }
        } else {
            target.rows.init(&mut client, dimension).await?;
        }
        Ok(Self {
            config,
            request,
            sources,
            selected,
            target,
            embedder,
            throttled,
            _client: client,
        })
    }

    /// The vector dimension the run writes.
    pub fn dimension(&self) -> usize {
        self.embedder.dimension()
    }

    /// Where the jobs will run: ECS tasks when `[executor] kind = "ecs"` (not for a dry run,
    /// which only loads and splits), else workers in this process.
    pub async fn executor(&self) -> anyhow::Result<Arc<dyn Executor>> {
        let worker = self.sources.worker(
            self.config,
            self.embedder.clone(),
            &self.target,
            WorkerOptions {
                status_updates: self.request.status_updates,
                dry_run: self.request.dry_run,
                check_run_lock: true,
                ..WorkerOptions::default()
            },
        )?;
        Ok(match self.config.executor.kind {
            ExecutorKind::Ecs if !self.request.dry_run => self.ecs_executor().await?,
            _ => Arc::new(LocalExecutor::new(Arc::new(worker))),
        })
    }

    /// Runs the selected bots on `executor` (at most `[executor] concurrency` at once),
    /// building the index with `index_build` at the end, until done or `stop` completes.
    pub async fn run(
        self,
        executor: Arc<dyn Executor>,
        index_build: IndexBuildOptions,
        observer: &dyn Observer,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<RebuildOutcome, RebuildError> {
        let config = self.config;
        let options = RebuildOptions {
            resume: self.request.resume.clone(),
            fresh: self.request.fresh,
            resume_window: config.run.resume_window,
            settings: run_settings(config, &*self.sources.registry, &*self.embedder),
            concurrency: config.executor.concurrency.max(1),
            dry_run: self.request.dry_run,
            selection: self.selected.selection.clone(),
            index: self
                .request
                .build_index
                .then(|| vector_index(&config.target)),
            index_build,
            journal: ragshift_store::journal::Journal::from_config(&config.run),
            // In-process workers spend the run's budget in the journal (ECS tasks join it
            // themselves, as `embed-bot --run-id`).
            embedder: match config.executor.kind {
                ExecutorKind::Ecs => None,
                ExecutorKind::Local => self.throttled.clone(),
            },
        };
        let rebuild = Rebuild::new(
            self.target.spec.clone(),
            self.target.layout.clone(),
            executor,
        );
        let report = rebuild
            .run_until(
                self.selected.bots,
                self.selected.skipped.len(),
                &options,
                observer,
                stop,
            )
            .await?;
        let usage = self.throttled.map(|t| t.report());
        let embedding = summary(config, &report, &*self.embedder, usage);
        Ok(RebuildOutcome { report, embedding })
    }

    /// The ECS executor from `[executor]`: the task's worker gets the flags this run was given,
    /// and bots whose task died are set FAILED in the registry unless status updates are off.
    async fn ecs_executor(&self) -> anyhow::Result<Arc<dyn Executor>> {
        let config = self.config;
        let mut options = EcsOptions::from_config(&config.executor)?;
        options.retry = components::retry_policy(&config.retry);
        for (on, flag) in [
            (!self.request.status_updates, "--no-status-updates"),
            (config.ingest.allow_partial, "--allow-partial"),
            (!self.request.use_cache, "--no-cache"),
        ] {
            if on {
                options.worker_args.push(flag.to_owned());
            }
        }
        options.worker_args.extend(layout_args(&config.target));
        let sdk = ragshift_aws::sdk_config(&config.aws).await;
        let executor = EcsExecutor::new(
            &sdk,
            options,
            self.target.spec.clone(),
            self.target.rows.clone(),
        );
        Ok(Arc::new(if self.request.status_updates {
            executor.with_status_updates(self.sources.registry.clone())
        } else {
            executor
        }))
    }
}

/// The vector index `[target] index` names, with its parameters.
fn vector_index(target: &DatabaseConfig) -> VectorIndex {
    match target.index {
        VectorIndexKind::Hnsw => VectorIndex::Hnsw {
            m: target.hnsw_m,
            ef_construction: target.hnsw_ef_construction,
        },
        VectorIndexKind::Ivfflat => VectorIndex::Ivfflat {
            lists: target.index_lists,
        },
    }
}

/// The characters the run's bots embedded (or would have), their tokens and cost.
fn summary(
    config: &Config,
    report: &RunReport,
    embedder: &dyn Embedder,
    usage: Option<EmbedReport>,
) -> EmbeddingSummary {
    let chars: u64 = report.bots.iter().map(|b| b.chars as u64).sum();
    let est_tokens = ragshift_embed::estimate_tokens(chars);
    let model = embedder.model_id().to_owned();
    let price = components::prices(config, &model).price(embedder.provider(), &model);
    EmbeddingSummary {
        provider: embedder.provider(),
        model,
        chars,
        est_tokens,
        est_cost_usd: price.map(|p| p * est_tokens as f64 / 1000.0),
        usage,
    }
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

/// The flags that make a task's `embed-bot` write the layout this run writes (its table and
/// columns), whatever the task definition's environment says; none for Bedrock Chat's, whose
/// tasks are configured as before.
fn layout_args(target: &DatabaseConfig) -> Vec<String> {
    if target.layout == LayoutPreset::BedrockChat {
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
        let bedrock = DatabaseConfig::default();
        assert!(layout_args(&bedrock).is_empty());
        let llama = DatabaseConfig {
            layout: LayoutPreset::Llamaindex,
            table: "kb".to_owned(),
            bot_column: String::new(),
            ..bedrock
        };
        let args = layout_args(&llama);
        assert_eq!(args[0], "--layout=llamaindex");
        assert!(args.contains(&"--target-table=kb".to_owned()));
        assert!(args.contains(&"--target-bot-column=".to_owned()));
    }
}
