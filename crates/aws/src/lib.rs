//! AWS plumbing every ragshift crate shares: one [`aws_config::SdkConfig`] built from `[aws]`
//! (region, profile, and an endpoint URL used for every service so tests can point at a local
//! AWS-API server) on top of the standard credential chain; errors classified by the service's
//! error code, never by message text; calls retried under ragshift's one policy ([`retry`]) with
//! the SDK's own retries off; and the platform's database secret.

mod error;
pub mod retry;
mod secret;

pub use error::{classify, AwsError, AwsErrorKind};
pub use secret::{fetch_db_secret, parse_db_secret};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use ragshift_config::AwsConfig;

/// The region used when neither `[aws] region` nor the AWS chain names one and an endpoint URL
/// is set (local AWS-API servers accept any region).
pub const FALLBACK_REGION: &str = "us-east-1";

/// Loads the shared SDK configuration: `[aws]` settings first, then the standard chain
/// (environment, shared config/credentials files, SSO, container and instance roles).
pub async fn sdk_config(aws: &AwsConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &aws.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() && aws.endpoint_url.is_some() {
        return config
            .into_builder()
            .region(Region::new(FALLBACK_REGION))
            .build();
    }
    config
}
