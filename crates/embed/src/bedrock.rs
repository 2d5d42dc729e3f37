//! Amazon Bedrock through the AWS SDK's `InvokeModel`: Cohere Embed v3 (multilingual and
//! English; up to 96 texts and 2048 characters per text per call, `input_type` by use, an
//! explicit `truncate`) and Titan Text Embeddings v2 (one text per call, `dimensions`,
//! `normalize`).
//!
//! The SDK's own retries are switched off: the throughput wrapper retries, so that every attempt
//! goes through the rate limiter and is counted. Failures are classified from the SDK's error
//! variants and HTTP status, never from message text.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::Client;
use serde::{Deserialize, Serialize};

use crate::embedder::{Embedder, Embeddings, InputKind};
use crate::error::{kind_for_status, parse_retry_after, Error, ErrorKind, Result};

/// Default Bedrock model: what the platform used.
pub use crate::catalog::DEFAULT_BEDROCK_MODEL;

/// Cohere v3's per-call limits on Bedrock.
pub const COHERE_MAX_TEXTS: usize = 96;
/// Longest text Cohere v3 accepts on Bedrock, in characters.
pub const COHERE_MAX_CHARS: usize = 2048;
/// Longest text Titan v2 accepts, in characters.
pub const TITAN_MAX_CHARS: usize = 50_000;

/// What Cohere does with a text that is too long (`truncate` in the request), and what ragshift
/// does with one over 2048 characters before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CohereTruncate {
    /// Refuse: the text's chunk fails with a clear error.
    None,
    /// Keep the end, drop the start.
    Start,
    /// Keep the start, drop the end (default; each cut is counted and logged as a warning).
    #[default]
    End,
}

/// Bedrock settings. Region and endpoint come from the `SdkConfig` the caller builds from
/// `[aws]`.
#[derive(Debug, Clone)]
pub struct BedrockOptions {
    /// `cohere.embed-multilingual-v3`, `cohere.embed-english-v3` or
    /// `amazon.titan-embed-text-v2:0` (an inference-profile id or ARN naming one of them works
    /// too).
    pub model_id: String,
    /// Cohere's truncation policy.
    pub truncate: CohereTruncate,
    /// Titan v2 output size: 256, 512 or 1024.
    pub titan_dimensions: usize,
    /// Titan v2 `normalize`.
    pub titan_normalize: bool,
    /// Texts per Cohere call (at most 96).
    pub batch_size: usize,
    /// Time-out of one attempt.
    pub timeout: Duration,
}

impl Default for BedrockOptions {
    fn default() -> Self {
        BedrockOptions {
            model_id: DEFAULT_BEDROCK_MODEL.into(),
            truncate: CohereTruncate::End,
            titan_dimensions: 1024,
            titan_normalize: true,
            batch_size: COHERE_MAX_TEXTS,
            timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Cohere,
    TitanV2,
}

/// The Bedrock embedder.
#[derive(Debug)]
pub struct BedrockEmbedder {
    client: Client,
    options: BedrockOptions,
    family: Family,
    endpoint: String,
}

#[derive(Serialize)]
struct CohereRequest<'a> {
    texts: &'a [String],
    input_type: &'static str,
    truncate: CohereTruncate,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType { float: Vec<Vec<f32>> },
}

#[derive(Deserialize)]
struct CohereResponse {
    embeddings: CohereEmbeddings,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanRequest<'a> {
    input_text: &'a str,
    dimensions: usize,
    normalize: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanResponse {
    embedding: Vec<f32>,
    input_text_token_count: Option<u64>,
}

fn family_of(model_id: &str) -> Option<Family> {
    if model_id.contains("cohere.embed-multilingual-v3")
        || model_id.contains("cohere.embed-english-v3")
    {
        Some(Family::Cohere)
    } else if model_id.contains("amazon.titan-embed-text-v2") {
        Some(Family::TitanV2)
    } else {
        None
    }
}

/// Cuts `text` to `max` characters (on a character boundary) keeping its start or its end.
fn cut(text: &str, max: usize, keep_end: bool) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    if keep_end {
        text.chars().skip(n - max).collect()
    } else {
        text.chars().take(max).collect()
    }
}

impl BedrockEmbedder {
    /// Builds the embedder on an `SdkConfig` (region, endpoint, credentials) made by the caller.
    pub fn new(sdk: &aws_config::SdkConfig, options: BedrockOptions) -> Result<Self> {
        let family = family_of(&options.model_id).ok_or_else(|| {
            Error::Config(format!(
                "unsupported Bedrock embedding model {}: use cohere.embed-multilingual-v3, \
                 cohere.embed-english-v3 or amazon.titan-embed-text-v2:0",
                options.model_id
            ))
        })?;
        if family == Family::TitanV2 && ![256, 512, 1024].contains(&options.titan_dimensions) {
            return Err(Error::Config(format!(
                "Titan v2 dimensions must be 256, 512 or 1024, not {}",
                options.titan_dimensions
            )));
        }
        let config = aws_sdk_bedrockruntime::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(options.timeout)
                    .build(),
            )
            .build();
        let endpoint = match (sdk.endpoint_url(), sdk.region()) {
            (Some(url), _) => url.to_string(),
            (None, Some(region)) => format!("bedrock-runtime in {region}"),
            (None, None) => "bedrock-runtime (no region)".to_string(),
        };
        Ok(BedrockEmbedder {
            client: Client::from_conf(config),
            options,
            family,
            endpoint,
        })
    }

    fn error(&self, kind: ErrorKind, status: Option<u16>, message: String) -> Error {
        Error::Provider {
            provider: "bedrock",
            model: self.options.model_id.clone(),
            endpoint: self.endpoint.clone(),
            kind,
            status,
            retry_after: None,
            message,
        }
    }

    fn classify(
        &self,
        err: SdkError<InvokeModelError, aws_sdk_bedrockruntime::config::http::HttpResponse>,
    ) -> Error {
        match &err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let retry_after = ctx
                    .raw()
                    .headers()
                    .get("retry-after")
                    .and_then(parse_retry_after);
                let e = ctx.err();
                let kind = match e {
                    InvokeModelError::ThrottlingException(_) => ErrorKind::Throttled,
                    InvokeModelError::ServiceUnavailableException(_)
                    | InvokeModelError::InternalServerException(_)
                    | InvokeModelError::ModelNotReadyException(_) => ErrorKind::Server,
                    InvokeModelError::ModelTimeoutException(_) => ErrorKind::Timeout,
                    InvokeModelError::AccessDeniedException(_)
                    | InvokeModelError::ResourceNotFoundException(_)
                    | InvokeModelError::ServiceQuotaExceededException(_)
                    | InvokeModelError::ValidationException(_)
                    | InvokeModelError::ModelErrorException(_) => ErrorKind::Rejected,
                    _ => kind_for_status(status),
                };
                let message = match (e.code(), e.message()) {
                    (Some(code), Some(msg)) => format!("{code}: {msg}"),
                    (Some(code), None) => code.to_string(),
                    (None, Some(msg)) => msg.to_string(),
                    (None, None) => format!("HTTP {status}"),
                };
                Error::Provider {
                    provider: "bedrock",
                    model: self.options.model_id.clone(),
                    endpoint: self.endpoint.clone(),
                    kind,
                    status: Some(status),
                    retry_after,
                    message,
                }
            }
            SdkError::TimeoutError(_) => self.error(
                ErrorKind::Timeout,
                None,
                format!("timed out: {}", DisplayErrorContext(&err)),
            ),
            SdkError::DispatchFailure(d) => {
                let kind = if d.is_timeout() {
                    ErrorKind::Timeout
                } else if d.is_user() {
                    ErrorKind::Rejected
                } else {
                    ErrorKind::Network
                };
                self.error(kind, None, DisplayErrorContext(&err).to_string())
            }
            SdkError::ResponseError(r) => {
                let status = r.raw().status().as_u16();
                self.error(
                    ErrorKind::Network,
                    Some(status),
                    DisplayErrorContext(&err).to_string(),
                )
            }
            _ => self.error(
                ErrorKind::Rejected,
                None,
                DisplayErrorContext(&err).to_string(),
            ),
        }
    }

    async fn invoke(&self, body: Vec<u8>) -> Result<Vec<u8>> {
        let out = self
            .client
            .invoke_model()
            .model_id(&self.options.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body))
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        Ok(out.body.into_inner())
    }

    fn malformed(&self, what: String) -> Error {
        self.error(ErrorKind::Malformed, None, what)
    }

    async fn embed_cohere(&self, texts: &[String], kind: InputKind) -> Result<Embeddings> {
        let mut truncated = 0u64;
        let mut prepared = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            if t.chars().count() > COHERE_MAX_CHARS {
                match self.options.truncate {
                    CohereTruncate::None => {
                        return Err(Error::Input {
                            provider: "bedrock",
                            model: self.options.model_id.clone(),
                            message: format!(
                            "text {i} has {} characters, more than Cohere's {COHERE_MAX_CHARS}, \
                                 and truncate is NONE (set it to END or START, or split smaller)",
                            t.chars().count()
                        ),
                        })
                    }
                    policy => {
                        truncated += 1;
                        tracing::warn!(
                            model = %self.options.model_id,
                            chars = t.chars().count(),
                            policy = ?policy,
                            "text longer than {COHERE_MAX_CHARS} characters truncated"
                        );
                        prepared.push(cut(t, COHERE_MAX_CHARS, policy == CohereTruncate::Start));
                    }
                }
            } else {
                prepared.push(t.clone());
            }
        }
        let body = serde_json::to_vec(&CohereRequest {
            texts: &prepared,
            input_type: match kind {
                InputKind::Document => "search_document",
                InputKind::Query => "search_query",
            },
            truncate: self.options.truncate,
        })
        .map_err(|e| Error::Config(e.to_string()))?;
        let raw = self.invoke(body).await?;
        let resp: CohereResponse = serde_json::from_slice(&raw).map_err(|e| {
            self.malformed(format!(
                "response is not Cohere's {{\"embeddings\": [[...]]}}: {e}"
            ))
        })?;
        let vectors = match resp.embeddings {
            CohereEmbeddings::Floats(v) | CohereEmbeddings::ByType { float: v } => v,
        };
        Ok(Embeddings {
            vectors,
            tokens: None,
            truncated,
        })
    }

    async fn embed_titan(&self, texts: &[String]) -> Result<Embeddings> {
        let mut out = Embeddings::default();
        let mut tokens = Some(0u64);
        for t in texts {
            let text = if t.chars().count() > TITAN_MAX_CHARS {
                out.truncated += 1;
                tracing::warn!(model = %self.options.model_id, "text longer than {TITAN_MAX_CHARS} characters truncated");
                cut(t, TITAN_MAX_CHARS, false)
            } else {
                t.clone()
            };
            let body = serde_json::to_vec(&TitanRequest {
                input_text: &text,
                dimensions: self.options.titan_dimensions,
                normalize: self.options.titan_normalize,
            })
            .map_err(|e| Error::Config(e.to_string()))?;
            let raw = self.invoke(body).await?;
            let resp: TitanResponse = serde_json::from_slice(&raw).map_err(|e| {
                self.malformed(format!(
                    "response is not Titan's {{\"embedding\": [...]}}: {e}"
                ))
            })?;
            tokens = match (tokens, resp.input_text_token_count) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            out.vectors.push(resp.embedding);
        }
        out.tokens = tokens;
        Ok(out)
    }
}

#[async_trait]
impl Embedder for BedrockEmbedder {
    fn provider(&self) -> &'static str {
        "bedrock"
    }

    fn model_id(&self) -> &str {
        &self.options.model_id
    }

    fn cache_model(&self) -> String {
        match self.family {
            // Truncation only changes over-long texts, whose vectors differ only in that the
            // platform's were made the same way (END); keep the key equal to the model id so
            // vectors seeded from the platform's store match.
            Family::Cohere => self.options.model_id.clone(),
            Family::TitanV2 => format!(
                "{}:dim{}:norm{}",
                self.options.model_id, self.options.titan_dimensions, self.options.titan_normalize
            ),
        }
    }

    fn dimension(&self) -> usize {
        match self.family {
            Family::Cohere => 1024,
            Family::TitanV2 => self.options.titan_dimensions,
        }
    }

    fn max_batch_size(&self) -> usize {
        match self.family {
            Family::Cohere => self.options.batch_size.clamp(1, COHERE_MAX_TEXTS),
            Family::TitanV2 => 1,
        }
    }

    fn max_input_chars(&self) -> usize {
        match self.family {
            Family::Cohere => COHERE_MAX_CHARS,
            Family::TitanV2 => TITAN_MAX_CHARS,
        }
    }

    async fn embed(&self, texts: &[String], kind: InputKind) -> Result<Embeddings> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        match self.family {
            Family::Cohere => self.embed_cohere(texts, kind).await,
            Family::TitanV2 => self.embed_titan(texts).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_start_or_end_on_char_boundaries() {
        assert_eq!(cut("héllo", 3, false), "hél");
        assert_eq!(cut("héllo", 3, true), "llo");
        assert_eq!(cut("abc", 5, false), "abc");
    }

    #[test]
    fn families() {
        assert_eq!(
            family_of("cohere.embed-multilingual-v3"),
            Some(Family::Cohere)
        );
        assert_eq!(
            family_of("us.cohere.embed-english-v3"),
            Some(Family::Cohere)
        );
        assert_eq!(
            family_of("amazon.titan-embed-text-v2:0"),
            Some(Family::TitanV2)
        );
        assert_eq!(family_of("anthropic.claude"), None);
    }
}
