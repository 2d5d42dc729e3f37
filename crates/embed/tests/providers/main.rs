//! Providers and the throughput wrapper against local HTTP servers that speak Bedrock's and
//! OpenAI's wire shapes, and the cache against a real PostgreSQL. One test binary, so the heavy
//! dependency tree is linked once.

mod bedrock;
mod cache;
mod mock;
mod openai;
mod throughput;

use std::time::Duration;

use ragshift_embed::{RateLimit, ThroughputOptions};
use ragshift_retry::Policy;

/// Retries without waiting long: tests check behaviour, not timing.
pub fn quick_retry(max_attempts: u32) -> Policy {
    Policy {
        max_attempts: Some(max_attempts),
        initial: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..Policy::default()
    }
}

/// Throughput settings for tests: no rate limit, quick retries.
pub fn quick(max_attempts: u32) -> ThroughputOptions {
    ThroughputOptions {
        batch_size: None,
        max_in_flight: 4,
        rate: RateLimit::default(),
        retry: quick_retry(max_attempts),
    }
}
