//! The platform's conversation table in moto's DynamoDB, as every registry test needs it, and
//! items written in DynamoDB JSON (the form exports use) put into it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};

use crate::unique_name;

/// Creates an empty table shaped like Bedrock Chat's conversation table (`PK`/`SK` keys,
/// `SKIndex` and `PublicBotIdIndex`) under a fresh name starting with `prefix`, and returns
/// the name. Panics if moto refuses: a test can't go on without it.
pub async fn create_conversation_table(client: &aws_sdk_dynamodb::Client, prefix: &str) -> String {
    create(client, prefix, true).await
}

/// The same table without its secondary indexes, as older or hand-made tables are.
pub async fn create_conversation_table_without_indexes(
    client: &aws_sdk_dynamodb::Client,
    prefix: &str,
) -> String {
    create(client, prefix, false).await
}

async fn create(client: &aws_sdk_dynamodb::Client, prefix: &str, indexes: bool) -> String {
    let table = unique_name(prefix);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("key schema element")
    };
    let gsi = |name: &str, pk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("global secondary index")
    };
    let mut request = client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("PK"))
        .attribute_definitions(attr("SK"))
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range));
    if indexes {
        request = request
            .attribute_definitions(attr("PublicBotId"))
            .global_secondary_indexes(gsi("SKIndex", "SK"))
            // Bots while they are public.
            .global_secondary_indexes(gsi("PublicBotIdIndex", "PublicBotId"));
    }
    request
        .send()
        .await
        .expect("creating the conversation table in moto");
    table
}

/// An item in DynamoDB JSON (`{"PK": {"S": "u1"}, …}`, as `aws dynamodb scan` and exports
/// write it) as the SDK's attribute map. Panics on a form the fixtures do not use.
pub fn item_from_json(item: &serde_json::Value) -> HashMap<String, AttributeValue> {
    match item.as_object() {
        Some(fields) => fields
            .iter()
            .map(|(k, v)| (k.clone(), value_from_json(v)))
            .collect(),
        None => panic!("an item is a JSON object: {item}"),
    }
}

/// One attribute value in DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, `{"L": […]}`, …) as the
/// SDK's value.
pub fn value_from_json(v: &serde_json::Value) -> AttributeValue {
    let Some((tag, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        panic!("a DynamoDB JSON value is a one-key object: {v}");
    };
    let text = || match inner.as_str() {
        Some(t) => t.to_owned(),
        None => panic!("{tag} holds a string: {v}"),
    };
    match (tag.as_str(), inner) {
        ("S", _) => AttributeValue::S(text()),
        ("N", _) => AttributeValue::N(text()),
        ("BOOL", serde_json::Value::Bool(b)) => AttributeValue::Bool(*b),
        ("NULL", _) => AttributeValue::Null(true),
        ("L", serde_json::Value::Array(items)) => {
            AttributeValue::L(items.iter().map(value_from_json).collect())
        }
        ("M", serde_json::Value::Object(_)) => AttributeValue::M(item_from_json(inner)),
        _ => panic!("fixture uses {tag}: {v}"),
    }
}

/// Puts `items` into `table`, one request each. Panics if moto refuses one.
pub async fn put_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: impl IntoIterator<Item = HashMap<String, AttributeValue>>,
) {
    for item in items {
        if let Err(e) = client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
        {
            panic!("putting an item into {table}: {e:?}");
        }
    }
}

/// `SyncStatus`, `SyncStatusReason` and `LastExecId` of `user`'s bot `bot` in `table` (empty
/// when absent): what the platform's UI shows of a bot's embedding. Panics if the bot's item
/// is missing.
pub async fn sync_status(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    user: &str,
    bot: &str,
) -> (String, String, String) {
    let key = |v: &str| AttributeValue::S(v.to_owned());
    let answer = client
        .get_item()
        .table_name(table)
        .key("PK", key(user))
        .key("SK", key(&format!("{user}#BOT#{bot}")))
        .send()
        .await;
    let Some(item) = answer.ok().and_then(|a| a.item) else {
        panic!("no item for bot {user}/{bot} in {table}");
    };
    let get = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (
        get("SyncStatus"),
        get("SyncStatusReason"),
        get("LastExecId"),
    )
}
