//! A client-side limiter for requests and tokens per window (providers quote "per minute").
//!
//! It keeps a log of recent requests. A request holds a [`Permit`] while it is in flight and is
//! stamped into the log when the permit drops, i.e. when its response has arrived: so the
//! provider, whose clock starts when the request reaches it, never sees more than the limit in
//! any window, however the network reorders or delays requests. The price is one request
//! latency per window, small against a minute.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Limits on what may be sent per window. `None` means unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// Most requests per window.
    pub requests: Option<u64>,
    /// Most input tokens per window (estimated from characters where the provider doesn't say).
    pub tokens: Option<u64>,
    /// The window the limits apply to: one minute for providers' quotas; tests and benchmarks
    /// use shorter ones.
    pub window: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests: None,
            tokens: None,
            window: Duration::from_secs(60),
        }
    }
}

impl RateLimit {
    /// Limits per minute, the way providers state them.
    pub fn per_minute(requests: Option<u64>, tokens: Option<u64>) -> Self {
        RateLimit {
            requests,
            tokens,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// (when the request finished, its tokens), oldest first.
    log: VecDeque<(Instant, u64)>,
    /// Requests holding a permit, and their tokens.
    in_flight: u64,
    in_flight_tokens: u64,
}

#[derive(Debug)]
struct Shared {
    limit: RateLimit,
    state: Mutex<State>,
    released: Notify,
}

/// The limiter; cheap to clone, all clones share one budget.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

/// Permission to send one request; stamp it into the window by dropping it when the response
/// has arrived (or the request failed).
#[derive(Debug)]
pub struct Permit {
    shared: Arc<Shared>,
    tokens: u64,
    reserved: u64,
}

impl Permit {
    /// Records the tokens the provider reported, replacing the estimate the permit was taken
    /// with.
    pub fn set_tokens(&mut self, tokens: u64) {
        self.tokens = tokens;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.in_flight_tokens = s.in_flight_tokens.saturating_sub(self.reserved);
            s.log.push_back((Instant::now(), self.tokens));
        }
        self.shared.released.notify_waiters();
    }
}

enum Decision {
    Go,
    /// Wait until this instant (an entry leaves the window) or until a permit is released.
    Wait(Option<Instant>),
}

impl RateLimiter {
    /// A limiter enforcing `limit`.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            shared: Arc::new(Shared {
                limit,
                state: Mutex::new(State::default()),
                released: Notify::new(),
            }),
        }
    }

    /// The limits in force.
    pub fn limit(&self) -> &RateLimit {
        &self.shared.limit
    }

    fn decide(&self, tokens: u64) -> Decision {
        let limit = &self.shared.limit;
        let Ok(mut s) = self.shared.state.lock() else {
            return Decision::Go;
        };
        let now = Instant::now();
        while let Some(&(t, _)) = s.log.front() {
            if now.duration_since(t) >= limit.window {
                s.log.pop_front();
            } else {
                break;
            }
        }
        let oldest_expiry = s.log.front().map(|&(t, _)| t + limit.window);
        let count = s.log.len() as u64 + s.in_flight;
        if let Some(max) = limit.requests {
            if count >= max.max(1) {
                return Decision::Wait(oldest_expiry);
            }
        }
        if let Some(max) = limit.tokens {
            let used: u64 = s.log.iter().map(|&(_, t)| t).sum::<u64>() + s.in_flight_tokens;
            // A request bigger than the whole budget may go alone into an empty window.
            if used + tokens > max && count > 0 {
                return Decision::Wait(oldest_expiry);
            }
        }
        s.in_flight += 1;
        s.in_flight_tokens += tokens;
        Decision::Go
    }

    /// Waits until a request of `tokens` fits the limits, then reserves it.
    pub async fn acquire(&self, tokens: u64, cancel: &CancellationToken) -> Result<Permit> {
        loop {
            let released = self.shared.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            match self.decide(tokens) {
                Decision::Go => {
                    return Ok(Permit {
                        shared: self.shared.clone(),
                        tokens,
                        reserved: tokens,
                    })
                }
                Decision::Wait(until) => {
                    let until = until.unwrap_or_else(|| Instant::now() + self.shared.limit.window);
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(Error::Cancelled),
                        _ = tokio::time::sleep_until(until) => {}
                        _ = &mut released => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_per_window_are_capped() {
        let limiter = RateLimiter::new(RateLimit {
            requests: Some(3),
            tokens: None,
            window: Duration::from_secs(10),
        });
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let mut finished = Vec::new();
        for _ in 0..7 {
            let p = limiter.acquire(1, &cancel).await.expect("permit");
            finished.push(Instant::now().duration_since(start));
            drop(p);
        }
        // Three per window: 0,0,0, then 10,10,10, then 20.
        let secs: Vec<u64> = finished.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![0, 0, 0, 10, 10, 10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_per_window_are_capped_but_a_big_request_goes_alone() {
        let limiter = RateLimiter::new(RateLimit {
            requests: None,
            tokens: Some(100),
            window: Duration::from_secs(60),
        });
        let cancel = CancellationToken::new();
        let start = Instant::now();
        drop(limiter.acquire(60, &cancel).await.expect("permit"));
        drop(limiter.acquire(40, &cancel).await.expect("permit"));
        assert_eq!(Instant::now(), start);
        drop(limiter.acquire(500, &cancel).await.expect("permit"));
        assert_eq!(Instant::now().duration_since(start).as_secs(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_the_wait() {
        let limiter = RateLimiter::new(RateLimit {
            requests: Some(1),
            tokens: None,
            window: Duration::from_secs(3600),
        });
        let cancel = CancellationToken::new();
        let _held = limiter.acquire(1, &cancel).await.expect("permit");
        let c2 = cancel.clone();
        let waiter = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(1, &c2).await.map(|_| ()) }
        });
        cancel.cancel();
        assert!(matches!(
            waiter.await.expect("joins"),
            Err(Error::Cancelled)
        ));
    }
}
