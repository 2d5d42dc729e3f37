//! Any OpenAI-compatible `/v1/embeddings` endpoint: OpenAI itself, vLLM, Ollama,
//! text-embeddings-inference, LiteLLM. The API key comes from an environment variable and never
//! appears in errors or `Debug` output.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::embedder::{Embedder, Embeddings, InputKind, Secret};
use crate::error::{kind_for_status, parse_retry_after, Error, ErrorKind, Result};

/// Default environment variable holding the API key.
pub const DEFAULT_API_KEY_ENV: &str = "OPENAI_API_KEY";

/// OpenAI-compatible settings.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    /// Base URL up to and including `/v1` (`http://localhost:8000/v1` for a local vLLM);
    /// `/embeddings` is appended.
    pub base_url: String,
    /// The model name the server expects.
    pub model: String,
    /// Environment variable with the API key (no key is sent if it is unset or empty).
    pub api_key_env: String,
    /// A key given directly (takes precedence over the environment).
    pub api_key: Option<Secret>,
    /// `dimensions` to request (models that support shortening, e.g. text-embedding-3-*).
    pub dimensions: Option<usize>,
    /// The dimension the model returns when `dimensions` isn't set; `None` means look it up
    /// for known models or ask the server once with a probe text.
    pub expected_dimension: Option<usize>,
    /// Texts per request.
    pub batch_size: usize,
    /// Longest text sent, in characters (longer ones are cut at the end and counted).
    pub max_input_chars: usize,
    /// Time-out of one request.
    pub timeout: Duration,
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        OpenAiOptions {
            base_url: "http://localhost:8000/v1".into(),
            model: crate::catalog::DEFAULT_OPENAI_MODEL.into(),
            api_key_env: DEFAULT_API_KEY_ENV.into(),
            api_key: None,
            dimensions: None,
            expected_dimension: None,
            batch_size: 128,
            max_input_chars: 24_000,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Dimensions of well-known models, so no probe request is needed for them.
fn known_dimension(model: &str) -> Option<usize> {
    crate::catalog::lookup("openai", Some(model)).map(|m| m.dimension)
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct Item {
    index: Option<usize>,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct ResponseUsage {
    prompt_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
    usage: Option<ResponseUsage>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: String,
}

/// The OpenAI-compatible embedder.
#[derive(Debug)]
pub struct OpenAiEmbedder {
    http: reqwest::Client,
    url: String,
    options: OpenAiOptions,
    key: Secret,
    dimension: usize,
}

impl OpenAiEmbedder {
    /// Builds the embedder; if the dimension is neither configured nor known, asks the server
    /// once (one short probe text) so the dimension guard can run before any real work.
    pub async fn connect(options: OpenAiOptions) -> Result<Self> {
        let key = match &options.api_key {
            Some(k) => k.clone(),
            None => Secret::new(std::env::var(&options.api_key_env).unwrap_or_default()),
        };
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        let url = format!("{}/embeddings", options.base_url.trim_end_matches('/'));
        let mut me = OpenAiEmbedder {
            http,
            url,
            key,
            dimension: options
                .dimensions
                .or(options.expected_dimension)
                .or_else(|| known_dimension(&options.model))
                .unwrap_or(0),
            options,
        };
        if me.dimension == 0 {
            let probe = me.request(&["dimension probe".to_string()]).await?;
            me.dimension = probe
                .vectors
                .first()
                .map(|v| v.len())
                .filter(|&d| d > 0)
                .ok_or_else(|| {
                    me.error(
                        ErrorKind::Malformed,
                        None,
                        None,
                        "the probe returned no vector".into(),
                    )
                })?;
        }
        Ok(me)
    }

    fn error(
        &self,
        kind: ErrorKind,
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
    ) -> Error {
        Error::Provider {
            provider: "openai",
            model: self.options.model.clone(),
            endpoint: self.url.clone(),
            kind,
            status,
            retry_after,
            message,
        }
    }

    fn transport(&self, e: reqwest::Error) -> Error {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_builder() {
            ErrorKind::Rejected
        } else {
            ErrorKind::Network
        };
        // Strip the URL reqwest puts in its message: ours is in `endpoint` already.
        self.error(kind, None, None, e.without_url().to_string())
    }

    async fn request(&self, texts: &[String]) -> Result<Embeddings> {
        let mut truncated = 0;
        let max = self.options.max_input_chars;
        let owned: Vec<String>;
        let input: &[String] = if texts.iter().any(|t| t.chars().count() > max) {
            owned = texts
                .iter()
                .map(|t| {
                    if t.chars().count() > max {
                        truncated += 1;
                        tracing::warn!(model = %self.options.model, "text longer than {max} characters truncated");
                        t.chars().take(max).collect()
                    } else {
                        t.clone()
                    }
                })
                .collect();
            &owned
        } else {
            texts
        };
        let mut req = self.http.post(&self.url).json(&Request {
            model: &self.options.model,
            input,
            encoding_format: "float",
            dimensions: self.options.dimensions,
        });
        if !self.key.is_empty() {
            req = req.bearer_auth(self.key.expose());
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let headers = resp.headers();
            let retry_after = headers
                .get("retry-after-ms")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
                .or_else(|| {
                    headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after)
                });
            let body = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&body)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| body.chars().take(500).collect());
            return Err(self.error(kind_for_status(status), Some(status), retry_after, message));
        }
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        let parsed: Response = serde_json::from_slice(&body).map_err(|e| {
            self.error(
                ErrorKind::Malformed,
                Some(status),
                None,
                format!("response is not {{\"data\": [{{\"embedding\": [...]}}]}}: {e}"),
            )
        })?;
        let mut items = parsed.data;
        if items.iter().all(|i| i.index.is_some()) {
            items.sort_by_key(|i| i.index);
        }
        Ok(Embeddings {
            vectors: items.into_iter().map(|i| i.embedding).collect(),
            tokens: parsed.usage.and_then(|u| u.prompt_tokens),
            truncated,
        })
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn provider(&self) -> &'static str {
        "openai"
    }

    fn model_id(&self) -> &str {
        &self.options.model
    }

    fn cache_model(&self) -> String {
        match self.options.dimensions {
            Some(d) => format!("{}:dim{d}", self.options.model),
            None => self.options.model.clone(),
        }
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_batch_size(&self) -> usize {
        self.options.batch_size.max(1)
    }

    fn max_input_chars(&self) -> usize {
        self.options.max_input_chars
    }

    async fn embed(&self, texts: &[String], _kind: InputKind) -> Result<Embeddings> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        self.request(texts).await
    }
}
