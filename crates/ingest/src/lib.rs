//! Ingestion for ragshift's `rebuild` strategy: turns a bot's knowledge (uploaded files,
//! objects already fetched from S3, URLs, sitemaps) into [`Chunk`]s with the platform's
//! chunking rules.
//!
//! Stages, each in its own module:
//! * [`loader`]: bytes → text, one loader per format, chosen from the content and the name;
//! * [`encoding`]: any encoding → UTF-8, invalid bytes replaced and counted;
//! * [`fetch`] and [`ssrf`]: HTTP with timeouts, size caps, a redirect limit and a resolver that
//!   refuses loopback, private, link-local and metadata addresses;
//! * [`sitemap`]: sitemaps and sitemap indexes (gzipped too), capped per bot;
//! * [`splitter`]: text → chunks, sizes in characters, sentence-aware, with overlap;
//! * [`ingest`]: the pipeline per source, streaming large text, sending chunks onward in
//!   bounded batches, recording a [`SourceReport`] per source;
//! * [`outcome`]: per-source results → the bot's SUCCEEDED/FAILED under an explicit policy;
//! * [`preview`]: what `ragshift chunk` prints.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ragshift_ingest::ErrorKind> {
//! use ragshift_ingest::{Ingestor, IngestOptions, SourceInput};
//! use ragshift_model::EmbeddingParams;
//!
//! let ingestor = Ingestor::new(IngestOptions::default())?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel(4);
//! let consumer = tokio::spawn(async move {
//!     while let Some(batch) = rx.recv().await {
//!         // embed and store `batch` (a Vec<Chunk>)
//!         drop(batch);
//!     }
//! });
//! let report = ingestor
//!     .ingest(SourceInput::Url("https://example.com/".into()), &EmbeddingParams::default(), &tx)
//!     .await;
//! drop(tx);
//! let _ = consumer.await;
//! println!("{:?}", report.sources);
//! # Ok(()) }
//! ```

pub mod encoding;
mod error;
pub mod fetch;
pub mod ingest;
pub mod loader;
mod options;
pub mod outcome;
pub mod preview;
pub mod sitemap;
pub mod splitter;
pub mod ssrf;

pub use error::{ErrorKind, SourceError};
pub use fetch::{Fetched, Fetcher};
pub use ingest::{IngestReport, Ingestor, SourceInput};
pub use loader::{load, Hint, Loaded, LoaderKind};
pub use options::{default_user_agent, AllowList, IngestOptions, IpNet};
pub use outcome::{decide, BotOutcome, OutcomePolicy, SourceOutcome, SourceReport};
pub use preview::{preview, PreviewChunk, PreviewReport, PreviewSource};
pub use ragshift_model::{Chunk, EmbeddingParams};
pub use splitter::{Splitter, StreamSplitter};
