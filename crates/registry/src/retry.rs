//! Retrying AWS calls that were throttled or could not reach the service, with exponential
//! backoff and full jitter; every other failure is returned at once. Decisions come from the
//! classified error kind, never from message text.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use ragshift_aws::{classify, AwsError};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay ceiling before the first retry; doubles each time.
    pub base: Duration,
    /// Largest delay ceiling.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay ceiling before retry number `retry` (0-based): `base * 2^retry`, at most `cap`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(1_u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.cap)
    }

    /// A random delay in `[0, ceiling]` ("full jitter"), so parallel segments don't retry in
    /// lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        ceiling.mul_f64(fastrand::f64())
    }

    /// Runs `call` until it succeeds, fails with a non-retryable error, or attempts run out.
    pub async fn run<T, E, R, F, Fut>(
        &self,
        context: impl fmt::Display,
        mut call: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let mut retry = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let err = classify(&context, &e);
                    if !err.kind.is_retryable() || retry + 1 >= self.max_attempts {
                        return Err(err);
                    }
                    let delay = self.delay(retry);
                    tracing::warn!(
                        "{err}; retrying in {delay:?} (attempt {} of {})",
                        retry + 2,
                        self.max_attempts
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(40), Duration::from_secs(10));
        for retry in 0..12 {
            assert!(b.delay(retry) <= b.ceiling(retry));
        }
    }
}
