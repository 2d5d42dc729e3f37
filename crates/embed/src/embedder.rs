//! The [`Embedder`] trait: what every provider (local model, Bedrock, OpenAI-compatible) and the
//! throughput wrapper around them have in common, so the rebuild worker and the CLI never need
//! to know which one they hold.

use async_trait::async_trait;

use crate::error::Result;

/// Whether texts are stored chunks or a user's question. Some models (Cohere v3) embed the two
/// differently (`input_type` `search_document` vs `search_query`); the rest ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Chunks that go into the vector store.
    Document,
    /// A question that is searched for.
    Query,
}

/// The result of one embedding request: one vector per text, in input order, plus what the
/// provider said about its cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    /// One vector per input text, same order.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens as reported by the provider; `None` when it doesn't say (they are then
    /// estimated from characters by the usage accounting).
    pub tokens: Option<u64>,
    /// How many of the texts were cut to fit the model's input limit.
    pub truncated: u64,
}

/// Something that turns texts into vectors.
///
/// A provider implements one request: `embed` receives at most [`Embedder::max_batch_size`]
/// texts. The throughput wrapper ([`crate::Throttled`]) also implements this trait and accepts
/// any number of texts, splitting, limiting and retrying them.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The provider's short name (`local`, `bedrock`, `openai`), for reports and errors.
    fn provider(&self) -> &'static str;

    /// The model id as the provider names it (`cohere.embed-multilingual-v3`, …).
    fn model_id(&self) -> &str;

    /// The identity of the vectors for caching: the model id plus every setting that changes
    /// the vectors (Titan's `dimensions`, the local model's sequence length, …). Two embedders
    /// with equal `cache_model` produce interchangeable vectors.
    fn cache_model(&self) -> String {
        self.model_id().to_string()
    }

    /// Length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// Most texts one request may carry.
    fn max_batch_size(&self) -> usize;

    /// Longest text (in characters) the provider accepts; longer texts are truncated (and
    /// counted) or refused, as the provider's settings say.
    fn max_input_chars(&self) -> usize;

    /// Embeds `texts` (at most [`Embedder::max_batch_size`] of them for a bare provider).
    async fn embed(&self, texts: &[String], kind: InputKind) -> Result<Embeddings>;

    /// Embeds chunks for the store.
    async fn embed_documents(&self, texts: &[String]) -> Result<Embeddings> {
        self.embed(texts, InputKind::Document).await
    }

    /// Embeds one question, the way search does.
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut out = self.embed(&[text.to_string()], InputKind::Query).await?;
        out.vectors.pop().ok_or_else(|| {
            crate::Error::Config(format!(
                "{} returned no vector for the query",
                self.provider()
            ))
        })
    }

    /// Embeds each question in turn the way search does (`ragshift embed --query` checks
    /// what a provider returns for questions).
    async fn embed_queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            out.push(self.embed_query(t).await?);
        }
        Ok(out)
    }
}

/// A secret (API key) that never shows up in `Debug` output, logs or errors.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

/// L2 norm of a vector, used to normalise and to show users what they got.
pub fn l2_norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = l2_norm(a) * l2_norm(b);
    if n == 0.0 {
        0.0
    } else {
        dot / n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "sk-very-secret");
    }

    #[test]
    fn cosine_of_parallel_vectors_is_one() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
