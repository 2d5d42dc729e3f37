//! Writing a bot's `SyncStatus` the way the platform's worker does, with conditions so that a
//! deleted bot is not resurrected and a stale run cannot overwrite a newer run's status. A
//! throttled or failed write is retried under the registry's [`ragshift_retry::Policy`]; a
//! refused condition never is.

use aws_sdk_dynamodb::types::AttributeValue;
use ragshift_model::BotKey;

use super::DynamoRegistry;
use crate::error::RegistryError;
use crate::registry::StatusUpdate;

impl DynamoRegistry {
    pub(super) async fn update_status(
        &self,
        key: &BotKey,
        update: &StatusUpdate,
    ) -> Result<(), RegistryError> {
        let mut condition = "attribute_exists(#pk)".to_owned();
        if update.expected_exec_id.is_some() {
            condition.push_str(" AND #ex = :expected");
        }
        let context = format!(
            "setting the status of bot {key} in DynamoDB table {}",
            self.table
        );
        // A refused condition is an answer, not a failure: `Ok(false)`, never retried.
        let written = ragshift_aws::retry::call(&self.retry, &context, || {
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("PK", AttributeValue::S(key.pk().to_owned()))
                .key("SK", AttributeValue::S(key.sk()))
                .update_expression("SET #st = :st, #rs = :rs, #ex = :ex")
                .condition_expression(&condition)
                .expression_attribute_names("#pk", "PK")
                .expression_attribute_names("#st", "SyncStatus")
                .expression_attribute_names("#rs", "SyncStatusReason")
                .expression_attribute_names("#ex", "LastExecId")
                .expression_attribute_values(
                    ":st",
                    AttributeValue::S(update.status.as_str().to_owned()),
                )
                .expression_attribute_values(":rs", AttributeValue::S(update.reason.clone()))
                .expression_attribute_values(":ex", AttributeValue::S(update.exec_id.clone()));
            if let Some(expected) = &update.expected_exec_id {
                req = req
                    .expression_attribute_values(":expected", AttributeValue::S(expected.clone()));
            }
            async move {
                match req.send().await {
                    Ok(_) => Ok(true),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
        })
        .await
        .map_err(|e| self.aws_error(e))?;
        if written {
            Ok(())
        } else {
            Err(self.refusal(key, update).await)
        }
    }

    /// Why a conditional update was refused: the item is gone, or another run owns it.
    async fn refusal(&self, key: &BotKey, update: &StatusUpdate) -> RegistryError {
        let read = ragshift_aws::retry::call(
            &self.retry,
            format!("reading bot {key} after a refused status update"),
            || self.get_bot_item(key).consistent_read(true).send(),
        )
        .await;
        match read {
            Ok(out) => match out.item {
                None => RegistryError::BotGone { key: key.clone() },
                Some(item) => RegistryError::Stale {
                    key: key.clone(),
                    expected: update.expected_exec_id.clone().unwrap_or_default(),
                    found: match item.get("LastExecId") {
                        Some(AttributeValue::S(s)) => Some(s.clone()),
                        _ => None,
                    },
                },
            },
            Err(e) => self.aws_error(e),
        }
    }
}
