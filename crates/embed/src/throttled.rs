//! The wrapper every provider goes through: it answers from the cache what it can, fills
//! batches to the provider's maximum, keeps several requests in flight, stays under the
//! requests/min and tokens/min limits, retries throttling, 5xx and time-outs under the one
//! [`Policy`] (backoff with jitter or the provider's `Retry-After`, an attempt cap and a time
//! budget), counts usage, and stops cleanly when cancelled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ragshift_retry::{Attempts, Next, Policy, Verdict};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::budget::SharedBudget;
use crate::cache::{content_hash, ContentHash, EmbeddingCache};
use crate::embedder::{Embedder, Embeddings, InputKind};
use crate::error::{Error, ErrorKind, Result};
use crate::ratelimit::{RateLimit, RateLimiter};
use crate::usage::{estimate_tokens, EmbedReport, PriceTable, Usage};

/// Throughput settings, the same for every provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputOptions {
    /// Texts per request; `None` (or more than the provider allows) means the provider's
    /// maximum.
    pub batch_size: Option<usize>,
    /// Requests in flight at once (across every caller of this wrapper).
    pub max_in_flight: usize,
    /// Requests and tokens per window.
    pub rate: RateLimit,
    /// Backoff, attempt cap (`[embedding] max_attempts`) and time budget (`[retry]`) per request.
    pub retry: Policy,
}

impl Default for ThroughputOptions {
    fn default() -> Self {
        ThroughputOptions {
            batch_size: None,
            max_in_flight: 4,
            rate: RateLimit::default(),
            retry: Policy {
                max_attempts: Some(8),
                ..Policy::default()
            },
        }
    }
}

/// A provider behind batching, limits, retries, usage accounting and (optionally) the cache.
/// It is itself an [`Embedder`] whose `embed` takes any number of texts.
pub struct Throttled {
    inner: Arc<dyn Embedder>,
    batch_size: usize,
    in_flight: Arc<Semaphore>,
    limiter: RateLimiter,
    budget: std::sync::OnceLock<Arc<SharedBudget>>,
    retry: Policy,
    cache: Option<Arc<dyn EmbeddingCache>>,
    cache_model: String,
    cancel: CancellationToken,
    usage: Mutex<Usage>,
    prices: PriceTable,
}

impl std::fmt::Debug for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttled")
            .field("provider", &self.inner.provider())
            .field("model", &self.inner.model_id())
            .field("batch_size", &self.batch_size)
            .field("cache", &self.cache.is_some())
            .finish()
    }
}

impl Throttled {
    /// Wraps `inner` with `options`.
    pub fn new(inner: Arc<dyn Embedder>, options: ThroughputOptions) -> Self {
        let max = inner.max_batch_size().max(1);
        let batch_size = options.batch_size.unwrap_or(max).clamp(1, max);
        let usage = Usage {
            provider: inner.provider().to_string(),
            model: inner.model_id().to_string(),
            ..Usage::default()
        };
        Throttled {
            cache_model: inner.cache_model(),
            inner,
            batch_size,
            in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            limiter: RateLimiter::new(options.rate),
            budget: std::sync::OnceLock::new(),
            retry: options.retry,
            cache: None,
            cancel: CancellationToken::new(),
            usage: Mutex::new(usage),
            prices: PriceTable::default(),
        }
    }

    /// Answers documents from `cache` when it can, and stores what it pays for there.
    pub fn with_cache(mut self, cache: Arc<dyn EmbeddingCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Stops waiting and sending when `cancel` fires (wire it to Ctrl-C); calls then end with
    /// [`Error::Cancelled`].
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Sends against `budget`, the run's budget shared with its other workers, instead of this
    /// process's own limiter; throttling answers lower the rate for all of them.
    pub fn with_budget(self, budget: Arc<SharedBudget>) -> Self {
        self.join_budget(budget);
        self
    }

    /// Like [`Throttled::with_budget`] for an embedder already shared (a local rebuild joins
    /// its run's budget once the run is in the journal, before any bot starts). A wrapper joins
    /// one budget only: a second one is ignored (and logged).
    pub fn join_budget(&self, budget: Arc<SharedBudget>) {
        if self.budget.set(budget).is_err() {
            tracing::warn!("the embedder already spends a run's budget; a second one is ignored");
        }
    }

    /// Reports the last successful calls to the run's shared budget, if there is one (call it
    /// when this worker's work is done).
    pub async fn flush_budget(&self) {
        if let Some(budget) = self.budget.get() {
            budget.flush().await;
        }
    }

    /// The limits this wrapper enforces (per process, or for the run with a shared budget).
    pub fn rate_limit(&self) -> &RateLimit {
        self.limiter.limit()
    }

    /// Prices for the cost estimate (the built-in table by default).
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// The provider inside.
    pub fn inner(&self) -> &Arc<dyn Embedder> {
        &self.inner
    }

    /// Texts per request actually used.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Counters so far (without the cost estimate).
    pub fn usage(&self) -> Usage {
        self.usage.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// The usage report so far, with the cost estimate.
    pub fn report(&self) -> EmbedReport {
        EmbedReport::new([self.usage()], &self.prices)
    }

    fn count(&self, f: impl FnOnce(&mut Usage)) {
        if let Ok(mut u) = self.usage.lock() {
            f(&mut u);
        }
    }

    /// Sends one batch, with limits and retries.
    async fn send_batch(&self, texts: &[String], kind: InputKind) -> Result<Embeddings> {
        let chars: u64 = texts.iter().map(|t| t.chars().count() as u64).sum();
        let estimate: u64 = texts
            .iter()
            .map(|t| estimate_tokens(t.chars().count() as u64))
            .sum();
        // Counted from the first request sent, not from the wait for a slot or the rate limit.
        let mut attempts: Option<Attempts> = None;
        loop {
            if self.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let slot = tokio::select! {
                _ = self.cancel.cancelled() => return Err(Error::Cancelled),
                s = self.in_flight.clone().acquire_owned() => s.map_err(|_| Error::Cancelled)?,
            };
            let mut permit = match self.budget.get() {
                Some(budget) => {
                    budget.acquire(estimate, &self.cancel).await?;
                    None
                }
                None => Some(self.limiter.acquire(estimate, &self.cancel).await?),
            };
            if let Some(a) = &mut attempts {
                a.record_attempt();
            }
            attempts.get_or_insert_with(|| self.retry.attempts());
            self.count(|u| u.calls += 1);
            let result = tokio::select! {
                _ = self.cancel.cancelled() => return Err(Error::Cancelled),
                r = self.inner.embed(texts, kind) => r,
            };
            let result = result.and_then(|out| self.validate(texts.len(), out));
            match result {
                Ok(out) => {
                    if let (Some(t), Some(p)) = (out.tokens, permit.as_mut()) {
                        p.set_tokens(t);
                    }
                    drop(permit);
                    if let Some(budget) = self.budget.get() {
                        budget.succeeded();
                    }
                    drop(slot);
                    self.count(|u| {
                        u.texts += texts.len() as u64;
                        u.characters += chars;
                        match out.tokens {
                            Some(t) => u.tokens += t,
                            None => {
                                u.tokens += estimate;
                                u.tokens_estimated += estimate;
                            }
                        }
                        u.truncated += out.truncated;
                    });
                    return Ok(out);
                }
                Err(e) => {
                    drop(permit);
                    drop(slot);
                    if !e.is_retryable() {
                        return Err(e);
                    }
                    if e.kind() == Some(ErrorKind::Throttled) {
                        self.count(|u| u.throttled += 1);
                        if let Some(budget) = self.budget.get() {
                            budget.throttled().await;
                        }
                    }
                    let Some(tries) = &attempts else {
                        return Err(e);
                    };
                    let verdict = match e.retry_after() {
                        Some(wait) => Verdict::RetryAfter(wait),
                        None => Verdict::Retry,
                    };
                    let wait = match tries.after_failure(verdict) {
                        Next::Wait(wait) => wait,
                        Next::Stop(reason) => {
                            return Err(Error::GaveUp {
                                attempts: tries.made(),
                                elapsed: tries.elapsed(),
                                reason,
                                last: Box::new(e),
                            })
                        }
                    };
                    tracing::warn!(
                        provider = self.inner.provider(),
                        model = self.inner.model_id(),
                        attempt = tries.made(),
                        wait_ms = wait.as_millis() as u64,
                        error = %e,
                        "embedding request failed; retrying"
                    );
                    self.count(|u| u.retries += 1);
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(Error::Cancelled),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn validate(&self, n: usize, out: Embeddings) -> Result<Embeddings> {
        let dim = self.inner.dimension();
        let bad = if out.vectors.len() != n {
            Some(format!("{} vectors for {n} texts", out.vectors.len()))
        } else {
            out.vectors
                .iter()
                .find(|v| v.len() != dim)
                .map(|v| format!("a vector of {} dimensions, expected {dim}", v.len()))
        };
        match bad {
            None => Ok(out),
            Some(message) => Err(Error::Provider {
                provider: self.inner.provider(),
                model: self.inner.model_id().to_string(),
                endpoint: String::new(),
                kind: ErrorKind::Malformed,
                status: None,
                retry_after: None,
                message: format!("the provider returned {message}"),
            }),
        }
    }
}

#[async_trait]
impl Embedder for Throttled {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn cache_model(&self) -> String {
        self.cache_model.clone()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn max_batch_size(&self) -> usize {
        usize::MAX
    }

    fn max_input_chars(&self) -> usize {
        self.inner.max_input_chars()
    }

    async fn embed(&self, texts: &[String], kind: InputKind) -> Result<Embeddings> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        // Identical texts are embedded once; documents already paid for come from the cache.
        let hashes: Vec<ContentHash> = texts.iter().map(|t| content_hash(t)).collect();
        let mut unique: Vec<usize> = Vec::new();
        let mut first: HashMap<ContentHash, usize> = HashMap::new();
        for (i, h) in hashes.iter().enumerate() {
            first.entry(*h).or_insert_with(|| {
                unique.push(i);
                i
            });
        }
        let mut found: HashMap<ContentHash, Vec<f32>> = HashMap::new();
        let use_cache = kind == InputKind::Document;
        if let (true, Some(cache)) = (use_cache, &self.cache) {
            let keys: Vec<ContentHash> = unique.iter().map(|&i| hashes[i]).collect();
            found = cache
                .get(&self.cache_model, self.dimension(), &keys)
                .await?;
            let hits = found.len() as u64;
            self.count(|u| u.cache_hits += hits);
        }
        let todo: Vec<usize> = unique
            .into_iter()
            .filter(|i| !found.contains_key(&hashes[*i]))
            .collect();

        let batches: Vec<Vec<usize>> = todo.chunks(self.batch_size).map(|c| c.to_vec()).collect();
        let calls = batches.iter().map(|idx| {
            let batch: Vec<String> = idx.iter().map(|&i| texts[i].clone()).collect();
            async move {
                let out = self.send_batch(&batch, kind).await?;
                Ok::<_, Error>((idx.clone(), out))
            }
        });
        let results = futures::future::try_join_all(calls).await?;

        let mut tokens: Option<u64> = None;
        let mut truncated = 0;
        let mut fresh: Vec<(ContentHash, Vec<f32>)> = Vec::with_capacity(todo.len());
        for (idx, out) in results {
            truncated += out.truncated;
            if let Some(t) = out.tokens {
                tokens = Some(tokens.unwrap_or(0) + t);
            }
            for (i, v) in idx.into_iter().zip(out.vectors) {
                fresh.push((hashes[i], v));
            }
        }
        if let (true, Some(cache)) = (use_cache, &self.cache) {
            if !fresh.is_empty() {
                cache.put(&self.cache_model, &fresh).await?;
            }
        }
        for (h, v) in fresh {
            found.insert(h, v);
        }
        let vectors = hashes
            .iter()
            .map(|h| {
                found.get(h).cloned().ok_or_else(|| {
                    Error::Config("internal: a text was neither cached nor embedded".into())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Embeddings {
            vectors,
            tokens,
            truncated,
        })
    }
}
