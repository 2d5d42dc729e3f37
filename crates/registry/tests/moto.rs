//! The registry against a real AWS-API server (moto on loopback): a table created through the
//! API in the platform's layout, with bots, aliases, conversations and odd items, read by every
//! lookup path; its exports in both formats; status updates; CloudFormation discovery.

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;
use ragshift_aws::AwsErrorKind;
use ragshift_model::{BotKey, SyncStatus};
use ragshift_registry::stack::{discover, DiscoveredValue};
use ragshift_registry::{
    DynamoRegistry, FileRegistry, LookupMethod, Registry, RegistryError, Selection, StatusUpdate,
    StatusWrite,
};
use ragshift_retry::Policy;
use ragshift_testkit::{shared_moto, unique_name};
use serde_json::{json, Value};

async fn sdk() -> aws_config::SdkConfig {
    shared_moto().sdk_config().await
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// SDK value → DynamoDB JSON (what `aws dynamodb scan` and exports write).
fn to_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(x) => json!({ "S": x }),
        AttributeValue::N(x) => json!({ "N": x }),
        AttributeValue::Bool(x) => json!({ "BOOL": x }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(x) => json!({ "L": x.iter().map(to_json).collect::<Vec<_>>() }),
        AttributeValue::M(x) => {
            json!({ "M": x.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<serde_json::Map<_, _>>() })
        }
        other => panic!("unexpected {other:?}"),
    }
}

const USERS: usize = 5;
const BOTS_PER_USER: usize = 12;

fn bot_id(u: usize, b: usize) -> String {
    format!("01HBOT{u:02}{b:02}00000000000000000")
}

/// The fixture items, in DynamoDB JSON.
fn fixture() -> Vec<Value> {
    let mut items = Vec::new();
    for u in 0..USERS {
        let user = format!("user-{u}");
        for b in 0..BOTS_PER_USER {
            let id = bot_id(u, b);
            let mut item = json!({
                "PK": {"S": user}, "SK": {"S": format!("{user}#BOT#{id}")},
                "Title": {"S": format!("Bot {u}.{b}")},
                "Knowledge": {"M": {
                    "source_urls": {"L": [{"S": format!("https://example.com/{u}/{b}")}]},
                    "sitemap_urls": {"L": []},
                    "filenames": {"L": (0..b % 3).map(|f| json!({"S": format!("doc{f}.txt")})).collect::<Vec<_>>()},
                }},
                "EmbeddingParams": {"M": {"chunk_size": {"N": "800"}, "chunk_overlap": {"N": "100"},
                                          "enable_partition_pdf": {"BOOL": false}}},
                "SyncStatus": {"S": "SUCCEEDED"}, "SyncStatusReason": {"S": "ok"},
                "LastExecId": {"S": format!("task-{u}-{b}")},
                "Instruction": {"S": "extra attributes are tolerated"},
                "LastBotUsed": {"N": format!("{}", 1_700_000_000 + b)}
            });
            match b {
                0 => {
                    item.as_object_mut().unwrap().remove("EmbeddingParams");
                }
                1 => {
                    item["EmbeddingParams"] = json!({"M": {"chunk_size": {"N": "1500"}}});
                }
                2 => {
                    item["Knowledge"] = json!({"M": {"source_urls": {"L": []}, "sitemap_urls": {"L": []}, "filenames": {"L": []}}});
                }
                3 => {
                    item["PublicBotId"] = json!({"S": id});
                }
                _ => {}
            }
            items.push(item);
        }
        for a in 0..8 {
            items.push(json!({
                "PK": {"S": user}, "SK": {"S": format!("{user}#BOT_ALIAS#{}", bot_id((u + 1) % USERS, a))},
                "OriginalBotId": {"S": bot_id((u + 1) % USERS, a)}, "Title": {"S": "alias"},
                "SyncStatus": {"S": "SUCCEEDED"}, "LastBotUsed": {"N": "1"}
            }));
            items.push(json!({
                "PK": {"S": user}, "SK": {"S": format!("{user}#CONV#conv-{a}")},
                "Title": {"S": "a conversation"}, "MessageMap": {"S": "{\"system\": {}}"},
                "TotalPrice": {"N": "0.01"}
            }));
        }
    }
    // A bot item that cannot be understood: Knowledge of the wrong type.
    items.push(
        json!({"PK": {"S": "user-9"}, "SK": {"S": "user-9#BOT#01HBADBOT0000000000000000000"},
                      "Knowledge": {"S": "not a map"}}),
    );
    // A user with conversations only.
    items.push(json!({"PK": {"S": "user-8"}, "SK": {"S": "user-8#CONV#c"}}));
    items
}

const VALID_BOTS: usize = USERS * BOTS_PER_USER;

async fn create_table(client: &aws_sdk_dynamodb::Client) -> String {
    ragshift_testkit::dynamo::create_conversation_table(client, "conversations").await
}

/// A populated table and a registry on it that pages every 7 items over 4 segments.
async fn populated() -> (aws_config::SdkConfig, String, DynamoRegistry) {
    let sdk = sdk().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = create_table(&client).await;
    let records: Vec<_> = fixture()
        .iter()
        .map(ragshift_testkit::dynamo::item_from_json)
        .collect();
    ragshift_testkit::dynamo::put_items(&client, &table, records).await;
    let registry = DynamoRegistry::new(&sdk, &table)
        .with_segments(4)
        .with_page_limit(Some(7));
    (sdk, table, registry)
}

#[tokio::test]
async fn a_parallel_scan_returns_each_bot_exactly_once() {
    let (sdk, table, registry) = populated().await;
    let found = registry.bots(&Selection::all()).await.unwrap();
    assert_eq!(found.lookups[0].method, LookupMethod::ParallelScan);
    // 60 bots among ~140 items, 7 evaluated per page over 4 segments: many pages.
    assert!(found.pages >= 20, "only {} pages", found.pages);
    let keys: BTreeSet<BotKey> = found.bots.iter().map(|b| b.key.clone()).collect();
    assert_eq!(found.bots.len(), VALID_BOTS, "no bot twice, none missing");
    assert_eq!(keys.len(), VALID_BOTS);
    for u in 0..USERS {
        for b in 0..BOTS_PER_USER {
            assert!(keys.contains(&BotKey::new(format!("user-{u}"), bot_id(u, b))));
        }
    }
    assert_eq!(found.invalid.len(), 1);
    assert_eq!(
        found.invalid[0].key,
        "user-9#BOT#01HBADBOT0000000000000000000"
    );
    assert!(
        found.invalid[0].error.contains("Knowledge is a S"),
        "{}",
        found.invalid[0].error
    );

    // Odd attributes decode with the platform's defaults.
    let b0 = found
        .bots
        .iter()
        .find(|b| b.key.bot_id == bot_id(0, 0))
        .unwrap();
    assert_eq!(
        (
            b0.embedding_params.chunk_size,
            b0.embedding_params.chunk_overlap
        ),
        (1000, 200)
    );
    let b1 = found
        .bots
        .iter()
        .find(|b| b.key.bot_id == bot_id(0, 1))
        .unwrap();
    assert_eq!(
        (
            b1.embedding_params.chunk_size,
            b1.embedding_params.chunk_overlap
        ),
        (1500, 200)
    );
    let b5 = found
        .bots
        .iter()
        .find(|b| b.key.bot_id == bot_id(0, 5))
        .unwrap();
    assert_eq!(
        (
            b5.embedding_params.chunk_size,
            b5.embedding_params.chunk_overlap
        ),
        (800, 100)
    );
    assert_eq!(b5.knowledge.filenames, vec!["doc0.txt", "doc1.txt"]);
    assert_eq!(b5.sync_status, Some(SyncStatus::Succeeded));

    // One segment, big pages: the same bots.
    let single = DynamoRegistry::new(&sdk, &table).with_segments(1);
    let again = single.bots(&Selection::all()).await.unwrap();
    assert_eq!(again.bots, found.bots);
    assert!(again.pages < found.pages);
}

#[tokio::test]
async fn narrowing_by_user_queries_and_by_bot_reads_directly() {
    let (_sdk, _table, registry) = populated().await;

    let sel = Selection {
        users: vec!["user-1".into()],
        bots: vec![],
    };
    let found = registry.bots(&sel).await.unwrap();
    assert_eq!(found.lookups[0].method, LookupMethod::QueryUser);
    assert_eq!(found.bots.len(), BOTS_PER_USER);
    assert!(found.bots.iter().all(|b| b.key.user_id == "user-1"));

    let sel = Selection {
        users: vec!["user-8".into()],
        bots: vec![],
    };
    assert!(
        registry.bots(&sel).await.unwrap().bots.is_empty(),
        "conversations are not bots"
    );

    // Owner known: GetItem.
    let sel = Selection {
        users: vec![],
        bots: vec![format!("user-2/{}", bot_id(2, 7)).parse().unwrap()],
    };
    let found = registry.bots(&sel).await.unwrap();
    assert_eq!(found.lookups[0].method, LookupMethod::GetItem);
    assert_eq!(found.bots.len(), 1);
    assert_eq!(found.bots[0].key, BotKey::new("user-2", bot_id(2, 7)));

    // Owner from --user.
    let sel = Selection {
        users: vec!["user-2".into()],
        bots: vec![bot_id(2, 8).parse().unwrap()],
    };
    let found = registry.bots(&sel).await.unwrap();
    assert_eq!(found.lookups[0].method, LookupMethod::GetItem);
    assert_eq!(found.bots[0].key.bot_id, bot_id(2, 8));

    // Public bot: the index.
    let sel = Selection {
        users: vec![],
        bots: vec![bot_id(3, 3).parse().unwrap()],
    };
    let found = registry.bots(&sel).await.unwrap();
    assert_eq!(found.lookups[0].method, LookupMethod::PublicBotIndex);
    assert_eq!(found.bots[0].key, BotKey::new("user-3", bot_id(3, 3)));
    assert_eq!(found.bots[0].title, "Bot 3.3");

    // Private bot, owner unknown: a filtered scan; an unknown id is reported.
    let sel = Selection {
        users: vec![],
        bots: vec![
            bot_id(4, 9).parse().unwrap(),
            "01HNOSUCHBOT00000000000000".parse().unwrap(),
        ],
    };
    let found = registry.bots(&sel).await.unwrap();
    assert!(found
        .lookups
        .iter()
        .all(|l| l.method == LookupMethod::FilteredScan));
    assert_eq!(found.bots.len(), 1);
    assert_eq!(found.bots[0].key, BotKey::new("user-4", bot_id(4, 9)));
    assert_eq!(
        found.not_found,
        vec!["01HNOSUCHBOT00000000000000".to_owned()]
    );

    // A bot under the wrong owner is not found.
    let sel = Selection {
        users: vec![],
        bots: vec![format!("user-1/{}", bot_id(2, 7)).parse().unwrap()],
    };
    let found = registry.bots(&sel).await.unwrap();
    assert!(found.bots.is_empty());
    assert_eq!(found.not_found.len(), 1);
}

#[tokio::test]
async fn status_updates_are_refused_for_stale_runs_and_deleted_bots() {
    let (sdk, table, registry) = populated().await;
    let key = BotKey::new("user-0", bot_id(0, 4));
    let claim = StatusUpdate {
        status: SyncStatus::Running,
        reason: String::new(),
        exec_id: "run-new".into(),
        expected_exec_id: None,
    };
    assert_eq!(
        registry.set_status(&key, &claim).await.unwrap(),
        StatusWrite::Written
    );

    let stale = StatusUpdate {
        status: SyncStatus::Failed,
        reason: "old run failed".into(),
        exec_id: "run-old".into(),
        expected_exec_id: Some("run-old".into()),
    };
    match registry.set_status(&key, &stale).await {
        Err(RegistryError::Stale {
            found, expected, ..
        }) => {
            assert_eq!(found.as_deref(), Some("run-new"));
            assert_eq!(expected, "run-old");
        }
        other => panic!("a stale run must be refused: {other:?}"),
    }

    let done = StatusUpdate {
        status: SyncStatus::Succeeded,
        reason: "Successfully inserted to vector store.".into(),
        exec_id: "run-new".into(),
        expected_exec_id: Some("run-new".into()),
    };
    registry.set_status(&key, &done).await.unwrap();
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&table)
        .key("PK", s("user-0"))
        .key("SK", s(&key.sk()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["SyncStatus"], s("SUCCEEDED"));
    assert_eq!(
        item["SyncStatusReason"],
        s("Successfully inserted to vector store.")
    );
    assert_eq!(item["LastExecId"], s("run-new"));
    assert_eq!(item["Title"], s("Bot 0.4"), "other attributes untouched");

    let gone = BotKey::new("user-0", "01HDELETED0000000000000000");
    match registry.set_status(&gone, &claim).await {
        Err(RegistryError::BotGone { key }) => assert_eq!(key, gone),
        other => panic!("no item must be created: {other:?}"),
    }
    let created = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&table)
        .key("PK", s("user-0"))
        .key("SK", s(&gone.sk()))
        .send()
        .await
        .unwrap()
        .item;
    assert!(created.is_none());
}

fn write_gz(path: &Path, text: &str) {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

#[tokio::test]
async fn both_export_formats_hold_what_the_live_table_holds() {
    let (sdk, table, registry) = populated().await;
    // Everything in the table, as `aws dynamodb scan` would give it.
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(&table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let as_json: Vec<Value> = items
        .iter()
        .map(|i| Value::Object(i.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let scan_file = dir.path().join("scan.json");
    std::fs::write(
        &scan_file,
        serde_json::to_string_pretty(
            &json!({"Items": as_json, "Count": as_json.len(), "ScannedCount": as_json.len()}),
        )
        .unwrap(),
    )
    .unwrap();
    let data = dir.path().join("AWSDynamoDB/01700000000000-abcdef/data");
    std::fs::create_dir_all(&data).unwrap();
    let half = as_json.len() / 2;
    for (name, part) in [
        ("part1.json.gz", &as_json[..half]),
        ("part2.json.gz", &as_json[half..]),
    ] {
        let lines: String = part
            .iter()
            .map(|i| format!("{}\n", json!({"Item": i})))
            .collect();
        write_gz(&data.join(name), &lines);
    }
    std::fs::write(data.parent().unwrap().join("manifest-summary.json"), "{}").unwrap();

    let live = registry.bots(&Selection::all()).await.unwrap();
    for path in [scan_file.clone(), dir.path().join("AWSDynamoDB")] {
        let file = FileRegistry::open(&path).await.unwrap();
        let got = file.bots(&Selection::all()).await.unwrap();
        assert_eq!(got.bots, live.bots, "{}", path.display());
        assert_eq!(got.invalid, live.invalid, "{}", path.display());
        assert_eq!(
            file.set_status(
                &live.bots[0].key,
                &StatusUpdate {
                    status: SyncStatus::Running,
                    reason: String::new(),
                    exec_id: "r".into(),
                    expected_exec_id: None,
                }
            )
            .await
            .unwrap(),
            StatusWrite::JournalOnly
        );
        let sel = Selection {
            users: vec!["user-1".into()],
            bots: vec![],
        };
        assert_eq!(file.bots(&sel).await.unwrap().bots.len(), BOTS_PER_USER);
    }
}

#[tokio::test]
async fn a_missing_table_is_one_clear_error() {
    let sdk = sdk().await;
    let registry = DynamoRegistry::new(&sdk, "no-such-table-here");
    let err = registry.bots(&Selection::all()).await.unwrap_err();
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::NotFound), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no-such-table-here") && text.contains("--registry-table"),
        "{text}"
    );
}

#[tokio::test]
async fn stack_outputs_fill_the_platform_names() {
    let sdk = sdk().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let stack = unique_name("BedrockChatStack");
    let template = json!({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "DatabaseConversationTableName7C1E2B3A": {"Value": "chat-table"},
            "EmbeddingClusterName": {"Value": "embed-cluster"},
            "EmbeddingTaskDefinitionName": {"Value": "embed-task:4"},
            "PrivateSubnetId0": {"Value": "subnet-aaa"},
            "PrivateSubnetId1": {"Value": "subnet-bbb"},
            "EmbeddingTaskSecurityGroupId": {"Value": "sg-123"},
            "DocumentBucketName": {"Value": "docs-bucket"},
            "FrontendURL": {"Value": "https://example.invalid"}
        }
    });
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let found = discover(&sdk, &stack, &Policy::default()).await.unwrap();
    let get = |p: &str| {
        found
            .iter()
            .find(|d| d.path == p)
            .unwrap_or_else(|| panic!("{p} not found in {found:?}"))
    };
    assert_eq!(
        get("registry.table").value,
        DiscoveredValue::One("chat-table".into())
    );
    assert_eq!(
        get("registry.table").output_key,
        "DatabaseConversationTableName7C1E2B3A"
    );
    assert_eq!(
        get("executor.cluster").value,
        DiscoveredValue::One("embed-cluster".into())
    );
    assert_eq!(
        get("executor.task_definition").value,
        DiscoveredValue::One("embed-task:4".into())
    );
    assert_eq!(
        get("executor.subnets").value,
        DiscoveredValue::Many(vec!["subnet-aaa".into(), "subnet-bbb".into()])
    );
    assert_eq!(
        get("executor.security_groups").value,
        DiscoveredValue::Many(vec!["sg-123".into()])
    );
    assert_eq!(
        get("documents.bucket").value,
        DiscoveredValue::One("docs-bucket".into())
    );

    let err = discover(&sdk, "NoSuchStackAnywhere", &Policy::default())
        .await
        .unwrap_err();
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("NoSuchStackAnywhere"), "{err}");
}

#[tokio::test]
async fn a_table_without_the_public_bot_index_falls_back_to_a_filtered_scan() {
    let sdk = sdk().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table =
        ragshift_testkit::dynamo::create_conversation_table_without_indexes(&client, "noindex")
            .await;
    client
        .put_item()
        .table_name(&table)
        .item("PK", s("u"))
        .item("SK", s("u#BOT#01HONLYBOT0000000000000000"))
        .item("Title", s("only"))
        .send()
        .await
        .unwrap();
    let registry = DynamoRegistry::new(&sdk, &table);
    let sel = Selection {
        users: vec![],
        bots: vec!["01HONLYBOT0000000000000000".parse().unwrap()],
    };
    let found = registry.bots(&sel).await.unwrap();
    assert_eq!(found.lookups[0].method, LookupMethod::FilteredScan);
    assert_eq!(found.bots.len(), 1);
    assert_eq!(found.bots[0].title, "only");
}
