//! Building the configured registry from `[registry]` and `[aws]`.

use ragshift_config::{AwsConfig, RegistryConfig, RegistryKind};
use ragshift_retry::Policy;

use crate::dynamodb::DynamoRegistry;
use crate::error::RegistryError;
use crate::file::FileRegistry;
use crate::registry::Registry;

/// Opens the registry `[registry]` describes: the live table (`kind = "dynamodb"`, needs
/// `table`, its calls retried under `retry`) or an export (`kind = "file"`, read and checked
/// now).
pub async fn from_config(
    registry: &RegistryConfig,
    aws: &AwsConfig,
    retry: &Policy,
) -> Result<Box<dyn Registry>, RegistryError> {
    match registry.kind {
        RegistryKind::Dynamodb => {
            let Some(table) = registry.table.as_deref().filter(|t| !t.is_empty()) else {
                return Err(RegistryError::Config(
                    "[registry] kind is dynamodb but no table is set: set [registry] table (RAGSHIFT_REGISTRY_TABLE, --registry-table) or [aws] stack (--stack) to find it".into(),
                ));
            };
            let sdk = ragshift_aws::sdk_config(aws).await;
            Ok(Box::new(
                DynamoRegistry::new(&sdk, table)
                    .with_segments(registry.scan_segments)
                    .with_retry(retry.clone()),
            ))
        }
        RegistryKind::File => Ok(Box::new(FileRegistry::open(&registry.path).await?)),
    }
}
