//! One error type for every provider, so the caller can decide what to do (retry, give up, tell
//! the user) from a [`ErrorKind`], never from message text.
//!
//! Errors name the provider, the model and the endpoint; they never carry credentials (API keys
//! are held in [`crate::Secret`], whose `Debug` is redacted).

use std::path::PathBuf;
use std::time::Duration;

use ragshift_retry::StopReason;

/// What went wrong, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The provider said "slow down" (HTTP 429, Bedrock `ThrottlingException`): retry later.
    Throttled,
    /// The provider failed on its side (HTTP 5xx, `ServiceUnavailable`, `ModelNotReady`): retry.
    Server,
    /// The request timed out (client time-out or the provider's `ModelTimeoutException`): retry.
    Timeout,
    /// The request never reached the provider or the connection broke: retry.
    Network,
    /// The provider rejected the request itself (4xx other than 429): retrying won't help.
    Rejected,
    /// The provider answered with something that isn't the documented response shape.
    Malformed,
}

impl ErrorKind {
    /// Whether a request that failed this way may succeed if sent again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Network
        )
    }
}

/// Everything that can go wrong while embedding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local model's files are not where they were looked for.
    #[error(
        "local embedding model not found at {}: {missing} is missing. Run scripts/setup-model.sh \
         to install all-MiniLM-L6-v2 there, or point the model directory at a \
         sentence-transformers folder (config.json, model.safetensors, tokenizer.json, 1_Pooling)",
        path.display()
    )]
    ModelMissing {
        /// The model directory that was searched.
        path: PathBuf,
        /// The first required file that is absent.
        missing: String,
    },

    /// The local model's files exist but could not be loaded or run.
    #[error("local embedding model at {}: {message}", path.display())]
    Model {
        /// The model directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },

    /// One request to a remote provider failed.
    #[error("{provider} embedding with {model} at {endpoint} failed ({kind:?}{}): {message}",
        status.map(|s| format!(", HTTP {s}")).unwrap_or_default())]
    Provider {
        /// `bedrock`, `openai`, …
        provider: &'static str,
        /// The model id.
        model: String,
        /// The endpoint (base URL or region), without credentials.
        endpoint: String,
        /// How the failure is classified for retries.
        kind: ErrorKind,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// How long the provider asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The provider's own message (or the transport error).
        message: String,
    },

    /// A retryable failure kept happening until the attempt cap (`[embedding] max_attempts`) or
    /// the time budget (`[retry] budget_secs`) ran out.
    #[error("gave up after {attempts} attempts in {:.1}s ({reason}): {last}", .elapsed.as_secs_f64())]
    GaveUp {
        /// How many requests were sent.
        attempts: u32,
        /// Time from the first request to giving up.
        elapsed: Duration,
        /// Which limit stopped the retries.
        reason: StopReason,
        /// The last failure, with the provider's message.
        last: Box<Error>,
    },

    /// The embedder's vectors don't fit the target column.
    #[error(
        "dimension mismatch: the embedder produces {embedder_dim}-dimensional vectors but \
         {table} stores vector({column_dim}); choose a model (or a `dimensions` setting) with \
         {column_dim} dimensions, or recreate the table for {embedder_dim}. Nothing was written"
    )]
    DimensionMismatch {
        /// The embedder's dimension.
        embedder_dim: usize,
        /// The target column's dimension.
        column_dim: usize,
        /// The target table (and column) as the user named it.
        table: String,
    },

    /// A text cannot be sent as it is (too long with truncation off, or empty where refused).
    #[error("{provider} embedding with {model}: {message}")]
    Input {
        /// The provider.
        provider: &'static str,
        /// The model id.
        model: String,
        /// What is wrong with the input.
        message: String,
    },

    /// The settings given to a provider are unusable.
    #[error("embedding configuration: {0}")]
    Config(String),

    /// Reading or writing the embedding cache failed.
    #[error("embedding cache: {message}")]
    Cache {
        /// What failed.
        message: String,
        /// The database error, if any.
        #[source]
        source: Option<tokio_postgres::Error>,
    },

    /// The run's shared budget (in the target's run journal) could not be reached.
    #[error("the run's embedding budget ({budget}): {message}; check the target database")]
    Budget {
        /// Where the budget is.
        budget: String,
        /// What failed.
        message: String,
    },

    /// The run was cancelled (Ctrl-C) before the work finished.
    #[error("embedding cancelled")]
    Cancelled,
}

impl Error {
    /// The retry classification of this error, if it came from a provider call.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Provider { kind, .. } => Some(*kind),
            Error::GaveUp { last, .. } => last.kind(),
            _ => None,
        }
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Provider { kind, .. } if kind.is_retryable())
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Provider { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn cache(message: impl Into<String>, source: tokio_postgres::Error) -> Self {
        Error::Cache {
            message: message.into(),
            source: Some(source),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses an HTTP `Retry-After` value given in seconds (the form providers use for throttling).
/// HTTP dates are not used by embedding APIs and are ignored.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Classifies an HTTP status code for retries.
pub(crate) fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::Throttled,
        408 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_fractions() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 0.25 "),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn status_classification() {
        assert_eq!(kind_for_status(429), ErrorKind::Throttled);
        assert_eq!(kind_for_status(503), ErrorKind::Server);
        assert_eq!(kind_for_status(400), ErrorKind::Rejected);
        assert!(!ErrorKind::Rejected.is_retryable());
        assert!(ErrorKind::Timeout.is_retryable());
    }

    #[test]
    fn dimension_message_names_both() {
        let e = Error::DimensionMismatch {
            embedder_dim: 384,
            column_dim: 1024,
            table: "public.items.embedding".into(),
        };
        let s = e.to_string();
        assert!(s.contains("384") && s.contains("1024") && s.contains("public.items"));
    }
}
