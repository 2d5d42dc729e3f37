//! AWS calls under ragshift's one retry policy ([`ragshift_retry::Policy`]).
//!
//! Clients whose calls go through [`call`] are built from [`without_sdk_retries`], so that each
//! attempt the policy counts is one request on the wire: the SDK's standard retries (3 attempts
//! each) would otherwise multiply ours. Whether to retry comes from the classified
//! [`AwsErrorKind`] ([`verdict`]), never from message text.

use std::fmt;
use std::future::Future;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use ragshift_retry::{GaveUp, Policy, StopReason, Verdict};

use crate::error::{classify, AwsError};

/// `sdk` with the SDK's own retries turned off, for clients whose calls ragshift retries itself
/// (DynamoDB, ECS, CloudFormation, Bedrock).
pub fn without_sdk_retries(sdk: &SdkConfig) -> SdkConfig {
    sdk.clone()
        .into_builder()
        .retry_config(RetryConfig::disabled())
        .build()
}

/// Throttling, an unreachable service and 5xx answers are worth another attempt; everything else
/// (not found, permissions, credentials, bad requests) is not.
pub fn verdict(err: &AwsError) -> Verdict {
    if err.kind.is_retryable() {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

/// The last error of a call the policy gave up on, its message saying how many attempts were
/// made over how long and why they stopped (the attempt cap, or the time budget); the kind is
/// the last attempt's.
pub fn gave_up(g: GaveUp<AwsError>) -> AwsError {
    let kind = g.error.kind;
    if g.reason == StopReason::NotRetryable {
        return g.error;
    }
    let message = g.to_string();
    AwsError::new(kind, message)
}

/// Runs the SDK call `op` under `policy`: each failure is classified with `context` ("scanning
/// table T"), retried while [`verdict`] allows and the policy's budget and attempt cap last.
pub async fn call<T, E, F, Fut>(
    policy: &Policy,
    context: impl fmt::Display,
    mut op: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let context = context.to_string();
    // The classified error names the call already; the policy's log line only adds "AWS".
    policy
        .run("AWS", verdict, || {
            let attempt = op();
            let context = &context;
            async move { attempt.await.map_err(|e| classify(context, &e)) }
        })
        .await
        .map_err(gave_up)
}
