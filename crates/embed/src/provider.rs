//! Turning settings into a ready embedder: one options struct per provider, one constructor,
//! and the dimension guard that runs before any work.

use std::sync::Arc;

use crate::bedrock::{BedrockEmbedder, BedrockOptions};
use crate::embedder::Embedder;
use crate::error::{Error, Result};
use crate::local::{LocalEmbedder, LocalOptions};
use crate::openai::{OpenAiEmbedder, OpenAiOptions};
use crate::throttled::{Throttled, ThroughputOptions};

/// Which provider, with its settings.
#[derive(Debug, Clone)]
pub enum ProviderOptions {
    /// The embedded sentence-transformers model (the default).
    Local(LocalOptions),
    /// Amazon Bedrock (Cohere v3, Titan v2).
    Bedrock(BedrockOptions),
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    OpenAi(OpenAiOptions),
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions::Local(LocalOptions::default())
    }
}

/// Everything needed to build an embedder.
#[derive(Debug, Clone, Default)]
pub struct EmbedOptions {
    /// The provider and its settings.
    pub provider: ProviderOptions,
    /// Batching, concurrency, rate limits and retries.
    pub throughput: ThroughputOptions,
}

/// Builds the bare provider. `aws` is needed for Bedrock only (the CLI builds it from `[aws]`
/// region/endpoint_url). Loading the local model runs on a blocking thread.
pub async fn build_provider(
    provider: &ProviderOptions,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Arc<dyn Embedder>> {
    Ok(match provider {
        ProviderOptions::Local(o) => {
            let o = o.clone();
            let m = tokio::task::spawn_blocking(move || LocalEmbedder::load(&o))
                .await
                .map_err(|e| Error::Config(format!("loading the local model: {e}")))??;
            Arc::new(m)
        }
        ProviderOptions::Bedrock(o) => {
            let sdk = aws.ok_or_else(|| {
                Error::Config("the bedrock provider needs AWS settings ([aws] region)".into())
            })?;
            Arc::new(BedrockEmbedder::new(sdk, o.clone())?)
        }
        ProviderOptions::OpenAi(o) => Arc::new(OpenAiEmbedder::connect(o.clone()).await?),
    })
}

/// Builds the provider behind the throughput wrapper. Attach a cache with
/// [`Throttled::with_cache`] and Ctrl-C with [`Throttled::with_cancel`].
pub async fn build_embedder(
    options: &EmbedOptions,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Throttled> {
    let inner = build_provider(&options.provider, aws).await?;
    Ok(Throttled::new(inner, options.throughput.clone()))
}

/// The dimension guard: call before any work; a mismatch is one clear error naming both
/// dimensions and the table, so nothing is half-written.
pub fn check_dimension(embedder_dim: usize, column_dim: usize, table: &str) -> Result<()> {
    if embedder_dim == column_dim {
        Ok(())
    } else {
        Err(Error::DimensionMismatch {
            embedder_dim,
            column_dim,
            table: table.to_string(),
        })
    }
}
