//! The one retry policy of ragshift. Every call that is worth repeating — a copy partition, a
//! DynamoDB read or status update, an embedding request, an ECS `RunTask` — goes through
//! [`Policy`], so a failover or a throttling storm is ridden out the same way everywhere and
//! attempts are never multiplied by a second loop (the AWS SDK's own retries are turned off
//! where this policy applies).
//!
//! - Whether to retry is decided by the caller's classification of the error into a
//!   [`Verdict`] (SQLSTATE for PostgreSQL: [`pg::classify`]; the SDK's error kind for AWS), never
//!   by message text.
//! - How long to wait: exponential backoff with "equal jitter" (half the step plus a random part
//!   of the other half), capped, or what the server asked for (`Retry-After`) plus a little jitter.
//! - When to stop: a total time budget (long enough to ride out an Aurora failover: minutes),
//!   and optionally an attempt cap; whichever comes first. [`GaveUp`] says which.
//!
//! ```
//! # async fn demo() {
//! use ragshift_retry::{Policy, Verdict};
//! let policy = Policy::default();
//! let answer = policy
//!     .run("reading the answer", |_e: &std::io::Error| Verdict::Retry, || async { Ok::<_, std::io::Error>(42) })
//!     .await;
//! assert_eq!(answer.ok(), Some(42));
//! # }
//! ```

pub mod pg;

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

/// What a failed attempt means for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transient (connection lost, throttled, serialization failure): try again after backoff.
    Retry,
    /// The server said how long to wait (`Retry-After`); at least that, plus a little jitter.
    RetryAfter(Duration),
    /// Retrying cannot help (bad input, permission, constraint violation).
    Fail,
}

/// Why a [`Policy`] stopped trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The error is not one that retrying can fix.
    NotRetryable,
    /// The attempt cap was reached.
    Attempts(u32),
    /// The next attempt would start after the time budget.
    Budget(Duration),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRetryable => f.write_str("not retryable"),
            Self::Attempts(n) => write!(f, "the limit of {n} attempts was reached"),
            Self::Budget(b) => write!(f, "the retry budget of {} was used up", seconds(*b)),
        }
    }
}

/// A duration as people set it: whole seconds when it is, else milliseconds or fractions.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Wait before the first retry (before jitter).
    pub initial: Duration,
    /// Growth of the wait per retry.
    pub multiplier: f64,
    /// Longest wait between two attempts (a server's `Retry-After` may ask for more; it is
    /// honoured while the budget allows).
    pub max_delay: Duration,
    /// Total time from the first attempt after which no new attempt is started.
    pub budget: Duration,
    /// Attempts in all, the first included; `None`: only the budget limits them.
    pub max_attempts: Option<u32>,
}

/// Five minutes: longer than an Aurora/RDS failover (typically 30–120 s) and a DynamoDB or
/// Bedrock throttling burst, short enough that a dead endpoint is reported the same night.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(300);

impl Default for Policy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            budget: DEFAULT_BUDGET,
            max_attempts: None,
        }
    }
}

impl Policy {
    /// The wait before retry number `retry` (1-based): with `retry_after`, the server's wait
    /// plus up to 10 % jitter (so clients told the same thing don't come back together);
    /// otherwise half of `initial * multiplier^(retry-1)` (capped at `max_delay`) plus a random
    /// part of the other half.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait + wait.mul_f64(0.1 * fastrand::f64());
        }
        let exp = self
            .multiplier
            .max(1.0)
            .powi(retry.saturating_sub(1).min(30) as i32);
        let step = self.initial.mul_f64(exp).min(self.max_delay);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Starts counting attempts for one operation, for callers that drive their own loop (e.g.
    /// to reconnect between attempts).
    pub fn attempts(&self) -> Attempts {
        Attempts {
            policy: self.clone(),
            started: Instant::now(),
            made: 1,
        }
    }

    /// Runs `op` until it succeeds, fails with an error `classify` calls [`Verdict::Fail`], or the
    /// budget or attempt cap is reached. Each retry is logged with `what`.
    pub async fn run<T, E, C, F, Fut>(
        &self,
        what: impl fmt::Display,
        classify: C,
        mut op: F,
    ) -> Result<T, GaveUp<E>>
    where
        C: Fn(&E) -> Verdict,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let mut attempts = self.attempts();
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(error) => match attempts.after_failure(classify(&error)) {
                    Next::Wait(delay) => {
                        tracing::warn!(
                            "{what}: {error}; retrying in {:.1}s (attempt {})",
                            delay.as_secs_f64(),
                            attempts.made() + 1
                        );
                        tokio::time::sleep(delay).await;
                        attempts.record_attempt();
                    }
                    Next::Stop(reason) => return Err(attempts.gave_up(error, reason)),
                },
            }
        }
    }
}

/// The attempts made so far at one operation under a [`Policy`].
#[derive(Debug, Clone)]
pub struct Attempts {
    policy: Policy,
    started: Instant,
    made: u32,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then call [`Attempts::record_attempt`] and try again.
    Wait(Duration),
    /// Stop and report.
    Stop(StopReason),
}

impl Attempts {
    /// Attempts made so far, the first included.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// Time since the first attempt started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Decides, after a failed attempt classified as `verdict`, whether and when to try again.
    pub fn after_failure(&self, verdict: Verdict) -> Next {
        let retry_after = match verdict {
            Verdict::Fail => return Next::Stop(StopReason::NotRetryable),
            Verdict::Retry => None,
            Verdict::RetryAfter(d) => Some(d),
        };
        if let Some(cap) = self.policy.max_attempts {
            if self.made >= cap.max(1) {
                return Next::Stop(StopReason::Attempts(cap.max(1)));
            }
        }
        let delay = self.policy.delay(self.made, retry_after);
        if self.elapsed() + delay > self.policy.budget {
            return Next::Stop(StopReason::Budget(self.policy.budget));
        }
        Next::Wait(delay)
    }

    /// Counts the attempt about to start (after waiting).
    pub fn record_attempt(&mut self) {
        self.made += 1;
    }

    /// The final error, with how many attempts were made and why they stopped.
    pub fn gave_up<E>(&self, error: E, reason: StopReason) -> GaveUp<E> {
        GaveUp {
            error,
            attempts: self.made,
            elapsed: self.elapsed(),
            reason,
        }
    }
}

/// The last error of an operation the policy stopped retrying, and why it stopped.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// Time from the first attempt to giving up.
    pub elapsed: Duration,
    /// Why no further attempt was made.
    pub reason: StopReason,
}

impl<E> GaveUp<E> {
    /// The last attempt's error, for callers that report it their own way.
    pub fn into_inner(self) -> E {
        self.error
    }
}

impl<E: fmt::Display> fmt::Display for GaveUp<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == StopReason::NotRetryable || self.attempts <= 1 {
            return write!(f, "{}", self.error);
        }
        write!(
            f,
            "{} (gave up after {} attempts in {:.1}s: {})",
            self.error,
            self.attempts,
            self.elapsed.as_secs_f64(),
            self.reason
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for GaveUp<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn budgets_read_as_set() {
        let said = |d| StopReason::Budget(d).to_string();
        assert_eq!(
            said(Duration::from_secs(300)),
            "the retry budget of 300s was used up"
        );
        assert_eq!(
            said(Duration::from_millis(250)),
            "the retry budget of 250ms was used up"
        );
        assert_eq!(
            said(Duration::from_millis(1500)),
            "the retry budget of 1.5s was used up"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = Policy::default();
        for retry in 1..40 {
            let step = p
                .initial
                .mul_f64(2f64.powi((retry - 1).min(30)))
                .min(p.max_delay);
            let d = p.delay(retry as u32, None);
            assert!(
                d >= step / 2 && d <= step,
                "retry {retry}: {d:?} not in [{:?}, {step:?}]",
                step / 2
            );
        }
        let told = Duration::from_secs(7);
        let d = p.delay(1, Some(told));
        assert!(d >= told && d <= told.mul_f64(1.1));
    }

    #[test]
    fn stops_on_fail_on_the_attempt_cap_and_on_the_budget() {
        let p = Policy {
            max_attempts: Some(3),
            ..Policy::default()
        };
        let mut a = p.attempts();
        assert_eq!(
            a.after_failure(Verdict::Fail),
            Next::Stop(StopReason::NotRetryable)
        );
        assert!(matches!(a.after_failure(Verdict::Retry), Next::Wait(_)));
        a.record_attempt();
        a.record_attempt();
        assert_eq!(
            a.after_failure(Verdict::Retry),
            Next::Stop(StopReason::Attempts(3))
        );

        let tight = Policy {
            budget: Duration::from_secs(5),
            ..Policy::default()
        };
        let a = tight.attempts();
        assert_eq!(
            a.after_failure(Verdict::RetryAfter(Duration::from_secs(6))),
            Next::Stop(StopReason::Budget(Duration::from_secs(5)))
        );
        assert!(matches!(
            a.after_failure(Verdict::RetryAfter(Duration::from_secs(1))),
            Next::Wait(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_transient_errors_until_success() {
        let calls = Cell::new(0);
        let out = Policy::default()
            .run(
                "test",
                |e: &String| {
                    if e == "transient" {
                        Verdict::Retry
                    } else {
                        Verdict::Fail
                    }
                },
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n < 4 {
                            Err("transient".to_owned())
                        } else {
                            Ok(n)
                        }
                    }
                },
            )
            .await;
        assert_eq!(out.ok(), Some(4));
        assert_eq!(calls.get(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn run_gives_up_at_once_on_a_permanent_error_and_says_why_after_the_budget() {
        let calls = Cell::new(0);
        let err = Policy::default()
            .run(
                "test",
                |_: &String| Verdict::Fail,
                || {
                    calls.set(calls.get() + 1);
                    async { Err::<(), _>("denied".to_owned()) }
                },
            )
            .await
            .expect_err("a permanent error");
        assert_eq!((calls.get(), err.reason), (1, StopReason::NotRetryable));
        assert_eq!(err.to_string(), "denied");

        let short = Policy {
            budget: Duration::from_secs(10),
            ..Policy::default()
        };
        let err = short
            .run(
                "test",
                |_: &String| Verdict::Retry,
                || async { Err::<(), _>("down".to_owned()) },
            )
            .await
            .expect_err("the budget runs out");
        assert_eq!(err.reason, StopReason::Budget(Duration::from_secs(10)));
        assert!(err.attempts > 3, "{} attempts", err.attempts);
        assert!(err.to_string().contains("retry budget of 10s"), "{err}");
    }
}
