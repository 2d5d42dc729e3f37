//! Embedding providers for ragshift: the texts of a knowledge base in, vectors the platform's
//! search can use out, as fast as the provider allows and never paid for twice.
//!
//! - [`Embedder`]: the trait every provider implements (model id, dimension, batch and input
//!   limits, `embed_documents` / `embed_query`).
//! - Providers: [`local`] (sentence-transformers on candle, the default), [`bedrock`] (Cohere v3,
//!   Titan v2 via `InvokeModel`), [`openai`] (any OpenAI-compatible `/v1/embeddings`).
//! - [`Throttled`]: the wrapper every provider goes through — batches filled to the maximum,
//!   N requests in flight, requests/min and tokens/min limits, retries with backoff and jitter
//!   honouring `Retry-After`, cancellation, usage accounting ([`EmbedReport`]) and the
//!   content-hash [`cache`].
//! - [`SharedBudget`]: those limits for a whole run of several workers, leased in slices from a
//!   [`BudgetStore`] (the run journal) with a shared additive-increase/multiplicative-decrease
//!   rate.
//! - [`check_dimension`]: the guard run before any work.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ragshift_embed::Error> {
//! use ragshift_embed::{build_embedder, check_dimension, EmbedOptions, Embedder};
//! let embedder = build_embedder(&EmbedOptions::default(), None).await?;
//! check_dimension(embedder.dimension(), 384, "public.items.embedding")?;
//! let out = embedder.embed_documents(&["hello".to_string()]).await?;
//! println!("{:?}", embedder.report());
//! # drop(out); Ok(()) }
//! ```

pub mod bedrock;
mod budget;
pub mod cache;
pub mod catalog;
mod embedder;
mod error;
pub mod local;
pub mod openai;
mod provider;
mod ratelimit;
mod throttled;
mod usage;

pub use bedrock::{BedrockEmbedder, BedrockOptions, CohereTruncate};
pub use budget::{BudgetAsk, BudgetGrant, BudgetStore, SharedBudget, SpentSlice};
pub use cache::{EmbeddingCache, PgEmbeddingCache};
pub use embedder::{cosine, l2_norm, Embedder, Embeddings, InputKind, Secret};
pub use error::{Error, ErrorKind, Result};
pub use local::{LocalEmbedder, LocalOptions};
pub use openai::{OpenAiEmbedder, OpenAiOptions};
pub use provider::{
    build_embedder, build_provider, check_dimension, EmbedOptions, ProviderOptions,
};
pub use ratelimit::{Permit, RateLimit, RateLimiter};
pub use throttled::{Throttled, ThroughputOptions};
pub use usage::{estimate_tokens, EmbedReport, PriceTable, Usage, PRICES_AS_OF};
