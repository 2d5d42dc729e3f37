//! `ragshift plan` end to end against a real AWS-API server (moto on loopback) and real files:
//! the live table, both export formats, S3 and directory documents, narrowing, CloudFormation
//! discovery (also seen by `config show`), and the bad inputs that must exit 2.

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use ragshift_testkit::{shared_moto, unique_name};
use serde_json::{json, Value};

/// Runs ragshift in `dir` with only the given RAGSHIFT_*/AWS_* variables.
fn ragshift(dir: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    ragshift_testkit::env::run_isolated_with(env!("CARGO_BIN_EXE_ragshift"), dir, args, env)
}

use ragshift_testkit::env::assert_exit;
use ragshift_testkit::env::{stderr_text as stderr, stdout_json};

/// Credentials, region and endpoint of the moto server, as ragshift reads them.
fn aws_env() -> Vec<(String, String)> {
    let mut env = shared_moto().ragshift_env();
    env.push(("RAGSHIFT_EMBEDDING_PROVIDER".into(), "bedrock".into()));
    env
}

async fn sdk() -> aws_config::SdkConfig {
    shared_moto().sdk_config().await
}

const A: &str = "01HALPHA000000000000000000";
const B: &str = "01HBRAVO000000000000000000";
const C: &str = "01HCHARLIE0000000000000000";
const D: &str = "01HDELTA000000000000000000";
const E: &str = "01HECHO0000000000000000000";

fn strings(v: &[&str]) -> Value {
    json!({"L": v.iter().map(|s| json!({"S": s})).collect::<Vec<_>>()})
}

/// The registry items, in DynamoDB JSON.
fn items() -> Vec<Value> {
    vec![
        json!({"PK": {"S": "u1"}, "SK": {"S": format!("u1#BOT#{A}")}, "Title": {"S": "Alpha"},
               "Knowledge": {"M": {"source_urls": strings(&["https://example.com/a"]), "sitemap_urls": strings(&[]),
                                   "filenames": strings(&["a.txt", "b.md", "missing.pdf"])}},
               "EmbeddingParams": {"M": {"chunk_size": {"N": "1000"}, "chunk_overlap": {"N": "200"},
                                         "enable_partition_pdf": {"BOOL": false}}},
               "SyncStatus": {"S": "SUCCEEDED"}, "LastExecId": {"S": "t1"}}),
        // No EmbeddingParams at all: the platform's defaults.
        json!({"PK": {"S": "u1"}, "SK": {"S": format!("u1#BOT#{B}")}, "Title": {"S": "Bravo"},
               "Knowledge": {"M": {"source_urls": strings(&[]), "sitemap_urls": strings(&[]),
                                   "filenames": strings(&["c.pdf"])}},
               "SyncStatus": {"S": "FAILED"}}),
        json!({"PK": {"S": "u1"}, "SK": {"S": format!("u1#BOT#{C}")}, "Title": {"S": "Charlie"},
               "Knowledge": {"M": {"source_urls": strings(&[]), "sitemap_urls": strings(&[]), "filenames": strings(&[])}},
               "SyncStatus": {"S": "SUCCEEDED"}}),
        json!({"PK": {"S": "u2"}, "SK": {"S": format!("u2#BOT#{D}")}, "Title": {"S": "Delta"},
               "PublicBotId": {"S": D},
               "Knowledge": {"M": {"sitemap_urls": strings(&["https://example.com/sitemap.xml"])}},
               "EmbeddingParams": {"M": {"chunk_size": {"N": "512"}, "chunk_overlap": {"N": "64"}}},
               "SyncStatus": {"S": "RUNNING"}, "Extra": {"N": "7"}}),
        json!({"PK": {"S": "u2"}, "SK": {"S": format!("u2#BOT#{E}")}, "Title": {"S": "Echo"},
               "Knowledge": {"L": [{"S": "wrong type"}]}}),
        json!({"PK": {"S": "u1"}, "SK": {"S": format!("u1#BOT_ALIAS#{D}")}, "OriginalBotId": {"S": D},
               "Title": {"S": "Delta alias"}}),
        json!({"PK": {"S": "u1"}, "SK": {"S": "u1#CONV#c1"}, "Title": {"S": "chat"}, "MessageMap": {"S": "{}"}}),
        json!({"PK": {"S": "u2"}, "SK": {"S": "u2#CONV#c2"}, "Title": {"S": "chat"}}),
    ]
}

/// Document files: (user, bot, name, size in bytes). `missing.pdf` is deliberately absent.
const FILES: &[(&str, &str, &str, usize)] = &[
    ("u1", A, "a.txt", 3000),
    ("u1", A, "b.md", 500),
    ("u1", B, "c.pdf", 10_000),
];

struct World {
    table: String,
    bucket: String,
    dir: tempfile::TempDir,
}

impl World {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

async fn world() -> World {
    let sdk = sdk().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = ragshift_testkit::dynamo::create_conversation_table(&ddb, "plantable").await;
    let records: Vec<_> = items()
        .iter()
        .map(ragshift_testkit::dynamo::item_from_json)
        .collect();
    ragshift_testkit::dynamo::put_items(&ddb, &table, records).await;

    // Every document in S3 and, the same, in a local directory.
    let objects: Vec<(String, Vec<u8>)> = FILES
        .iter()
        .map(|(user, bot, name, size)| {
            let key = format!("{user}/{bot}/documents/{name}");
            (key, "x".repeat(*size).into_bytes())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for (key, body) in &objects {
        let local = dir.path().join("docs").join(key);
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        std::fs::write(local, body).unwrap();
    }
    let s3 = ragshift_testkit::s3::client(&sdk);
    let bucket = ragshift_testkit::s3::bucket_with(&s3, "plandocs", objects).await;

    // The same items as `aws dynamodb scan --output json` and as a gzipped export to S3.
    let all = items();
    std::fs::write(
        dir.path().join("scan.json"),
        serde_json::to_string_pretty(&json!({"Items": all, "Count": all.len()})).unwrap(),
    )
    .unwrap();
    let data = dir
        .path()
        .join("export/AWSDynamoDB/01700000000000-abcd1234/data");
    std::fs::create_dir_all(&data).unwrap();
    let f = std::fs::File::create(data.join("x7kq2ab3.json.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    for item in &all {
        writeln!(gz, "{}", json!({ "Item": item })).unwrap();
    }
    gz.finish().unwrap();
    std::fs::write(
        data.parent().unwrap().join("manifest-summary.json"),
        "{\"itemCount\": 8}",
    )
    .unwrap();
    World { table, bucket, dir }
}

fn plan(w: &World, extra: &[&str]) -> Output {
    let mut args = vec!["plan", "--json"];
    args.extend_from_slice(extra);
    ragshift(w.dir.path(), &args, &aws_env())
}

fn bot<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bot_id"] == id)
        .unwrap_or_else(|| panic!("bot {id} not in {v}"))
}

#[tokio::test]
async fn the_live_table_and_both_export_formats_give_the_same_plan() {
    let w = world().await;
    let live = plan(
        &w,
        &[
            "--registry-table",
            &w.table,
            "--documents-bucket",
            &w.bucket,
        ],
    );
    assert_exit(&live, 0);
    let v = stdout_json(&live);

    // Bots with knowledge, each once; aliases and conversations never appear.
    let ids: Vec<&str> = v["bots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bot_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![A, B, D]);
    let a = bot(&v, A);
    assert_eq!(a["user_id"], "u1");
    assert_eq!(a["title"], "Alpha");
    assert_eq!(a["sync_status"], "SUCCEEDED");
    assert_eq!(a["sources"], json!({"urls": 1, "sitemaps": 0, "files": 3}));
    assert_eq!(a["bytes"], 3500);
    // a.txt: 3000 chars → 1 + ceil(2000/800) = 4 chunks; b.md: 1 chunk.
    assert_eq!(a["est_chunks"], 5);
    // Tokens ≈ embedded characters / 4: (3000 + 3×200)/4 + 500/4 = 900 + 125.
    assert_eq!(a["est_tokens"], 1025);
    let cost = a["est_cost_usd"].as_f64().unwrap();
    assert!((cost - 1025.0 / 1000.0 * 0.0001).abs() < 1e-12, "{cost}");
    assert_eq!(a["missing_files"], json!(["missing.pdf"]));
    // c.pdf: 10,000 bytes of PDF ≈ 2,000 chars of text → 3 chunks at the default 1000/200.
    let b = bot(&v, B);
    assert_eq!(
        (b["chunk_size"].as_u64(), b["chunk_overlap"].as_u64()),
        (Some(1000), Some(200))
    );
    assert_eq!(b["est_chunks"], 3);
    let d = bot(&v, D);
    assert_eq!(d["chunk_size"], 512);
    assert_eq!(d["sources"]["sitemaps"], 1);
    assert_eq!(d["bytes"], 0);

    assert_eq!(
        v["skipped"],
        json!([{"user_id": "u1", "bot_id": C, "reason": "no knowledge (nothing to embed)"}])
    );
    assert_eq!(v["invalid"].as_array().unwrap().len(), 1);
    assert_eq!(v["invalid"][0]["key"], format!("u2#BOT#{E}"));
    assert!(v["invalid"][0]["error"]
        .as_str()
        .unwrap()
        .contains("Knowledge is a L"));

    let t = &v["totals"];
    assert_eq!(t["bots"], 3);
    assert_eq!(t["files"], 3);
    assert_eq!(t["bytes"], 13_500);
    assert_eq!(t["est_chunks"], 8);
    assert_eq!(t["missing_files"], 1);
    assert_eq!(t["unsized_sources"], 2);
    assert!(t["est_seconds"].as_f64().unwrap() > 0.0);
    assert!(t["est_cost_usd"].as_f64().unwrap() > cost);
    assert_eq!(v["assumptions"]["model"], "cohere.embed-multilingual-v3");

    // Offline: both export formats and a local copy of the bucket give the same plan.
    let same = |other: &Value| {
        for k in ["bots", "skipped", "invalid", "totals"] {
            assert_eq!(other[k], v[k], "{k} differs");
        }
    };
    let docs = w.path("docs");
    for registry in [w.path("scan.json"), w.path("export/AWSDynamoDB")] {
        let out = plan(
            &w,
            &[
                "--registry-file",
                registry.to_str().unwrap(),
                "--documents-dir",
                docs.to_str().unwrap(),
            ],
        );
        assert_exit(&out, 0);
        same(&stdout_json(&out));
    }

    // The human table says the same.
    let out = ragshift(
        w.dir.path(),
        &[
            "plan",
            "--registry-table",
            &w.table,
            "--documents-bucket",
            &w.bucket,
        ],
        &aws_env(),
    );
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("USER") && text.contains("Alpha"), "{text}");
    assert!(text.contains("total: 3 bots, 3 files"), "{text}");
    assert!(text.contains("missing files: missing.pdf"), "{text}");
    assert!(text.contains(&format!("u1/{C}: no knowledge")), "{text}");
    assert!(text.contains(&format!("u2#BOT#{E}")), "{text}");
}

#[tokio::test]
async fn user_and_bot_narrowing() {
    let w = world().await;
    let base = [
        "--registry-table",
        &w.table,
        "--documents-bucket",
        &w.bucket,
    ];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let out = plan(&w, &args);
        assert_exit(&out, 0);
        stdout_json(&out)
    };
    let ids = |v: &Value| -> Vec<String> {
        v["bots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["bot_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let v = run(&["--user", "u1"]);
    assert_eq!(ids(&v), vec![A, B]);
    assert_eq!(v["skipped"][0]["bot_id"], C);
    assert!(
        v["invalid"].as_array().unwrap().is_empty(),
        "u2's invalid item is not read"
    );

    let v = run(&["--bot", &format!("u1/{B}")]);
    assert_eq!(ids(&v), vec![B]);
    let v = run(&["--bot", D]);
    assert_eq!(ids(&v), vec![D], "a public bot, found through its index");
    let v = run(&["--bot", A, "--bot", "01HNOSUCH00000000000000000"]);
    assert_eq!(ids(&v), vec![A]);
    assert_eq!(v["skipped"][0]["bot_id"], "01HNOSUCH00000000000000000");
    assert!(v["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not found"));

    // The same narrowing on an export.
    let out = plan(
        &w,
        &[
            "--registry-file",
            w.path("scan.json").to_str().unwrap(),
            "--user",
            "u1",
            "--documents-dir",
            w.path("docs").to_str().unwrap(),
        ],
    );
    assert_eq!(ids(&stdout_json(&out)), vec![A, B]);
}

#[tokio::test]
async fn stack_outputs_fill_unset_names_and_config_show_says_so() {
    let w = world().await;
    let stack = unique_name("BedrockChatStack");
    let template = json!({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "DatabaseConversationTableName0A1B2C3D": {"Value": w.table},
            "DocumentBucketName": {"Value": w.bucket},
            "EmbeddingClusterName": {"Value": "embed-cluster"},
            "EmbeddingTaskDefinitionName": {"Value": "embed-task"},
            "PrivateSubnetId0": {"Value": "subnet-0"},
            "EmbeddingTaskSecurityGroupId": {"Value": "sg-0"}
        }
    });
    aws_sdk_cloudformation::Client::new(&sdk().await)
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();

    let out = plan(&w, &["--stack", &stack]);
    assert_exit(&out, 0);
    let v = stdout_json(&out);
    assert_eq!(v["totals"]["bots"], 3);
    assert_eq!(
        v["totals"]["bytes"], 13_500,
        "documents from the stack's bucket"
    );
    assert_eq!(v["registry"], format!("DynamoDB table {}", w.table));

    let mut env = aws_env();
    env.push(("RAGSHIFT_EXECUTOR_CLUSTER".into(), "my-cluster".into()));
    let out = ragshift(
        w.dir.path(),
        &["config", "show", "--json", "--stack", &stack],
        &env,
    );
    assert_exit(&out, 0);
    let v = stdout_json(&out);
    assert_eq!(v["config"]["registry"]["table"], w.table.as_str());
    assert_eq!(v["config"]["registry"]["kind"], "dynamodb");
    assert_eq!(
        v["origins"]["registry.table"],
        format!("stack {stack} output DatabaseConversationTableName0A1B2C3D")
    );
    assert_eq!(v["config"]["executor"]["subnets"], json!(["subnet-0"]));
    assert_eq!(v["config"]["executor"]["task_definition"], "embed-task");
    assert_eq!(
        v["origins"]["executor.security_groups"],
        format!("stack {stack} output EmbeddingTaskSecurityGroupId")
    );
    // What the user set wins over the stack.
    assert_eq!(v["config"]["executor"]["cluster"], "my-cluster");
    assert_eq!(
        v["origins"]["executor.cluster"],
        "environment variable RAGSHIFT_EXECUTOR_CLUSTER"
    );
    let out = ragshift(w.dir.path(), &["config", "show", "--stack", &stack], &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("# stack {stack} output DocumentBucketName")),
        "{text}"
    );
}

#[tokio::test]
async fn bad_input_exits_2_with_one_clear_error() {
    let w = world().await;
    let check = |args: &[&str], wants: &[&str]| {
        let out = plan(&w, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        for want in wants {
            assert!(err.contains(want), "{args:?}: {err} lacks {want}");
        }
        assert!(out.stdout.is_empty(), "no plan on stdout when it failed");
    };
    check(
        &[
            "--registry-table",
            "no-such-table",
            "--documents-bucket",
            &w.bucket,
        ],
        &["no-such-table", "not found"],
    );
    check(
        &["--stack", "NoSuchStack"],
        &["NoSuchStack", "does not exist"],
    );
    let missing_bucket = unique_name("nobucket");
    check(
        &[
            "--registry-table",
            &w.table,
            "--documents-bucket",
            &missing_bucket,
        ],
        &[&missing_bucket, "--documents-bucket"],
    );
    let broken = w.path("broken.json");
    std::fs::write(
        &broken,
        format!(
            "{}\n{}\n{{\"Item\": {{\"PK\": \n",
            json!({"Item": items()[0]}),
            json!({"Item": items()[1]})
        ),
    )
    .unwrap();
    check(
        &["--registry-file", broken.to_str().unwrap()],
        &["broken.json", "line 3", "not valid JSON"],
    );
    check(
        &[
            "--registry-file",
            w.path("nothing-here.json").to_str().unwrap(),
        ],
        &["nothing-here.json"],
    );
    check(
        &["--registry-table", &w.table, "--bot", "a/b/c"],
        &["--bot", "USER_ID/BOT_ID"],
    );
    check(
        &[
            "--registry-file",
            w.path("scan.json").to_str().unwrap(),
            "--documents-dir",
            w.path("no-docs-here").to_str().unwrap(),
        ],
        &["no-docs-here", "--documents-dir"],
    );
}

/// A loopback server that refuses every AWS call with `AccessDeniedException`.
fn denying_server() -> String {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0_u8; 4096];
            // Read the head and its body before answering.
            while let Ok(n) = sock.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#AccessDeniedException","message":"not allowed"}"#;
            let _ = write!(
                sock,
                "HTTP/1.1 400 X\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn no_permission_on_the_table_exits_2_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = aws_env();
    env.retain(|(k, _)| k != "RAGSHIFT_AWS_ENDPOINT_URL");
    env.push(("RAGSHIFT_AWS_ENDPOINT_URL".into(), denying_server()));
    let out = ragshift(
        dir.path(),
        &["plan", "--registry-table", "chat-table"],
        &env,
    );
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("chat-table")
            && err.contains("AccessDeniedException")
            && err.contains("lack this permission"),
        "{err}"
    );
}
