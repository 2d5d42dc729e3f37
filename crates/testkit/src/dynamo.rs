//! The platform's conversation table in moto's DynamoDB, as every registry test needs it.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
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
