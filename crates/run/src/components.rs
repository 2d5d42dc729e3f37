//! Turning `[registry]`, `[documents]`, `[ingest]`, `[embedding]` and `[retry]` into the
//! components that read bots, load and embed: one place, so that every command that does
//! (`chunk`, `embed`, `plan`, `rebuild`, `embed-bot`, `search`, `verify`) and any library user
//! gets the same registry, ingestor options, embedder, cache and budget from one configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ragshift_config::{
    AwsConfig, Config, DatabaseConfig, EmbeddingProvider, IngestConfig, RetryConfig,
};
use ragshift_embed::{
    build_embedder, BedrockOptions, CohereTruncate, EmbedOptions, LocalOptions, OpenAiOptions,
    PgEmbeddingCache, PriceTable, ProviderOptions, RateLimit, Throttled, ThroughputOptions,
};
use ragshift_ingest::{AllowList, IngestOptions, IpNet};
use ragshift_store::ConnectSpec;

/// Which side a database is on, for messages.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// The new cluster.
    Target,
    /// The old cluster or a restored snapshot.
    Source,
}

impl Side {
    /// `target` or `source`, as the configuration's sections are named.
    pub fn name(self) -> &'static str {
        match self {
            Self::Target => "target",
            Self::Source => "source",
        }
    }
}

/// Builds the connection spec for one side, reading the secret when one is configured.
pub async fn connect_spec(
    side: Side,
    db: &DatabaseConfig,
    aws: &AwsConfig,
) -> anyhow::Result<ConnectSpec> {
    let name = side.name();
    if let Some(url) = &db.url {
        return Ok(ConnectSpec::from_url(
            url.expose(),
            db.sslmode,
            db.sslrootcert.as_deref(),
        )?);
    }
    if let Some(arn) = &db.secret_arn {
        let sdk = ragshift_aws::sdk_config(aws).await;
        let parts = ragshift_aws::fetch_db_secret(&sdk, arn)
            .await
            .with_context(|| format!("reading the {name} database secret"))?;
        return Ok(ConnectSpec::from_parts(
            &parts,
            db.sslmode,
            db.sslrootcert.as_deref(),
        ));
    }
    anyhow::bail!(
        "no {name} database configured: set [{name}] url or secret_arn (RAGSHIFT_{up}_URL, --{name}-url)",
        up = name.to_ascii_uppercase()
    )
}

/// `[retry]` as the one policy every retried call uses (AWS calls, embedding requests, database
/// work); `[embedding] max_attempts` caps embedding requests on top.
pub fn retry_policy(c: &RetryConfig) -> ragshift_retry::Policy {
    ragshift_retry::Policy {
        initial: Duration::from_millis(c.initial_ms.max(1)),
        max_delay: Duration::from_secs(c.max_delay_secs.max(1)),
        budget: Duration::from_secs(c.budget_secs),
        max_attempts: c.max_attempts.map(|n| n.max(1)),
        ..ragshift_retry::Policy::default()
    }
}

/// The vector dimension the configured embedder produces, when it can be known without
/// loading the model (`[embedding] dimensions`, else the model catalogue's).
pub fn configured_dimension(config: &Config) -> Option<usize> {
    let e = &config.embedding;
    e.dimensions.or_else(|| {
        ragshift_embed::catalog::lookup(e.provider.name(), e.model.as_deref()).map(|m| m.dimension)
    })
}

/// The bot registry `[registry]` names, retried under `[retry]`.
pub async fn registry(config: &Config) -> anyhow::Result<Box<dyn ragshift_registry::Registry>> {
    Ok(
        ragshift_registry::from_config(&config.registry, &config.aws, &retry_policy(&config.retry))
            .await?,
    )
}

/// Every bot `[registry]` lists (what coverage checks against); items that can't be read are
/// logged and left out.
pub async fn registry_bots(config: &Config) -> anyhow::Result<Vec<ragshift_model::Bot>> {
    let reg = registry(config)
        .await
        .context("opening the registry for coverage")?;
    let scan = reg
        .bots(&ragshift_registry::Selection::all())
        .await
        .with_context(|| format!("reading bots from {}", reg.describe()))?;
    for bad in &scan.invalid {
        tracing::warn!("registry item left out of coverage: {bad:?}");
    }
    tracing::info!("{}: {} bots", reg.describe(), scan.bots.len());
    Ok(scan.bots)
}

/// A search's query vector: `question` embedded as the configured embedder embeds queries, or
/// the JSON array of numbers in `file` (which wins).
pub async fn query_vector(
    config: &Config,
    file: Option<&std::path::Path>,
    question: &str,
) -> anyhow::Result<Vec<f32>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading query vector {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} must hold a JSON array of numbers", path.display()));
    }
    let embedder = embedder(config, None).await?;
    ragshift_embed::Embedder::embed_query(&embedder, question)
        .await
        .context("embedding the question")
}

/// Where a bot's worker reads: the registry (bots, `SyncStatus`) and the document store, opened
/// once and shared by every worker of a process (`rebuild`'s in-process workers, `embed-bot`).
#[derive(Clone)]
pub struct BotSources {
    /// The bot registry `[registry]` names.
    pub registry: Arc<dyn ragshift_registry::Registry>,
    /// The document store `[documents]` names.
    pub documents: Arc<dyn ragshift_documents::DocumentStore>,
}

impl BotSources {
    /// Opens `[registry]` and `[documents]`.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            registry: Arc::from(registry(config).await?),
            documents: Arc::from(documents(config).await?),
        })
    }

    /// The worker that runs one bot from these sources into `rows` on `target`, fetching under
    /// `[ingest]` (whose `allow_partial` decides over `options`'), embedding with `embedder`.
    pub fn worker(
        &self,
        config: &Config,
        embedder: Arc<dyn ragshift_embed::Embedder>,
        target: &ChunkTable,
        options: crate::WorkerOptions,
    ) -> anyhow::Result<crate::Worker> {
        let ingestor = ragshift_ingest::Ingestor::new(ingest_options(&config.ingest)?)
            .map_err(|e| anyhow::anyhow!("setting up fetching: {e}"))?;
        Ok(crate::Worker {
            ingestor,
            embedder,
            documents: self.documents.clone(),
            registry: self.registry.clone(),
            target: target.spec.clone(),
            rows: target.rows.clone(),
            options: crate::WorkerOptions {
                allow_partial: config.ingest.allow_partial,
                ..options
            },
        })
    }
}

/// The chunk table `[target]` names: how to connect, the table's layout and how a bot's rows
/// are written there.
#[derive(Debug, Clone)]
pub struct ChunkTable {
    /// The target database.
    pub spec: ConnectSpec,
    /// The chunk table's name and columns.
    pub layout: ragshift_store::Layout,
    /// Where each bot's rows go in that layout.
    pub rows: ragshift_store::BotRows,
}

impl ChunkTable {
    /// `[target]`, reading its secret when one is configured.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            spec: connect_spec(Side::Target, &config.target, &config.aws).await?,
            layout: ragshift_store::Layout::from_config(&config.target),
            rows: ragshift_store::BotRows::from_config(&config.target),
        })
    }

    /// Connects as `app` to work on the table, refusing (naming it) a table that isn't there
    /// before anything starts.
    pub async fn connect_existing(&self, app: &str) -> anyhow::Result<tokio_postgres::Client> {
        let client = ragshift_store::connect(&self.spec, app).await?;
        crate::checks::require_table(&client, &self.layout, self.spec.label()).await?;
        Ok(client)
    }
}

/// The document store `[documents]` names, refusing files over `[ingest] max_bytes`.
pub async fn documents(
    config: &Config,
) -> anyhow::Result<Box<dyn ragshift_documents::DocumentStore>> {
    Ok(
        ragshift_documents::from_config(&config.documents, &config.aws, config.ingest.max_bytes)
            .await?,
    )
}

/// `[ingest]` as the ingestor's options. `allow_hosts` takes host names, IPs and CIDRs.
pub fn ingest_options(c: &IngestConfig) -> anyhow::Result<IngestOptions> {
    let mut allow = AllowList::default();
    for entry in &c.allow_hosts {
        let e = entry.trim();
        if let Ok(net) = e.parse::<IpNet>() {
            allow.nets.push(net);
        } else if let Ok(ip) = e.parse::<std::net::IpAddr>() {
            allow.nets.push(IpNet::from(ip));
        } else if !e.is_empty() {
            allow.hosts.push(e.to_ascii_lowercase());
        }
    }
    let timeout = Duration::from_secs(c.timeout_secs.max(1));
    Ok(IngestOptions {
        allow,
        request_timeout: timeout,
        connect_timeout: timeout.min(Duration::from_secs(10)),
        max_body_bytes: c.max_bytes,
        max_redirects: c.max_redirects as usize,
        sitemap_page_cap: c.sitemap_max_pages,
        ..IngestOptions::default()
    })
}

/// `[embedding]` as the embedder's options.
pub fn embed_options(config: &Config) -> anyhow::Result<EmbedOptions> {
    let e = &config.embedding;
    let provider = match e.provider {
        EmbeddingProvider::Local => {
            let mut o = LocalOptions {
                model_dir: e.model_dir.clone(),
                model_id: e.model.clone(),
                ..LocalOptions::default()
            };
            if let Some(b) = e.batch_size {
                o.batch_size = b;
            }
            ProviderOptions::Local(o)
        }
        EmbeddingProvider::Bedrock => {
            let mut o = BedrockOptions::default();
            if let Some(m) = &e.model {
                o.model_id = m.clone();
            }
            o.truncate = match e.truncate.to_ascii_uppercase().as_str() {
                "NONE" => CohereTruncate::None,
                "START" => CohereTruncate::Start,
                "END" => CohereTruncate::End,
                other => {
                    anyhow::bail!("[embedding] truncate = {other:?} is not one of NONE, START, END")
                }
            };
            if let Some(d) = e.dimensions {
                o.titan_dimensions = d;
            }
            o.titan_normalize = e.normalize;
            if let Some(b) = e.batch_size {
                o.batch_size = b;
            }
            ProviderOptions::Bedrock(o)
        }
        EmbeddingProvider::Openai => {
            let mut o = OpenAiOptions {
                api_key_env: e.api_key_env.clone(),
                dimensions: e.dimensions,
                ..OpenAiOptions::default()
            };
            if let Some(u) = &e.base_url {
                o.base_url = u.clone();
            }
            if let Some(m) = &e.model {
                o.model = m.clone();
            }
            if let Some(b) = e.batch_size {
                o.batch_size = b;
            }
            ProviderOptions::OpenAi(o)
        }
    };
    Ok(EmbedOptions {
        provider,
        throughput: ThroughputOptions {
            batch_size: e.batch_size,
            max_in_flight: e.concurrency.max(1),
            rate: RateLimit {
                requests: e.requests_per_minute.map(u64::from),
                tokens: e.tokens_per_minute.map(u64::from),
                window: std::time::Duration::from_secs(e.budget_window_secs.max(1)),
            },
            retry: ragshift_retry::Policy {
                max_attempts: Some(e.max_attempts.max(1)),
                ..retry_policy(&config.retry)
            },
        },
    })
}

/// The price table with `[embedding] price_per_1k_tokens` applied to the configured model.
pub fn prices(config: &Config, model_id: &str) -> PriceTable {
    let mut prices = PriceTable::default();
    if let Some(p) = config.embedding.price_per_1k_tokens {
        prices.set(model_id, p);
    }
    prices
}

/// Builds the configured embedder behind the throughput wrapper. With `cache`, vectors are
/// looked up in (and added to) the target database's cache table first.
pub async fn embedder(
    config: &Config,
    cache: Option<tokio_postgres::Client>,
) -> anyhow::Result<Throttled> {
    let embedder = bare_embedder(config).await?;
    Ok(match cache {
        Some(client) => embedder.with_cache(open_cache(config, client).await?),
        None => embedder,
    })
}

/// The configured embedder without a cache.
pub async fn bare_embedder(config: &Config) -> anyhow::Result<Throttled> {
    let options = embed_options(config)?;
    let sdk = match config.embedding.provider {
        EmbeddingProvider::Bedrock => Some(ragshift_aws::sdk_config(&config.aws).await),
        _ => None,
    };
    let embedder = build_embedder(&options, sdk.as_ref())
        .await
        .context("setting up the embedding provider")?;
    let model = ragshift_embed::Embedder::model_id(&embedder).to_owned();
    Ok(embedder.with_prices(prices(config, &model)))
}

/// Makes `embedder` send against the budget of `run_id` in the target's run journal, shared
/// with every other worker of the run, when a rate limit is configured (without one there is
/// nothing to share).
pub async fn join_budget(
    embedder: Throttled,
    spec: &ragshift_store::ConnectSpec,
    journal: &ragshift_store::journal::Journal,
    run_id: &str,
) -> anyhow::Result<Throttled> {
    let limit = embedder.rate_limit().clone();
    if limit.requests.is_none() && limit.tokens.is_none() {
        return Ok(embedder);
    }
    let budget = crate::JournalBudget::join(spec, journal, run_id, &limit)
        .await
        .with_context(|| format!("joining the embedding budget of run {run_id}"))?;
    Ok(embedder.with_budget(budget))
}

/// The embedding cache in the target database (table `embedding_cache` in the journal's
/// schema, `[run] journal_schema`).
pub async fn open_cache(
    config: &Config,
    client: tokio_postgres::Client,
) -> anyhow::Result<Arc<PgEmbeddingCache>> {
    Ok(Arc::new(
        PgEmbeddingCache::open(Arc::new(client), &config.run.journal_schema)
            .await
            .context("opening the embedding cache in the target database")?,
    ))
}

/// The dimension a configured embedder will produce, building it if that's the only way to
/// know (an OpenAI-compatible server asked once).
pub async fn embedder_dimension(config: &Config) -> anyhow::Result<usize> {
    if let Some(d) = configured_dimension(config) {
        return Ok(d);
    }
    let e = embedder(config, None).await?;
    Ok(ragshift_embed::Embedder::dimension(&e))
}

/// Stands in for the provider in a dry run: knows the model and dimension, never embeds.
pub struct DryRunEmbedder {
    provider: &'static str,
    model: String,
    dimension: usize,
}

impl DryRunEmbedder {
    /// The configured provider and model, with the dimension the configuration tells (a dry run
    /// asks no provider, so an unknown model needs `[embedding] dimensions`).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let e = &config.embedding;
        let provider = e.provider.name();
        let default_model = ragshift_embed::catalog::default_model(provider).to_owned();
        let dimension = configured_dimension(config).ok_or_else(|| {
            anyhow::anyhow!(
                "a dry run can't ask the provider for its dimension: set [embedding] dimensions"
            )
        })?;
        Ok(Self {
            provider,
            model: e.model.clone().unwrap_or(default_model),
            dimension,
        })
    }
}

#[async_trait::async_trait]
impl ragshift_embed::Embedder for DryRunEmbedder {
    fn provider(&self) -> &'static str {
        self.provider
    }
    fn model_id(&self) -> &str {
        &self.model
    }
    fn dimension(&self) -> usize {
        self.dimension
    }
    fn max_batch_size(&self) -> usize {
        usize::MAX
    }
    fn max_input_chars(&self) -> usize {
        usize::MAX
    }
    async fn embed(
        &self,
        _texts: &[String],
        _kind: ragshift_embed::InputKind,
    ) -> ragshift_embed::Result<ragshift_embed::Embeddings> {
        Err(ragshift_embed::Error::Config(
            "a dry run never calls the embedding provider".into(),
        ))
    }
}

/// Fills the target's embedding cache from the `[source]` store's rows, whose vectors the user
/// vouches come from `model` (the platform always used one model per deployment).
pub async fn seed_cache(
    config: &Config,
    cache: &dyn ragshift_embed::EmbeddingCache,
    model: &str,
) -> anyhow::Result<()> {
    let spec = connect_spec(Side::Source, &config.source, &config.aws)
        .await
        .context("--seed-cache-from-source needs [source] url or secret_arn")?;
    let client = ragshift_store::connect(&spec, "ragshift seed cache").await?;
    let layout = ragshift_store::Layout::from_config(&config.source);
    let from = ragshift_embed::cache::SeedSource {
        schema: layout.schema,
        table: layout.table,
        content_column: layout.content,
        embedding_column: layout.embedding,
    };
    let rows = ragshift_embed::cache::seed_cache_from_table(&client, &from, cache, model)
        .await
        .with_context(|| format!("seeding the embedding cache from {}", spec.label()))?;
    tracing::info!(
        "embedding cache seeded with {rows} vectors of {model} from {}",
        spec.label()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ragshift_retry::Policy;

    #[test]
    fn retry_settings_become_the_policy() {
        // The documented defaults of `[retry]` are the policy's own.
        assert_eq!(retry_policy(&RetryConfig::default()), Policy::default());
        let p = retry_policy(&RetryConfig {
            budget_secs: 900,
            initial_ms: 0,
            max_delay_secs: 45,
            max_attempts: Some(0),
        });
        assert_eq!(p.budget, Duration::from_secs(900));
        assert_eq!(p.max_delay, Duration::from_secs(45));
        // Nonsense is raised to the least that works: a wait, one attempt.
        assert_eq!(p.initial, Duration::from_millis(1));
        assert_eq!(p.max_attempts, Some(1));
    }
}
