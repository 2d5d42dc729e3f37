//! AWS errors, classified once so that callers decide retries and exit codes from a kind.

use std::fmt;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// What kind of AWS failure this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The named resource (table, stack, bucket, secret) does not exist.
    NotFound,
    /// The credentials may not do this.
    AccessDenied,
    /// No credentials were found, or they are invalid/expired.
    Credentials,
    /// Throttled: retry later.
    Throttled,
    /// The service could not be reached or timed out: retry.
    Unreachable,
    /// The service answered 5xx: retry.
    ServiceUnavailable,
    /// The request or the answer was not understood.
    Invalid,
}

impl AwsErrorKind {
    /// Whether retrying the same call can help.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Unreachable | Self::ServiceUnavailable
        )
    }
}

/// An AWS call that failed, with what was being done and the service's own code and message.
#[derive(Debug)]
pub struct AwsError {
    /// Its kind.
    pub kind: AwsErrorKind,
    /// The whole explanation.
    pub message: String,
}

impl AwsError {
    /// A new error.
    pub fn new(kind: AwsErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AwsError {}

/// Classifies any SDK error from its error code and transport kind (and, for codes not listed,
/// the HTTP status: 429 throttled, 5xx unavailable); `context` says what was being done
/// ("reading secret arn:...").
pub fn classify<E>(context: impl fmt::Display, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (kind, detail) = match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown");
            let msg = e.message().unwrap_or("");
            let status = se.raw().status().as_u16();
            let kind = match code {
                "ResourceNotFoundException"
                | "NoSuchBucket"
                | "NoSuchKey"
                | "NotFound"
                | "ClusterNotFoundException" => AwsErrorKind::NotFound,
                // CloudFormation reports a missing stack as a validation error.
                "ValidationError" if msg.contains("does not exist") => AwsErrorKind::NotFound,
                "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
                    AwsErrorKind::AccessDenied
                }
                "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "ExpiredTokenException"
                | "ExpiredToken"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch" => AwsErrorKind::Credentials,
                "ThrottlingException"
                | "Throttling"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "SlowDown" => AwsErrorKind::Throttled,
                "InternalServerError"
                | "InternalServerException"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "InternalServiceError"
                | "InternalServiceErrorException"
                // ECS's name for its own failures.
                | "ServerException" => AwsErrorKind::ServiceUnavailable,
                "RequestTimeout" | "RequestTimeoutException" => AwsErrorKind::Unreachable,
                _ if status == 429 => AwsErrorKind::Throttled,
                _ if status >= 500 => AwsErrorKind::ServiceUnavailable,
                _ => AwsErrorKind::Invalid,
            };
            (kind, format!("{code}: {msg}"))
        }
        SdkError::TimeoutError(_) => (AwsErrorKind::Unreachable, "timed out".to_owned()),
        SdkError::DispatchFailure(d) => {
            if d.is_user() {
                (AwsErrorKind::Credentials, format!("{err:?}"))
            } else {
                (
                    AwsErrorKind::Unreachable,
                    "could not reach the service (check [aws] region/endpoint_url and the network)"
                        .to_owned(),
                )
            }
        }
        SdkError::ResponseError(_) => (
            AwsErrorKind::Invalid,
            "the service's answer could not be read".to_owned(),
        ),
        SdkError::ConstructionFailure(_) => (
            AwsErrorKind::Credentials,
            "the request could not be built (are AWS credentials and a region configured?)"
                .to_owned(),
        ),
        _ => (AwsErrorKind::Invalid, "unexpected error".to_owned()),
    };
    let hint = match kind {
        AwsErrorKind::AccessDenied => "; the credentials in use lack this permission",
        AwsErrorKind::Credentials => {
            "; check AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO login or the instance role)"
        }
        _ => "",
    };
    AwsError::new(kind, format!("{context}: {detail}{hint}"))
}
