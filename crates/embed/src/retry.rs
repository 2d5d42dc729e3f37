//! When and how long to wait before sending a failed request again: exponential backoff with
//! jitter, or exactly what the provider asked for (`Retry-After`). Whether to retry at all is
//! decided by [`crate::ErrorKind`], never by message text.

use std::time::Duration;

/// Retry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Requests sent in all, first one included, before giving up.
    pub max_attempts: u32,
    /// Wait before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// Growth of the wait per retry.
    pub multiplier: f64,
    /// Longest wait between two attempts (a provider's `Retry-After` may ask for more and is
    /// honoured).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based). With `retry_after` the
    /// provider's wait plus up to 10 % jitter (so that clients told the same thing don't come
    /// back together); otherwise "equal jitter" backoff: half the exponential wait plus a random
    /// part of the other half.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            let jitter = wait.mul_f64(0.1 * fastrand::f64());
            return wait + jitter;
        }
        let exp = self
            .multiplier
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(30) as i32);
        let base = self.initial_backoff.mul_f64(exp).min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for attempt in 1..20 {
            let d = p.delay(attempt, None);
            let full = p
                .initial_backoff
                .mul_f64(2f64.powi(attempt as i32 - 1))
                .min(p.max_backoff);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured() {
        let p = RetryPolicy::default();
        let d = p.delay(1, Some(Duration::from_secs(7)));
        assert!(d >= Duration::from_secs(7) && d <= Duration::from_millis(7700));
    }
}
