//! CloudFormation discovery: the names an operator used to copy by hand from the platform
//! stack's Outputs tab (table, ECS cluster, task definition, subnets, security group, bucket,
//! database secret), read from the stack and mapped to configuration keys.
//!
//! CDK suffixes output keys with hashes (`DatabaseConversationTableName7C1E2B3A`), so outputs
//! are matched by prefix. The caller applies the result as fills: values the user set win.

use aws_sdk_cloudformation::Client;
use ragshift_retry::Policy;
use serde::Serialize;

use crate::error::RegistryError;

/// Output key prefixes and the configuration key each fills.
pub const OUTPUT_MAP: &[(&str, &str)] = &[
    ("DatabaseConversationTableName", "registry.table"),
    ("EmbeddingClusterName", "executor.cluster"),
    ("EmbeddingTaskDefinitionName", "executor.task_definition"),
    ("PrivateSubnetId", "executor.subnets"),
    ("EmbeddingTaskSecurityGroupId", "executor.security_groups"),
    ("DocumentBucketName", "documents.bucket"),
    ("DocumentBucket", "documents.bucket"),
    ("DbSecretArn", "target.secret_arn"),
    ("DbConfigSecretArn", "target.secret_arn"),
    ("DatabaseSecretArn", "target.secret_arn"),
    ("VectorStoreSecretArn", "target.secret_arn"),
];

/// Configuration keys that hold lists (all matching outputs are collected, in key order).
const LIST_KEYS: &[&str] = &["executor.subnets", "executor.security_groups"];

/// A value for a configuration key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DiscoveredValue {
    /// A scalar.
    One(String),
    /// A list (subnets, security groups).
    Many(Vec<String>),
}

/// One configuration value found in the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovered {
    /// `section.key`.
    pub path: String,
    /// The value.
    pub value: DiscoveredValue,
    /// The output key(s) it came from, comma-separated.
    pub output_key: String,
}

/// Maps a stack's outputs (`key`, `value`) to configuration values. Found the table, the
/// registry kind becomes `dynamodb`; found the bucket, the documents kind becomes `s3` (both
/// only where the user set no kind).
pub fn map_outputs(outputs: &[(String, String)]) -> Vec<Discovered> {
    let mut sorted: Vec<&(String, String)> = outputs.iter().collect();
    sorted.sort();
    let mut found: Vec<Discovered> = Vec::new();
    for (key, value) in sorted {
        let Some((_, path)) = OUTPUT_MAP
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix))
        else {
            continue;
        };
        match found.iter_mut().find(|d| d.path == *path) {
            Some(existing) if LIST_KEYS.contains(path) => {
                if let DiscoveredValue::Many(v) = &mut existing.value {
                    v.push(value.clone());
                }
                existing.output_key.push(',');
                existing.output_key.push_str(key);
            }
            Some(existing) => {
                tracing::warn!(
                    "stack outputs {} and {key} both match {path}: using the first",
                    existing.output_key
                );
            }
            None => found.push(Discovered {
                path: (*path).to_owned(),
                value: if LIST_KEYS.contains(path) {
                    DiscoveredValue::Many(vec![value.clone()])
                } else {
                    DiscoveredValue::One(value.clone())
                },
                output_key: key.clone(),
            }),
        }
    }
    let mut kinds = Vec::new();
    for d in &found {
        match d.path.as_str() {
            "registry.table" => kinds.push(("registry.kind", "dynamodb", d.output_key.clone())),
            "documents.bucket" => kinds.push(("documents.kind", "s3", d.output_key.clone())),
            _ => {}
        }
    }
    for (path, value, output_key) in kinds {
        found.push(Discovered {
            path: path.to_owned(),
            value: DiscoveredValue::One(value.to_owned()),
            output_key,
        });
    }
    found
}

/// Reads the outputs of `stack` and maps them ([`map_outputs`]), retrying under `retry` (the
/// SDK's own retries off).
pub async fn discover(
    sdk: &aws_config::SdkConfig,
    stack: &str,
    retry: &Policy,
) -> Result<Vec<Discovered>, RegistryError> {
    let client = Client::new(&ragshift_aws::retry::without_sdk_retries(sdk));
    let region = sdk
        .region()
        .map(ToString::to_string)
        .unwrap_or_else(|| "the default region".to_owned());
    let out = ragshift_aws::retry::call(
        retry,
        format!("reading CloudFormation stack {stack} in {region}"),
        || client.describe_stacks().stack_name(stack).send(),
    )
    .await
    .map_err(|e| {
        RegistryError::aws(
            e,
            "check the stack name ([aws] stack, --stack) and the region ([aws] region, AWS_REGION)",
        )
    })?;
    let Some(s) = out.stacks.unwrap_or_default().into_iter().next() else {
        return Err(RegistryError::Config(format!(
            "CloudFormation stack {stack} not found in {region}; check --stack and [aws] region"
        )));
    };
    let outputs: Vec<(String, String)> = s
        .outputs
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| Some((o.output_key?, o.output_value?)))
        .collect();
    let found = map_outputs(&outputs);
    tracing::debug!(
        "stack {stack}: {} output(s), {} used",
        outputs.len(),
        found.len()
    );
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn outputs_map_by_prefix_and_lists_collect() {
        let found = map_outputs(&outputs(&[
            ("DatabaseConversationTableName7C1E2B3A", "Stack-Table-1"),
            ("EmbeddingClusterName", "cluster-1"),
            ("EmbeddingTaskDefinitionName", "td:3"),
            ("PrivateSubnetId1", "subnet-b"),
            ("PrivateSubnetId0", "subnet-a"),
            ("EmbeddingTaskSecurityGroupId", "sg-1"),
            ("DocumentBucketName", "docs-bucket"),
            ("FrontendURL", "https://x"),
        ]));
        let get = |p: &str| found.iter().find(|d| d.path == p).cloned();
        assert_eq!(
            get("registry.table").unwrap().value,
            DiscoveredValue::One("Stack-Table-1".into())
        );
        assert_eq!(
            get("registry.table").unwrap().output_key,
            "DatabaseConversationTableName7C1E2B3A"
        );
        assert_eq!(
            get("registry.kind").unwrap().value,
            DiscoveredValue::One("dynamodb".into())
        );
        assert_eq!(
            get("executor.subnets").unwrap().value,
            DiscoveredValue::Many(vec!["subnet-a".into(), "subnet-b".into()])
        );
        assert_eq!(
            get("executor.subnets").unwrap().output_key,
            "PrivateSubnetId0,PrivateSubnetId1"
        );
        assert_eq!(
            get("documents.kind").unwrap().value,
            DiscoveredValue::One("s3".into())
        );
        assert!(get("target.secret_arn").is_none());
        assert_eq!(found.len(), 8);
    }
}
