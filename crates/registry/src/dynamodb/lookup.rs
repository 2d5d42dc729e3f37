//! Narrow reads: one user's bots (a query on `PK`), one bot whose owner is known (`GetItem`),
//! and a public bot through `PublicBotIdIndex`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ragshift_aws::AwsErrorKind;
use ragshift_model::BotKey;

use super::{DynamoRegistry, Found, PUBLIC_BOT_INDEX};
use crate::decode::BOT_MARKER;
use crate::error::RegistryError;

impl DynamoRegistry {
    /// Every bot of `user`: `PK = user AND begins_with(SK, 'user#BOT#')`, so neither their
    /// conversations nor their aliases are read.
    pub(super) async fn query_user(
        &self,
        user: &str,
        found: &mut Found,
    ) -> Result<(), RegistryError> {
        let (projection, names) = Self::projection();
        let (pk, sk) = (Self::name_of("PK"), Self::name_of("SK"));
        let values = HashMap::from([
            (":pk".to_owned(), AttributeValue::S(user.to_owned())),
            (
                ":prefix".to_owned(),
                AttributeValue::S(format!("{user}{BOT_MARKER}")),
            ),
        ]);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = ragshift_aws::retry::call(
                &self.retry,
                format!("querying user {user} in DynamoDB table {}", self.table),
                || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression(format!(
                            "{pk} = :pk AND begins_with({sk}, :prefix)"
                        ))
                        .projection_expression(&projection)
                        .set_expression_attribute_names(Some(names.clone()))
                        .set_expression_attribute_values(Some(values.clone()))
                        .set_exclusive_start_key(start.clone())
                        .set_limit(self.page_limit)
                        .send()
                },
            )
            .await
            .map_err(|e| self.aws_error(e))?;
            found.pages += 1;
            for item in out.items.unwrap_or_default() {
                found.add(&item);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }

    /// One bot by its key; nothing is added when it doesn't exist.
    pub(super) async fn get_bot(
        &self,
        key: &BotKey,
        found: &mut Found,
    ) -> Result<(), RegistryError> {
        let (projection, names) = Self::projection();
        let out = ragshift_aws::retry::call(
            &self.retry,
            format!("reading bot {key} from DynamoDB table {}", self.table),
            || {
                self.get_bot_item(key)
                    .projection_expression(&projection)
                    .set_expression_attribute_names(Some(names.clone()))
                    .send()
            },
        )
        .await
        .map_err(|e| self.aws_error(e))?;
        if let Some(item) = out.item {
            found.add(&item);
        }
        Ok(())
    }

    /// Looks `bot_id` up in the public-bot index, then reads the bot item itself (whatever the
    /// index projects). `false` when the bot isn't public or the table has no such index.
    pub(super) async fn public_bot(
        &self,
        bot_id: &str,
        found: &mut Found,
    ) -> Result<bool, RegistryError> {
        let result = ragshift_aws::retry::call(
            &self.retry,
            format!(
                "querying {PUBLIC_BOT_INDEX} of DynamoDB table {} for bot {bot_id}",
                self.table
            ),
            || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(PUBLIC_BOT_INDEX)
                    .key_condition_expression("#p = :id")
                    .expression_attribute_names("#p", "PublicBotId")
                    .expression_attribute_values(":id", AttributeValue::S(bot_id.to_owned()))
                    .send()
            },
        )
        .await;
        let out = match result {
            Ok(out) => out,
            // A table without the index (an older or customised deployment): fall back. DynamoDB
            // says so with a validation error, some emulators with "not found"; a table that is
            // really missing fails the fallback scan with the table's own message.
            Err(e) if matches!(e.kind, AwsErrorKind::Invalid | AwsErrorKind::NotFound) => {
                tracing::info!("{e}; looking for bot {bot_id} another way");
                return Ok(false);
            }
            Err(e) => return Err(self.aws_error(e)),
        };
        let mut any = false;
        for item in out.items.unwrap_or_default() {
            let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                (item.get("PK"), item.get("SK"))
            else {
                continue;
            };
            if let Ok(key) = BotKey::from_registry_keys(pk, sk) {
                self.get_bot(&key, found).await?;
                any = true;
            }
        }
        Ok(any)
    }
}
