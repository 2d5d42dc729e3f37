//! The client side of a budget shared by every worker of a run: instead of the process's own
//! [`crate::RateLimiter`], requests are sent against slices leased from a [`BudgetStore`] (the
//! run journal in the target database), so the configured requests and tokens per window hold
//! for the run as a whole.
//!
//! A slice is good for [`SharedBudget::lease`] (a fortieth of the window, between 100 ms and
//! 2 s); the store counts each grant for [`SharedBudget::hold`] (the window plus a lease and a
//! margin), so requests sent under any set of grants that can reach the provider within one
//! window sum to at most the limit. Throttling answers go to the store at once and lower the
//! rate for every worker; successes are reported with the next lease and raise it again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::ratelimit::RateLimit;

/// What a worker asks the store for (see [`BudgetStore::lease`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetAsk {
    /// Requests wanted: the slice.
    pub requests: u64,
    /// Tokens wanted.
    pub tokens: u64,
    /// Tokens of the request in hand; a grant with fewer is no use.
    pub need_tokens: u64,
    /// Calls that succeeded since the last lease.
    pub succeeded: u64,
    /// How much those successes raise the shared rate.
    pub increase: f64,
    /// The last slice, done with: what was spent of it, so the rest stops counting at once.
    pub spent: Option<SpentSlice>,
}

/// All that was spent of a slice given up (see [`BudgetAsk::spent`]): a process whose demand is
/// below its slice would otherwise hold budget it never spends, and the run would stay under
/// its limit. What was spent, not what is left, so saying it twice is harmless.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpentSlice {
    /// The grant ([`BudgetGrant::grant`]).
    pub grant: i64,
    /// Requests sent under it.
    pub requests: u64,
    /// Tokens spent under it.
    pub tokens: u64,
}

/// What the store granted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetGrant {
    /// Requests granted (0: none fits now).
    pub requests: u64,
    /// Tokens granted.
    pub tokens: u64,
    /// With nothing granted: when to ask again.
    pub wait: Duration,
    /// Which grant this is, to say what was spent of it.
    pub grant: i64,
}

/// Where a run's budget lives (the run journal; see `ragshift_run::JournalBudget`).
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Leases a slice: at least one request and `ask.need_tokens` tokens, or nothing.
    async fn lease(&self, ask: BudgetAsk) -> std::result::Result<BudgetGrant, String>;
    /// Records a throttling answer: the run's rate goes down for every worker.
    async fn throttled(&self) -> std::result::Result<(), String>;
    /// Where the budget is, for messages (`run 01J… in ragshift.budgets`).
    fn describe(&self) -> String;
}

/// The slice a worker holds: spend it until it runs out or `until`.
#[derive(Debug)]
struct Slice {
    grant: i64,
    granted: (u64, u64),
    requests: u64,
    tokens: u64,
    until: Instant,
}

impl Slice {
    /// What was spent of it, when some of it was not.
    fn spent(&self) -> Option<SpentSlice> {
        (self.requests > 0 || self.tokens > 0).then_some(SpentSlice {
            grant: self.grant,
            requests: self.granted.0 - self.requests,
            tokens: self.granted.1 - self.tokens,
        })
    }
}

/// A run's shared budget as one process sees it.
pub struct SharedBudget {
    store: Arc<dyn BudgetStore>,
    limit: RateLimit,
    slice: tokio::sync::Mutex<Option<Slice>>,
    succeeded: AtomicU64,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("store", &self.store.describe())
            .field("limit", &self.limit)
            .finish()
    }
}

/// Consecutive failures to reach the store before a request gives up.
const STORE_ATTEMPTS: u32 = 5;

impl SharedBudget {
    /// The budget in `store`, enforcing `limit` for the whole run.
    pub fn new(store: Arc<dyn BudgetStore>, limit: RateLimit) -> Self {
        SharedBudget {
            store,
            limit,
            slice: tokio::sync::Mutex::new(None),
            succeeded: AtomicU64::new(0),
        }
    }

    /// How long a leased slice may be spent: a fortieth of the window, between 100 ms and 2 s
    /// (short, so a dead worker's last slice is small; long enough that leasing stays a few
    /// statements per worker per second).
    pub fn lease(window: Duration) -> Duration {
        (window / 40).clamp(Duration::from_millis(100), Duration::from_secs(2))
    }

    /// How long the store counts a grant: the window, the lease during which it may be spent,
    /// and a margin (half a lease, at least 250 ms) for the request to reach the provider.
    pub fn hold(window: Duration) -> Duration {
        let lease = Self::lease(window);
        window + lease + (lease / 2).max(Duration::from_millis(250))
    }

    /// The limits in force.
    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Requests per slice: the limit's share of one lease (at least one).
    fn slice_requests(&self) -> u64 {
        let share = Self::lease(self.limit.window).as_secs_f64() / self.limit.window.as_secs_f64();
        self.limit
            .requests
            .map_or(u64::MAX / 4, |r| ((r as f64 * share) as u64).max(1))
    }

    /// Tokens per slice (at least the request in hand); 0 when tokens are unlimited.
    fn slice_tokens(&self, need: u64) -> u64 {
        let share = Self::lease(self.limit.window).as_secs_f64() / self.limit.window.as_secs_f64();
        self.limit
            .tokens
            .map_or(0, |t| ((t as f64 * share) as u64).max(need))
    }

    /// Waits until a request of `tokens` fits the run's budget and takes it from the slice.
    pub async fn acquire(&self, tokens: u64, cancel: &CancellationToken) -> Result<()> {
        let tokens = if self.limit.tokens.is_some() {
            tokens
        } else {
            0
        };
        let mut slice = tokio::select! {
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            s = self.slice.lock() => s,
        };
        let mut failures = 0;
        // What was spent of a slice given up goes with the next lease (the rest stops counting);
        // it is kept until a lease has carried it.
        let mut spent = None;
        loop {
            if let Some(s) = slice.as_mut() {
                if Instant::now() < s.until && s.requests >= 1 && s.tokens >= tokens {
                    s.requests -= 1;
                    s.tokens -= tokens;
                    return Ok(());
                }
            }
            if let Some(s) = slice.take() {
                spent = s.spent();
            }
            let succeeded = self.succeeded.swap(0, Ordering::Relaxed);
            let ask = BudgetAsk {
                requests: self.slice_requests(),
                tokens: self.slice_tokens(tokens),
                need_tokens: tokens,
                succeeded,
                increase: self.increase(succeeded),
                spent,
            };
            let asked_at = Instant::now();
            let wait = match self.store.lease(ask).await {
                Ok(g) if g.requests >= 1 && g.tokens >= tokens => {
                    *slice = Some(Slice {
                        grant: g.grant,
                        granted: (g.requests, g.tokens),
                        requests: g.requests,
                        tokens: g.tokens,
                        // From before the ask: the store's grant is no earlier than that.
                        until: asked_at + Self::lease(self.limit.window),
                    });
                    spent = None;
                    failures = 0;
                    continue;
                }
                Ok(g) => {
                    spent = None;
                    g.wait.clamp(Duration::from_millis(5), self.limit.window)
                }
                Err(message) => {
                    self.succeeded.fetch_add(succeeded, Ordering::Relaxed);
                    failures += 1;
                    if failures >= STORE_ATTEMPTS {
                        return Err(Error::Budget {
                            budget: self.store.describe(),
                            message,
                        });
                    }
                    tracing::warn!(budget = %self.store.describe(), error = %message,
                        "leasing from the run's budget failed; retrying");
                    Duration::from_millis(200 << failures)
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Records a call that succeeded (reported with the next lease).
    pub fn succeeded(&self) {
        self.succeeded.fetch_add(1, Ordering::Relaxed);
    }

    /// Reports the successes not yet reported (they ride on the next lease otherwise) and gives
    /// up the slice, saying what was spent of it: call it when the worker is done, so the run's report
    /// counts every call and the rest of the slice serves the other workers at once.
    pub async fn flush(&self) {
        let mut slice = self.slice.lock().await;
        let spent = slice.take().and_then(|s| s.spent());
        let succeeded = self.succeeded.swap(0, Ordering::Relaxed);
        if succeeded == 0 && spent.is_none() {
            return;
        }
        let ask = BudgetAsk {
            succeeded,
            increase: self.increase(succeeded),
            spent,
            ..BudgetAsk::default()
        };
        if let Err(error) = self.store.lease(ask).await {
            self.succeeded.fetch_add(succeeded, Ordering::Relaxed);
            tracing::warn!(budget = %self.store.describe(), %error,
                "could not report the last calls to the run's budget");
        }
    }

    /// Reports a throttling answer to the store, so every worker slows down.
    pub async fn throttled(&self) {
        if let Err(error) = self.store.throttled().await {
            tracing::warn!(budget = %self.store.describe(), %error,
                "could not record a throttling answer in the run's budget");
        }
    }

    /// The additive increase for `succeeded` calls: a fifth of the limit per window's worth of
    /// successes, so a rate halved by throttling is back to the limit after about five windows
    /// of calls (not at once, which would run straight into the throttling again).
    fn increase(&self, succeeded: u64) -> f64 {
        let per_window = self.limit.requests.unwrap_or(100).max(1);
        0.2 * succeeded as f64 / per_window as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_counts_for_the_window_and_a_lease_and_a_half() {
        let minute = Duration::from_secs(60);
        assert_eq!(SharedBudget::lease(minute), Duration::from_millis(1500));
        assert_eq!(SharedBudget::hold(minute), Duration::from_millis(62_250));
        assert_eq!(
            SharedBudget::lease(Duration::from_secs(2)),
            Duration::from_millis(100)
        );
        assert_eq!(
            SharedBudget::lease(Duration::from_secs(3600)),
            Duration::from_secs(2)
        );
    }
}
