//! `ragshift rebuild` and `ragshift embed-bot` end to end: a real PostgreSQL+pgvector target,
//! the bot registry in DynamoDB and documents in S3 on a real AWS-API server (moto), the real
//! local embedding model, and a loopback HTTP server whose answers the test releases, so that a
//! worker can be held in the middle of a bot at an exact point (no sleeps).

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use ragshift_testkit::env::assert_exit;
use ragshift_testkit::sql::scalar;
use ragshift_testkit::{model_dir, shared_moto, shared_pg, CutWhen, FaultProxy, SeededRng};
use serde_json::{json, Value};

const REASON_INSERTED: &str = "Successfully inserted to vector store.";

/// ragshift in `dir` with the local model and only the variables `env` (which may override it).
fn command(dir: &Path, args: &[&str], env: &[(String, String)]) -> Command {
    let mut cmd = ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir);
    cmd.args(args)
        .env("RAGSHIFT_EMBEDDING_MODEL_DIR", model_dir())
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

fn ragshift(dir: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    command(dir, args, env).output().expect("run ragshift")
}

fn spawn(dir: &Path, args: &[&str], env: &[(String, String)]) -> Child {
    command(dir, args, env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ragshift")
}

use ragshift_testkit::env::{json_lines as events, stderr_text as stderr};

mod common;
use common::{FAQ, HANDBOOK, VI};

fn event<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

// ---------------------------------------------------------------------------------------------
// A loopback web server whose answers the test can hold and release.

/// Serves `text/plain` pages on 127.0.0.1. While `hold` is on, every request is announced on
/// `arrived` and answered only when the test sends on the request's release channel.
struct Gate {
    url: String,
    hold: Arc<AtomicBool>,
    arrived: mpsc::Receiver<mpsc::Sender<()>>,
}

impl Gate {
    fn start(body: &'static str) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/page.txt",
            listener.local_addr().unwrap().port()
        );
        let hold = Arc::new(AtomicBool::new(false));
        let (tx, arrived) = mpsc::channel();
        let h = hold.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, tx) = (h.clone(), tx.clone());
                std::thread::spawn(move || serve(stream, body, &h, &tx));
            }
        });
        Gate { url, hold, arrived }
    }

    /// Waits for the next held request (the worker is then inside that bot, after it marked the
    /// bot RUNNING) and returns its release handle.
    fn next(&self) -> mpsc::Sender<()> {
        self.arrived
            .recv_timeout(Duration::from_secs(120))
            .expect("the worker never fetched the page")
    }
}

fn serve(
    stream: TcpStream,
    body: &str,
    hold: &AtomicBool,
    announce: &mpsc::Sender<mpsc::Sender<()>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let head_request = line.starts_with("HEAD");
        while {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap_or(0) > 0 && h != "\r\n"
        } {}
        if hold.load(Ordering::SeqCst) && !head_request {
            let (release, wait) = mpsc::channel();
            if announce.send(release).is_err() || wait.recv().is_err() {
                return; // the test moved on: drop the connection
            }
        }
        let mut s = &stream;
        let payload = if head_request { "" } else { body };
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{payload}",
            body.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The platform's registry (DynamoDB) and documents (S3) in moto.

const USER_A: &str = "5b1f0e3c-aaaa-4bbb-8ccc-000000000001";
const USER_B: &str = "5b1f0e3c-aaaa-4bbb-8ccc-000000000002";

fn bot_id(n: u32) -> String {
    format!("01JE000000000000000000{n:04}")
}

const PAGE: &str =
    "The status page lists incidents. Urgent incidents are handled around the clock.";

struct Aws {
    sdk: aws_config::SdkConfig,
    table: String,
    bucket: String,
}

async fn sdk() -> aws_config::SdkConfig {
    shared_moto().sdk_config().await
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn list(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| s(x)).collect())
}

/// A bot item as the platform stores it.
fn bot_item(
    user: &str,
    bot: &str,
    files: &[&str],
    urls: &[&str],
) -> HashMap<String, AttributeValue> {
    let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let urls: Vec<String> = urls.iter().map(|f| f.to_string()).collect();
    HashMap::from([
        ("PK".into(), s(user)),
        ("SK".into(), s(&format!("{user}#BOT#{bot}"))),
        ("Title".into(), s(&format!("bot {bot}"))),
        (
            "Knowledge".into(),
            AttributeValue::M(HashMap::from([
                ("source_urls".into(), list(&urls)),
                ("sitemap_urls".into(), list(&[])),
                ("filenames".into(), list(&files)),
            ])),
        ),
        (
            "EmbeddingParams".into(),
            AttributeValue::M(HashMap::from([
                ("chunk_size".into(), AttributeValue::N("200".into())),
                ("chunk_overlap".into(), AttributeValue::N("40".into())),
            ])),
        ),
        ("SyncStatus".into(), s("SUCCEEDED")),
        ("SyncStatusReason".into(), s("")),
        ("LastExecId".into(), s("old-platform-task")),
    ])
}

impl Aws {
    /// The bot items `items` in a new table, and in a new bucket every document they name
    /// (`handbook.md` holding [`HANDBOOK`], `faq.txt` [`FAQ`], any other [`VI`]) except those
    /// named `missing.*` or `gone.*`, which the registry names but S3 lacks.
    async fn new(items: Vec<HashMap<String, AttributeValue>>) -> Aws {
        let sdk = sdk().await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let table = ragshift_testkit::dynamo::create_conversation_table(&ddb, "bots").await;
        let mut objects = Vec::new();
        for item in &items {
            let (user, sk) = (item["PK"].as_s().unwrap(), item["SK"].as_s().unwrap());
            let bot = sk.rsplit('#').next().unwrap();
            let knowledge = item["Knowledge"].as_m().unwrap();
            for name in knowledge["filenames"].as_l().unwrap() {
                let name = name.as_s().unwrap();
                if name.starts_with("missing.") || name.starts_with("gone.") {
                    continue;
                }
                let body = match name.as_str() {
                    "handbook.md" => HANDBOOK,
                    "faq.txt" => FAQ,
                    _ => VI,
                };
                let key = format!("{user}/{bot}/documents/{name}");
                objects.push((key, body.as_bytes().to_vec()));
            }
        }
        ragshift_testkit::dynamo::put_items(&ddb, &table, items).await;
        let s3 = ragshift_testkit::s3::client(&sdk);
        let bucket = ragshift_testkit::s3::bucket_with(&s3, "docs", objects).await;
        Aws { sdk, table, bucket }
    }

    fn env(&self, target_url: &str) -> Vec<(String, String)> {
        let mut env = shared_moto().ragshift_env();
        env.extend([
            ("RAGSHIFT_REGISTRY_KIND".into(), "dynamodb".into()),
            ("RAGSHIFT_REGISTRY_TABLE".into(), self.table.clone()),
            ("RAGSHIFT_DOCUMENTS_KIND".into(), "s3".into()),
            ("RAGSHIFT_DOCUMENTS_BUCKET".into(), self.bucket.clone()),
            ("RAGSHIFT_TARGET_URL".into(), target_url.to_owned()),
            ("RAGSHIFT_INGEST_ALLOW_HOSTS".into(), "127.0.0.1".into()),
        ]);
        env
    }

    /// `SyncStatus`, `SyncStatusReason`, `LastExecId` of a bot.
    async fn status(&self, user: &str, bot: &str) -> (String, String, String) {
        let ddb = aws_sdk_dynamodb::Client::new(&self.sdk);
        ragshift_testkit::dynamo::sync_status(&ddb, &self.table, user, bot).await
    }

    async fn set_exec(&self, user: &str, bot: &str, status: &str, exec: &str) {
        let ddb = aws_sdk_dynamodb::Client::new(&self.sdk);
        ddb.update_item()
            .table_name(&self.table)
            .key("PK", s(user))
            .key("SK", s(&format!("{user}#BOT#{bot}")))
            .update_expression("SET SyncStatus = :s, LastExecId = :e")
            .expression_attribute_values(":s", s(status))
            .expression_attribute_values(":e", s(exec))
            .send()
            .await
            .unwrap();
    }
}

/// Asserts the target at `url` holds exactly the chunks of `reference` (see [`contents`]) and
/// no row id twice; `what` names the check.
async fn assert_rows_are(
    url: &str,
    reference: &BTreeMap<String, Vec<(String, String)>>,
    what: &str,
) {
    let now = rows(url).await;
    assert_eq!(&contents(&now), reference, "{what}");
    let total: usize = now.values().map(Vec::len).sum();
    let distinct: std::collections::HashSet<&String> =
        now.values().flatten().map(|r| &r.0).collect();
    assert_eq!(distinct.len(), total, "{what}: no id twice");
}

/// Rows of the target per bot: (id, content, source), sorted by content then source.
async fn rows(url: &str) -> BTreeMap<String, Vec<(String, String, String)>> {
    let client = shared_pg().connect(url).await;
    let exists: bool = scalar(&client, "SELECT to_regclass('public.items') IS NOT NULL").await;
    let mut out: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    if !exists {
        return out;
    }
    for r in client
        .query(
            "SELECT rtrim(botid), rtrim(id), content, source FROM items",
            &[],
        )
        .await
        .unwrap()
    {
        out.entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3)));
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    }
    out
}

/// Content and source only (what must be equal between two runs; ids are new each time).
fn contents(
    rows: &BTreeMap<String, Vec<(String, String, String)>>,
) -> BTreeMap<String, Vec<(String, String)>> {
    rows.iter()
        .map(|(b, v)| {
            (
                b.clone(),
                v.iter().map(|(_, c, s)| (c.clone(), s.clone())).collect(),
            )
        })
        .collect()
}

fn ids(rows: &BTreeMap<String, Vec<(String, String, String)>>, bot: &str) -> Vec<String> {
    let mut v: Vec<String> = rows
        .get(bot)
        .map(|r| r.iter().map(|x| x.0.clone()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rebuild_end_to_end_with_dynamodb_s3_statuses_and_resume() {
    let (a, b, c) = (bot_id(1), bot_id(2), bot_id(3));
    let alias = bot_item(USER_B, &a, &[], &[]);
    let mut alias = alias;
    alias.insert("SK".into(), s(&format!("{USER_B}#BOT_ALIAS#{a}")));
    let aws = Aws::new(vec![
        bot_item(USER_A, &a, &["handbook.md", "faq.txt"], &[]),
        bot_item(USER_A, &b, &["huong-dan.md", "missing.pdf"], &[]),
        bot_item(USER_B, &c, &[], &[]),
        alias,
    ])
    .await;
    let url = shared_pg().fresh_database("rebuild_e2e");
    let env = aws.env(&url);
    let dir = tempfile::tempdir().unwrap();

    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &env);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one bot fails: {}",
        stderr(&out)
    );
    let ev = events(&out);
    let started = event(&ev, "run_started");
    assert_eq!(
        started[0]["bots"], 2,
        "the bot without knowledge and the alias are not jobs"
    );
    let run_id = started[0]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(event(&ev, "bot_started").len(), 2);
    let finished = event(&ev, "bot_finished");
    let fa = finished.iter().find(|e| e["bot_id"] == a.as_str()).unwrap();
    let fb = finished.iter().find(|e| e["bot_id"] == b.as_str()).unwrap();
    assert_eq!(fa["status"], "succeeded");
    assert_eq!(fa["user_id"], USER_A);
    assert!(fa["sources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "loaded"));
    assert_eq!(fb["status"], "failed");
    assert!(
        fb["error"].as_str().unwrap().contains("missing.pdf"),
        "{fb}"
    );
    let run_finished = event(&ev, "run_finished");
    assert_eq!(
        (
            &run_finished[0]["succeeded"],
            &run_finished[0]["failed"],
            &run_finished[0]["skipped"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(ev.last().unwrap()["event"], "report");

    // The target: A's chunks with the platform's S3 sources; nothing for B (failed) or C.
    let got = rows(&url).await;
    let a_rows = got.get(&a).unwrap();
    assert_eq!(a_rows.len() as u64, fa["chunks"].as_u64().unwrap());
    assert!(a_rows.len() >= 3, "chunk_size 200 splits the handbook");
    assert!(a_rows.iter().all(|r| r.2
        == format!("s3://{}/{USER_A}/{a}/documents/handbook.md", aws.bucket)
        || r.2 == format!("s3://{}/{USER_A}/{a}/documents/faq.txt", aws.bucket)));
    assert!(a_rows.iter().all(|r| r.1.chars().count() <= 200));
    assert!(!got.contains_key(&b) && !got.contains_key(&c));

    // The registry, as the platform's worker would have left it.
    let exec = format!("ragshift-{run_id}");
    assert_eq!(
        aws.status(USER_A, &a).await,
        ("SUCCEEDED".into(), REASON_INSERTED.into(), exec.clone())
    );
    let (st, reason, last) = aws.status(USER_A, &b).await;
    assert_eq!((st.as_str(), last.as_str()), ("FAILED", exec.as_str()));
    assert!(reason.contains("missing.pdf"), "{reason}");
    assert_eq!(
        aws.status(USER_B, &c).await.2,
        "old-platform-task",
        "skipped bots are untouched"
    );

    // The journal and the index.
    let client = shared_pg().connect(&url).await;
    let units = client
        .query("SELECT unit_id, status, row_count, checksum FROM ragshift.units WHERE run_id = $1 ORDER BY unit_id", &[&run_id])
        .await
        .unwrap();
    assert_eq!(units.len(), 2);
    assert_eq!(units[0].get::<_, String>(1), "succeeded");
    assert_eq!(units[0].get::<_, Option<i64>>(2), Some(a_rows.len() as i64));
    assert!(units[0].get::<_, Option<String>>(3).is_some());
    assert_eq!(units[1].get::<_, String>(1), "failed");
    let hnsw: i64 = scalar(
        &client,
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'items' AND indexdef LIKE '%hnsw%'",
    )
    .await;
    assert_eq!(hnsw, 1, "the vector index is built after the last bot");
    // Through the build engine: its memory before, its end after, with every row.
    let memory = event(&ev, "index_memory");
    assert_eq!(memory.len(), 1, "{ev:?}");
    assert_eq!(
        (&memory[0]["method"], &memory[0]["rows"]),
        (&Value::from("hnsw"), &Value::from(a_rows.len()))
    );
    let ended: Vec<_> = event(&ev, "index_progress")
        .into_iter()
        .filter(|e| e["done"] == true)
        .collect();
    assert_eq!(ended.len(), 1, "{ev:?}");
    assert_eq!(ended[0]["tuples_done"], a_rows.len());

    // The same command again resumes the unfinished run: A is not redone, B fails again.
    let a_ids = ids(&got, &a);
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &env);
    assert_exit(&out, 1);
    let ev = events(&out);
    assert_eq!(event(&ev, "run_started")[0]["run_id"], run_id.as_str());
    assert_eq!(event(&ev, "run_started")[0]["bots"], 1);
    let report = &ev.last().unwrap()["report"];
    assert_eq!(
        (report["resumed"].as_bool(), report["already_done"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(
        ids(&rows(&url).await, &a),
        a_ids,
        "A's rows were not rewritten"
    );

    // With --allow-partial, B succeeds from the file that exists, with a warning.
    let out = ragshift(
        dir.path(),
        &["rebuild", "--yes", "--json", "--allow-partial", "--bot", &b],
        &env,
    );
    assert_exit(&out, 0);
    let ev = events(&out);
    let fb = event(&ev, "bot_finished")[0];
    assert_eq!(fb["status"], "succeeded");
    assert!(fb["error"].as_str().unwrap().contains("missing.pdf"));
    let b_rows = rows(&url).await.remove(&b).unwrap();
    assert!(b_rows.iter().all(|r| r.2.ends_with("/huong-dan.md")));
    assert!(
        b_rows.iter().any(|r| r.1.contains("đổi trả")),
        "Vietnamese text intact"
    );
    assert_eq!(aws.status(USER_A, &b).await.0, "SUCCEEDED");

    // `status` reports the latest run.
    let out = ragshift(dir.path(), &["status", "--json"], &env);
    assert_exit(&out, 0);
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["counts"]["succeeded"], 1);
}

#[tokio::test]
async fn a_dry_run_calls_no_provider_and_writes_nothing() {
    let a = bot_id(11);
    let aws = Aws::new(vec![bot_item(USER_A, &a, &["handbook.md"], &[])]).await;
    // An OpenAI-compatible endpoint that only counts connections.
    let provider = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!(
        "http://127.0.0.1:{}/v1",
        provider.local_addr().unwrap().port()
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    std::thread::spawn(move || {
        for _ in provider.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let url = shared_pg().fresh_database("rebuild_dry");
    let mut env = aws.env(&url);
    env.extend([
        ("RAGSHIFT_EMBEDDING_PROVIDER".into(), "openai".into()),
        ("RAGSHIFT_EMBEDDING_BASE_URL".into(), base),
        (
            "RAGSHIFT_EMBEDDING_MODEL".into(),
            "text-embedding-3-small".into(),
        ),
        ("OPENAI_API_KEY".into(), "sk-test".into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = ragshift(dir.path(), &["rebuild", "--dry-run", "--json"], &env);
    assert_exit(&out, 0);
    let ev = events(&out);
    let fa = event(&ev, "bot_finished")[0];
    assert!(fa["chunks"].as_u64().unwrap() >= 1, "chunks are counted");
    let report = &ev.last().unwrap();
    assert!(report["embedding"]["est_tokens"].as_u64().unwrap() > 0);
    assert!(report["embedding"]["est_cost_usd"].as_f64().is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no provider call");
    let client = shared_pg().connect(&url).await;
    let (items, journal): (bool, bool) = {
        let r = client
            .query_one(
                "SELECT to_regclass('public.items') IS NOT NULL, to_regnamespace('ragshift') IS NOT NULL",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(!items && !journal, "nothing written to the target");
    assert_eq!(
        aws.status(USER_A, &a).await.2,
        "old-platform-task",
        "no registry write"
    );
}

#[tokio::test]
async fn embed_bot_takes_the_platform_keys_from_argv_or_event() {
    let (a, b, f) = (bot_id(21), bot_id(22), bot_id(23));
    let aws = Aws::new(vec![
        bot_item(USER_A, &a, &["faq.txt"], &[]),
        bot_item(USER_B, &b, &["handbook.md"], &[]),
        bot_item(USER_B, &f, &["gone.docx"], &[]),
    ])
    .await;
    let url = shared_pg().fresh_database("embed_bot");
    let env = aws.env(&url);
    let dir = tempfile::tempdir().unwrap();
    let keys = |u: &str, bot: &str| {
        json!({"PK": {"S": u}, "SK": {"S": format!("{u}#BOT#{bot}")}}).to_string()
    };

    let out = ragshift(dir.path(), &["embed-bot", &keys(USER_A, &a)], &env);
    assert_exit(&out, 0);
    let mut with_event = env.clone();
    with_event.push(("EVENT".into(), keys(USER_B, &b)));
    let out = ragshift(
        dir.path(),
        &["embed-bot", "--exec-id", "task-123"],
        &with_event,
    );
    assert_exit(&out, 0);
    let got = rows(&url).await;
    assert!(got.contains_key(&a) && got.contains_key(&b));
    assert_eq!(
        aws.status(USER_B, &b).await,
        (
            "SUCCEEDED".into(),
            REASON_INSERTED.into(),
            "task-123".into()
        )
    );

    let out = ragshift(dir.path(), &["embed-bot", &keys(USER_B, &f)], &env);
    assert_exit(&out, 1);
    let (st, reason, _) = aws.status(USER_B, &f).await;
    assert_eq!(st, "FAILED");
    assert!(reason.contains("gone.docx"), "{reason}");

    let out = ragshift(
        dir.path(),
        &["embed-bot", r#"{"PK":{"S":"u"},"SK":{"S":"u#CONV#x"}}"#],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a conversation key is not a bot"
    );
}

#[tokio::test]
async fn running_is_set_first_and_a_stale_run_never_overwrites_a_newer_status() {
    let gate = Gate::start(PAGE);
    gate.hold.store(true, Ordering::SeqCst);
    let a = bot_id(31);
    let aws = Aws::new(vec![bot_item(USER_A, &a, &[], &[&gate.url])]).await;
    let url = shared_pg().fresh_database("stale");
    let env = aws.env(&url);
    let dir = tempfile::tempdir().unwrap();
    let keys = json!({"PK": {"S": USER_A}, "SK": {"S": format!("{USER_A}#BOT#{a}")}}).to_string();
    let mut child = spawn(
        dir.path(),
        &["embed-bot", "--exec-id", "old-run", &keys],
        &env,
    );

    let release = gate.next();
    // The worker is fetching: it has claimed the bot.
    assert_eq!(
        aws.status(USER_A, &a).await,
        ("RUNNING".into(), String::new(), "old-run".into())
    );
    // Meanwhile a newer run takes the bot over.
    aws.set_exec(USER_A, &a, "RUNNING", "newer-run").await;
    release.send(()).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the old worker still finishes its own work"
    );
    assert_eq!(
        aws.status(USER_A, &a).await.2,
        "newer-run",
        "the stale run did not overwrite the newer run's status"
    );
    assert_eq!(aws.status(USER_A, &a).await.0, "RUNNING");
}

/// A file registry of bot `a` with `files` and bot `b`, whose one document (`missing.pdf`) is
/// listed but absent, so `b` fails.
fn write_registry_b_failing(dir: &Path, a: &str, files: Vec<&str>, b: &str) {
    write_registry(
        dir,
        &[
            (a.to_owned(), files, vec![]),
            (b.to_owned(), vec!["missing.pdf"], vec![]),
        ],
    );
    let missing = dir.join("docs").join(USER_A).join(b);
    std::fs::remove_file(missing.join("documents/missing.pdf")).unwrap();
}

/// A file registry (the `aws dynamodb scan` JSON) of `USER_A`'s `bots` and their documents.
fn write_registry(dir: &Path, bots: &[(String, Vec<&str>, Vec<String>)]) {
    common::write_file_registry(dir, USER_A, bots);
}

#[tokio::test]
async fn sigkill_at_any_point_then_resume_gives_the_rows_of_an_uninterrupted_run() {
    let gate = Gate::start(PAGE);
    let bots: Vec<(String, Vec<&str>, Vec<String>)> = vec![
        (bot_id(41), vec!["faq.txt"], vec![gate.url.clone()]),
        (bot_id(42), vec!["handbook.md"], vec![]),
        (bot_id(43), vec!["vi.md"], vec![gate.url.clone()]),
        (bot_id(44), vec!["handbook.md", "faq.txt"], vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), &bots);
    let env_for = |url: &str| {
        file_env_with(
            url,
            &[
                ("RAGSHIFT_INGEST_ALLOW_HOSTS", "127.0.0.1"),
                ("RAGSHIFT_EXECUTOR_CONCURRENCY", "1"),
            ],
        )
    };
    let cmd = ["rebuild", "--yes", "--json"];

    // The reference: an uninterrupted run into its own database.
    let reference_url = shared_pg().fresh_database("kill_ref");
    let out = ragshift(dir.path(), &cmd, &env_for(&reference_url));
    assert_exit(&out, 0);
    let reference = contents(&rows(&reference_url).await);
    assert_eq!(reference.len(), 4);

    // The target already holds a complete earlier migration ("old rows").
    let url = shared_pg().fresh_database("kill");
    let env = env_for(&url);
    let out = ragshift(dir.path(), &cmd, &env);
    assert_exit(&out, 0);
    let old = rows(&url).await;

    // Run 2, killed while the FIRST bot is being processed (nothing finished yet).
    gate.hold.store(true, Ordering::SeqCst);
    let mut child = spawn(dir.path(), &cmd, &env);
    let held = gate.next();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(held);
    let now = rows(&url).await;
    for (bot, _, _) in &bots {
        assert_eq!(
            ids(&now, bot),
            ids(&old, bot),
            "bot {bot}: old rows intact after the kill"
        );
    }

    // Resumed, killed while the THIRD bot is being processed (two bots done).
    let mut child = spawn(dir.path(), &cmd, &env);
    gate.next().send(()).unwrap(); // bot 1 fetches its page again: let it through
    let held = gate.next(); // bot 3
    child.kill().unwrap();
    child.wait().unwrap();
    drop(held);
    let now = rows(&url).await;
    for (i, (bot, _, _)) in bots.iter().enumerate() {
        let (new_ids, old_ids) = (ids(&now, bot), ids(&old, bot));
        if i < 2 {
            assert!(
                new_ids.iter().all(|id| !old_ids.contains(id)),
                "bot {bot}: completely new rows"
            );
            assert_eq!(contents(&now)[bot], reference[bot], "bot {bot}: complete");
        } else {
            assert_eq!(new_ids, old_ids, "bot {bot}: old rows intact");
        }
    }

    // Resumed to the end: the remaining bots only, and the same rows as the uninterrupted run.
    gate.hold.store(false, Ordering::SeqCst);
    let out = ragshift(dir.path(), &cmd, &env);
    assert_exit(&out, 0);
    let ev = events(&out);
    let report = &ev.last().unwrap()["report"];
    assert_eq!(report["resumed"], true);
    assert_eq!(report["already_done"], 2);
    let redone: Vec<&str> = event(&ev, "bot_finished")
        .iter()
        .map(|e| e["bot_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        redone,
        vec![bots[2].0.as_str(), bots[3].0.as_str()],
        "only the unfinished bots ran"
    );
    assert_rows_are(&url, &reference, "same chunks, none missing, no duplicates").await;
}

#[tokio::test]
async fn seeding_the_cache_from_the_old_store_makes_unchanged_chunks_free() {
    let bots: Vec<(String, Vec<&str>, Vec<String>)> = vec![
        (bot_id(51), vec!["handbook.md", "faq.txt"], vec![]),
        (bot_id(52), vec!["vi.md"], vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), &bots);
    let env_for = |url: &str| -> Vec<(String, String)> {
        vec![
            ("RAGSHIFT_REGISTRY_PATH".into(), "bots.json".into()),
            ("RAGSHIFT_DOCUMENTS_PATH".into(), "docs".into()),
            ("RAGSHIFT_TARGET_URL".into(), url.to_owned()),
        ]
    };
    // The "old cluster": a store made by the same model.
    let old = shared_pg().fresh_database("seed_old");
    let out = ragshift(dir.path(), &["rebuild", "--yes"], &env_for(&old));
    assert_exit(&out, 0);

    let new = shared_pg().fresh_database("seed_new");
    let mut env = env_for(&new);
    env.push(("RAGSHIFT_SOURCE_URL".into(), old.clone()));
    let out = ragshift(
        dir.path(),
        &["rebuild", "--yes", "--json", "--seed-cache-from-source"],
        &env,
    );
    assert_exit(&out, 0);
    let ev = events(&out);
    let usage = &ev.last().unwrap()["embedding"]["usage"]["usage"][0];
    let chunks: u64 = event(&ev, "bot_finished")
        .iter()
        .map(|b| b["chunks"].as_u64().unwrap())
        .sum();
    assert!(chunks > 0);
    assert_eq!(usage["calls"], 0, "no chunk was embedded again: {usage}");
    assert_eq!(usage["cache_hits"].as_u64(), Some(chunks));
    assert_eq!(contents(&rows(&new).await), contents(&rows(&old).await));
    // Same vectors as the old store, byte for byte.
    let vectors = |url: String| async move {
        let c = shared_pg().connect(&url).await;
        let mut v: Vec<(String, Vec<u8>)> = c
            .query("SELECT content, vector_send(embedding) FROM items", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        v.sort();
        v
    };
    assert_eq!(vectors(new).await, vectors(old).await);
}

// ---------------------------------------------------------------------------------------------
// Exit codes, the journal after an error, and resuming on purpose (file registry, local model).

/// The environment of a rebuild from `bots.json` and `docs/` in the test's directory.
/// [`file_env`] and then `extra`.
fn file_env_with(url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = file_env(url);
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

fn file_env(url: &str) -> Vec<(String, String)> {
    vec![
        ("RAGSHIFT_REGISTRY_KIND".into(), "file".into()),
        ("RAGSHIFT_REGISTRY_PATH".into(), "bots.json".into()),
        ("RAGSHIFT_DOCUMENTS_KIND".into(), "dir".into()),
        ("RAGSHIFT_DOCUMENTS_PATH".into(), "docs".into()),
        ("RAGSHIFT_TARGET_URL".into(), url.to_owned()),
    ]
}

/// (status, error) of every rebuild run, oldest first.
async fn runs(url: &str) -> Vec<(String, String, Option<String>)> {
    shared_pg()
        .connect(url)
        .await
        .query(
            "SELECT run_id, status, error FROM ragshift.runs WHERE kind = 'rebuild' ORDER BY started_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// The final `report` of a `--json` run.
fn report(out: &Output) -> Value {
    let ev = events(out);
    let last = ev
        .last()
        .unwrap_or_else(|| panic!("no events: {}", stderr(out)));
    assert_eq!(last["event"], "report", "{}", stderr(out));
    last["report"].clone()
}

#[tokio::test]
async fn an_error_after_the_run_started_exits_1_and_the_journal_records_why() {
    let a = bot_id(61);
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), &[(a.clone(), vec!["faq.txt"], vec![])]);
    let url = shared_pg().fresh_database("rebuild_stop");
    let c = shared_pg().connect(&url).await;
    ragshift_store::journal::Journal::default()
        .ensure_schema(&c)
        .await
        .unwrap();
    // Queueing the run's bots fails: the run is recorded by then.
    c.batch_execute(
        "CREATE FUNCTION ragshift.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'test: units refused'; END $$;
         CREATE TRIGGER test_refuse BEFORE INSERT ON ragshift.units
           FOR EACH ROW EXECUTE FUNCTION ragshift.test_refuse();",
    )
    .await
    .unwrap();
    let out = ragshift(dir.path(), &["rebuild", "--yes"], &file_env(&url));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("units refused"), "{}", stderr(&out));
    let r = runs(&url).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, "failed", "never left running");
    assert!(
        r[0].2
            .as_deref()
            .unwrap_or_default()
            .contains("units refused"),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_nul_in_a_file_name_fails_that_bot_and_the_journal_is_complete() {
    let (a, b) = (bot_id(62), bot_id(63));
    let dir = tempfile::tempdir().unwrap();
    write_registry(
        dir.path(),
        &[
            (a.clone(), vec!["faq.txt"], vec![]),
            (b.clone(), vec!["badname.txt"], vec![]),
        ],
    );
    // The registry names a file with a NUL in it (no such file can exist).
    let registry = dir.path().join("bots.json");
    let text = std::fs::read_to_string(&registry).unwrap();
    std::fs::write(&registry, text.replace("badname.txt", "bad\\u0000name.txt")).unwrap();
    let url = shared_pg().fresh_database("rebuild_nul");
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &file_env(&url));
    assert_exit(&out, 1);
    let rep = report(&out);
    assert_eq!(
        (rep["succeeded"].as_u64(), rep["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let r = runs(&url).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, "failed");
    let units = shared_pg()
        .connect(&url)
        .await
        .query(
            "SELECT unit_id, status, error FROM ragshift.units ORDER BY unit_id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = units.iter().map(|u| (u.get(0), u.get(1))).collect();
    assert_eq!(
        got,
        vec![(a, "succeeded".to_owned()), (b, "failed".to_owned())]
    );
    let why: Option<String> = units[1].get(2);
    assert!(
        why.unwrap_or_default().contains("name.txt"),
        "the failure is recorded"
    );
}

#[tokio::test]
async fn resume_redoes_a_bot_whose_knowledge_changed_since_it_succeeded() {
    let (a, b) = (bot_id(64), bot_id(65));
    let dir = tempfile::tempdir().unwrap();
    write_registry_b_failing(dir.path(), &a, vec!["handbook.md", "faq.txt"], &b);
    let url = shared_pg().fresh_database("rebuild_changed");
    let env = file_env(&url);
    let cmd = ["rebuild", "--yes", "--json"];
    let out = ragshift(dir.path(), &cmd, &env);
    assert_eq!(out.status.code(), Some(1), "B fails: {}", stderr(&out));
    let first = report(&out)["run_id"].as_str().unwrap().to_owned();
    assert_eq!(
        runs(&url).await[0].1,
        "failed",
        "a run with a failed bot failed"
    );
    assert!(rows(&url).await[&a]
        .iter()
        .any(|r| r.2.ends_with("faq.txt")));

    // faq.txt is removed from A's knowledge in the registry.
    write_registry_b_failing(dir.path(), &a, vec!["handbook.md"], &b);
    let out = ragshift(dir.path(), &cmd, &env);
    assert_exit(&out, 1);
    let rep = report(&out);
    assert_eq!(rep["run_id"], first.as_str(), "the same run is resumed");
    assert_eq!(rep["resumed_from"]["run_id"], first.as_str());
    assert!(rep["resumed_from"]["age_seconds"].as_f64().is_some());
    assert_eq!(rep["changed"], json!([a.clone()]));
    assert_eq!(rep["already_done"], 0, "A is not skipped");
    let a_rows = rows(&url).await.remove(&a).unwrap();
    assert!(
        a_rows.iter().all(|r| r.2.ends_with("handbook.md")),
        "no chunk of the removed file is left: {a_rows:?}"
    );

    // Text output says which run it continues and how old it is.
    let out = ragshift(dir.path(), &["rebuild", "--yes"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("run {first} (resumed: continues the run started")),
        "{stdout}"
    );
}

#[tokio::test]
async fn an_old_unfinished_run_or_fresh_starts_a_new_run_and_says_why() {
    let (a, b) = (bot_id(66), bot_id(67));
    let dir = tempfile::tempdir().unwrap();
    write_registry_b_failing(dir.path(), &a, vec!["faq.txt"], &b);
    let url = shared_pg().fresh_database("rebuild_window");
    let env = file_env(&url);
    let cmd = ["rebuild", "--yes", "--json"];
    let out = ragshift(dir.path(), &cmd, &env);
    assert_exit(&out, 1);
    let first = report(&out)["run_id"].as_str().unwrap().to_owned();

    // Two days later the same command starts afresh: A is done again, and the reason is given.
    shared_pg()
        .connect(&url)
        .await
        .execute(
            "UPDATE ragshift.runs SET started_at = now() - interval '2 days' WHERE run_id = $1",
            &[&first],
        )
        .await
        .unwrap();
    let out = ragshift(dir.path(), &cmd, &env);
    assert_exit(&out, 1);
    let rep = report(&out);
    let second = rep["run_id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(rep["resumed"], false);
    assert!(rep["resumed_from"].is_null());
    let why = rep["fresh_reason"].as_str().unwrap();
    assert!(
        why.contains(&first) && why.contains("resume window") && why.contains("2d"),
        "{why}"
    );
    assert_eq!(event(&events(&out), "bot_finished").len(), 2, "A is redone");

    // Within the window it resumes; --fresh starts a new run anyway and says so.
    let out = ragshift(dir.path(), &cmd, &env);
    assert_eq!(report(&out)["run_id"], second.as_str());
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json", "--fresh"], &env);
    let rep = report(&out);
    assert!(rep["run_id"] != second.as_str() && rep["run_id"] != first.as_str());
    assert!(
        rep["fresh_reason"].as_str().unwrap().contains("--fresh"),
        "{rep}"
    );
    // A shorter window passes over the young run too.
    let out = ragshift(
        dir.path(),
        &["rebuild", "--yes", "--json", "--resume-window", "0"],
        &env,
    );
    assert!(report(&out)["fresh_reason"]
        .as_str()
        .unwrap()
        .contains("resume window"));
    // Every run held a failed bot: every run failed.
    assert!(runs(&url).await.iter().all(|r| r.1 == "failed"));
}

#[tokio::test]
async fn runs_of_another_registry_or_model_are_not_resumed_and_gone_bots_are_skipped() {
    let (a, b) = (bot_id(68), bot_id(69));
    let dir = tempfile::tempdir().unwrap();
    write_registry_b_failing(dir.path(), &a, vec!["faq.txt"], &b);
    let url = shared_pg().fresh_database("rebuild_settings");
    let env = file_env(&url);
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &env);
    assert_exit(&out, 1);
    let first = report(&out)["run_id"].as_str().unwrap().to_owned();

    // Another registry file with the same selection: a new run, naming what differs.
    std::fs::copy(dir.path().join("bots.json"), dir.path().join("other.json")).unwrap();
    let mut other = env.clone();
    other.push(("RAGSHIFT_REGISTRY_PATH".into(), "other.json".into()));
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &other);
    let rep = report(&out);
    assert_ne!(rep["run_id"], first.as_str());
    let why = rep["fresh_reason"].as_str().unwrap();
    assert!(
        why.contains("registry") && why.contains("other.json"),
        "{why}"
    );

    // --resume of a run made from another registry is refused before anything.
    let out = ragshift(
        dir.path(),
        &["rebuild", "--yes", "--resume", &first],
        &other,
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("other settings"), "{}", stderr(&out));

    // B leaves the registry: resuming the first run marks it skipped with the reason, and
    // the run, holding no failed bot any more, succeeds.
    write_registry(dir.path(), &[(a.clone(), vec!["faq.txt"], vec![])]);
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &env);
    assert_exit(&out, 0);
    assert_eq!(report(&out)["run_id"], first.as_str());
    let unit = shared_pg()
        .connect(&url)
        .await
        .query_one(
            "SELECT status, error FROM ragshift.units WHERE run_id = $1 AND unit_id = $2",
            &[&first, &b],
        )
        .await
        .unwrap();
    assert_eq!(unit.get::<_, String>(0), "skipped");
    assert!(unit
        .get::<_, Option<String>>(1)
        .unwrap()
        .contains("no longer selected"));
}

#[tokio::test]
async fn linked_oversized_and_badly_named_documents_fail_their_bot_only() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0:TopSecretAccount:/root:/bin/bash\n").unwrap();
    let (good, linked, huge, nul) = (bot_id(61), bot_id(62), bot_id(63), bot_id(64));
    write_registry(
        dir.path(),
        &[
            (good.clone(), vec!["faq.txt"], vec![]),
            (linked.clone(), vec![], vec![]),
            (huge.clone(), vec![], vec![]),
        ],
    );
    // Registry entries for the refused documents (write_registry writes real files).
    let mut registry: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bots.json")).unwrap())
            .unwrap();
    let items = registry["Items"].as_array_mut().unwrap();
    items[1]["Knowledge"]["M"]["filenames"] = json!({"L": [{"S": "passwd.txt"}]});
    items[2]["Knowledge"]["M"]["filenames"] = json!({"L": [{"S": "huge.txt"}]});
    let mut nul_item = items[0].clone();
    nul_item["SK"] = json!({"S": format!("{USER_A}#BOT#{nul}")});
    nul_item["Knowledge"]["M"]["filenames"] = json!({"L": [{"S": "a\u{0}b.txt"}]});
    items.push(nul_item);
    std::fs::write(dir.path().join("bots.json"), registry.to_string()).unwrap();
    let docs = |bot: &str| {
        let d = dir
            .path()
            .join("docs")
            .join(USER_A)
            .join(bot)
            .join("documents");
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    std::os::unix::fs::symlink(&secret, docs(&linked).join("passwd.txt")).unwrap();
    // 64 GiB, sparse: refused from its size, never read.
    std::fs::File::create(docs(&huge).join("huge.txt"))
        .unwrap()
        .set_len(64 << 30)
        .unwrap();

    let url = shared_pg().fresh_database("refused_docs");
    let env: Vec<(String, String)> = vec![
        ("RAGSHIFT_REGISTRY_KIND".into(), "file".into()),
        ("RAGSHIFT_REGISTRY_PATH".into(), "bots.json".into()),
        ("RAGSHIFT_DOCUMENTS_KIND".into(), "dir".into()),
        ("RAGSHIFT_DOCUMENTS_PATH".into(), "docs".into()),
        ("RAGSHIFT_TARGET_URL".into(), url.clone()),
        ("RAGSHIFT_INGEST_MAX_BYTES".into(), "100000".into()),
    ];
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &env);
    assert_exit(&out, 1);
    let ev = events(&out);
    let finished = event(&ev, "bot_finished");
    let status = |bot: &str| {
        finished
            .iter()
            .find(|e| e["bot_id"] == bot)
            .unwrap_or_else(|| panic!("no bot_finished for {bot}: {ev:?}"))
    };
    assert_eq!(status(&good)["status"], "succeeded");
    for (bot, says) in [
        (&linked, "symbolic link"),
        (&huge, "max_bytes"),
        (&nul, "not a plain file name"),
    ] {
        let e = status(bot);
        assert_eq!(e["status"], "failed", "{e}");
        assert!(e.to_string().contains(says), "{bot}: {e}");
    }
    let rows = rows(&url).await;
    assert!(rows.contains_key(&good));
    assert!(!rows.contains_key(&linked) && !rows.contains_key(&huge) && !rows.contains_key(&nul));
    let all = format!("{rows:?}");
    assert!(
        !all.contains("TopSecretAccount"),
        "the linked file was never read"
    );
}

/// Runs recorded in the target's journal (0 when it has none yet).
async fn journal_runs(url: &str) -> i64 {
    let client = shared_pg().connect(url).await;
    let row = client
        .query_one("SELECT to_regclass('ragshift.runs') IS NOT NULL", &[])
        .await
        .unwrap();
    if !row.get::<_, bool>(0) {
        return 0;
    }
    client
        .query_one("SELECT count(*) FROM ragshift.runs", &[])
        .await
        .unwrap()
        .get(0)
}

/// Seeded trials of real network faults between `rebuild` and its target: every connection cut
/// at a random byte of what an uninterrupted run sends, or a failover (cut, then new connections
/// refused for a moment). An interrupted run exits 0 (it rode the fault out) or 1 (work had
/// started; 2 only when nothing was written), and running the same command again until it
/// succeeds gives exactly the
/// rows of an uninterrupted run: no chunk missing, none twice, no run left `running`.
#[tokio::test]
async fn rebuild_through_cut_connections_ends_with_the_rows_of_an_uninterrupted_run() {
    let bots: Vec<(String, Vec<&str>, Vec<String>)> = vec![
        (bot_id(71), vec!["faq.txt"], vec![]),
        (bot_id(72), vec!["handbook.md"], vec![]),
        (bot_id(73), vec!["vi.md", "faq.txt"], vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), &bots);
    let env_for = |url: &str| file_env_with(url, &[("RAGSHIFT_EXECUTOR_CONCURRENCY", "1")]);
    let cmd = ["rebuild", "--yes", "--json"];
    let upstream = format!("{}:{}", shared_pg().host(), shared_pg().port());

    // The reference, through a proxy that only counts: how many bytes a whole run sends.
    let reference_url = shared_pg().fresh_database("faults_ref");
    let counter = FaultProxy::start(&upstream).unwrap();
    let out = ragshift(dir.path(), &cmd, &env_for(&counter.url_for(&reference_url)));
    assert_exit(&out, 0);
    let whole_run = counter.forwarded();
    let reference = contents(&rows(&reference_url).await);
    assert_eq!(reference.len(), bots.len());

    let seed = SeededRng::trial_seed("rebuild fault trials");
    for trial in 0..3_u64 {
        let seed = seed.wrapping_add(trial);
        let url = shared_pg().fresh_database("faults");
        let proxy = FaultProxy::start(&upstream).unwrap();
        let through = proxy.url_for(&url);
        let at = proxy.cut_at_random_byte(seed, whole_run);
        if trial == 2 {
            // The third trial is a failover: the cut is followed by refused connections.
            proxy.failover_on_query("COMMIT", 1 + (seed % 3) as u32, Duration::from_secs(2));
        }
        let out = ragshift(dir.path(), &cmd, &env_for(&through));
        let code = out.status.code();
        match code {
            Some(0 | 1) => {}
            // Exit 2 says nothing started: then the fault struck before anything was written.
            Some(2) => {
                assert!(
                    rows(&url).await.is_empty() && journal_runs(&url).await == 0,
                    "trial {trial} (seed {seed}, cut at byte {at}): exit 2 but the target changed:\n{}",
                    stderr(&out)
                );
            }
            other => panic!(
                "trial {trial} (seed {seed}, cut at byte {at}): exit {other:?}:\n{}",
                stderr(&out)
            ),
        }
        if code == Some(1) {
            assert!(
                proxy.cuts() > 0,
                "exit 1 without a fault:\n{}",
                stderr(&out)
            );
        }
        proxy.heal();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let out = ragshift(dir.path(), &cmd, &env_for(&through));
            if out.status.code() == Some(0) {
                break;
            }
            assert!(
                attempts < 3,
                "trial {trial} (seed {seed}): rerun {attempts} without faults failed:\n{}",
                stderr(&out)
            );
        }
        let what = format!("trial {trial} (seed {seed}): the rows of an uninterrupted run");
        assert_rows_are(&url, &reference, &what).await;
        let states: Vec<String> = runs(&url).await.into_iter().map(|r| r.1).collect();
        assert!(
            !states.iter().any(|s| s == "running"),
            "trial {trial} (seed {seed}): runs {states:?}"
        );
        assert_eq!(states.last().map(String::as_str), Some("succeeded"));
    }
}

/// Two bots migrated once into a fresh database: the second also loads a page from `gate`, so
/// a later run can be held inside it. Returns the gate, the bots, the folder, the target and
/// the environment (one job at a time, the gate's host allowed).
struct Migrated {
    gate: Gate,
    bots: Vec<(String, Vec<&'static str>, Vec<String>)>,
    dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
}

impl Migrated {
    /// Starts `ragshift` with `args` while the gate holds its page, and waits until the run is
    /// inside the second bot (it asked for the page): the child, and the page's release handle.
    fn start_held(&self, args: &[&str]) -> (Child, mpsc::Sender<()>) {
        self.gate.hold.store(true, Ordering::SeqCst);
        let child = command(self.dir.path(), args, &self.env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ragshift");
        (child, self.gate.next())
    }
}

async fn migrated_once(first: u32, name: &str) -> Migrated {
    let gate = Gate::start(PAGE);
    let bots: Vec<(String, Vec<&'static str>, Vec<String>)> = vec![
        (bot_id(first), vec!["faq.txt"], vec![]),
        (
            bot_id(first + 1),
            vec!["handbook.md"],
            vec![gate.url.clone()],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), &bots);
    let url = shared_pg().fresh_database(name);
    let env = file_env_with(
        &url,
        &[
            ("RAGSHIFT_INGEST_ALLOW_HOSTS", "127.0.0.1"),
            ("RAGSHIFT_EXECUTOR_CONCURRENCY", "1"),
        ],
    );
    let out = ragshift(dir.path(), &["rebuild", "--yes"], &env);
    assert_exit(&out, 0);
    Migrated {
        gate,
        bots,
        dir,
        url,
        env,
    }
}

#[tokio::test]
async fn sigterm_or_ctrl_c_records_the_run_failed_keeps_old_rows_and_the_rerun_resumes() {
    let m = migrated_once(71, "rebuild_term").await;
    let cmd = ["rebuild", "--yes", "--json"];
    let old = rows(&m.url).await;

    for signal in ["TERM", "INT"] {
        // The second bot is being processed: the run has started.
        let (child, held) = m.start_held(&["rebuild", "--yes", "--json", "--fresh"]);
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        drop(held);
        assert_eq!(out.status.code(), Some(1), "SIG{signal}: {}", stderr(&out));
        assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
        let r = runs(&m.url).await;
        let last = r.last().unwrap();
        assert_eq!(last.1, "failed", "SIG{signal}: never left running: {r:?}");
        assert!(
            last.2
                .as_deref()
                .unwrap_or_default()
                .contains("interrupted"),
            "{r:?}"
        );
        let now = rows(&m.url).await;
        assert_eq!(
            ids(&now, &m.bots[1].0),
            ids(&old, &m.bots[1].0),
            "SIG{signal}: the interrupted bot keeps its old rows"
        );
    }

    // The same command again continues the interrupted run.
    m.gate.hold.store(false, Ordering::SeqCst);
    let out = ragshift(m.dir.path(), &cmd, &m.env);
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(r["resumed"], true, "{r}");
    assert_eq!(r["already_done"], 1, "{r}");
}

#[tokio::test]
async fn a_bot_is_not_committed_once_its_run_lost_the_target_lock() {
    let m = migrated_once(81, "rebuild_lock_lost").await;
    let old = rows(&m.url).await;

    let (child, held) = m.start_held(&["rebuild", "--yes", "--fresh"]); // inside the second bot
    let c = shared_pg().connect(&m.url).await;
    assert_eq!(scalar::<i64>(&c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name LIKE 'ragshift rebuild run %'").await, 1, "the lock's session");
    held.send(()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    let now = rows(&m.url).await;
    assert_eq!(
        ids(&now, &m.bots[1].0),
        ids(&old, &m.bots[1].0),
        "the bot that finished after the lock was lost kept its old rows"
    );
    assert_ne!(
        ids(&now, &m.bots[0].0),
        ids(&old, &m.bots[0].0),
        "the bot before it was rewritten"
    );
    let unit = c
        .query_one(
            "SELECT u.status, u.error FROM ragshift.units u JOIN ragshift.runs r USING (run_id)
              WHERE u.unit_id = $1 ORDER BY r.started_at DESC LIMIT 1",
            &[&m.bots[1].0],
        )
        .await
        .unwrap();
    assert_eq!(unit.get::<_, String>(0), "failed");
    let why: String = unit.get::<_, Option<String>>(1).unwrap_or_default();
    assert!(why.contains("no longer holds its lock"), "{why}");
}

#[tokio::test]
async fn a_bot_whose_commit_answer_was_lost_is_reported_as_the_journal_says() {
    let bots: Vec<(String, Vec<&str>, Vec<String>)> = vec![
        (bot_id(91), vec!["faq.txt"], vec![]),
        (bot_id(92), vec!["handbook.md"], vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), &bots);
    let upstream = format!("{}:{}", shared_pg().host(), shared_pg().port());
    let url = shared_pg().fresh_database("lost_commit_answer");
    // The table and the journal exist: the run's first COMMIT is then the first bot's.
    let out = ragshift(dir.path(), &["init-target"], &file_env(&url));
    assert_exit(&out, 0);
    ragshift_store::journal::Journal::default()
        .ensure_schema(&shared_pg().connect(&url).await)
        .await
        .unwrap();
    let proxy = FaultProxy::start(&upstream).unwrap();
    // It commits, and its answer never arrives.
    proxy.cut_on_query("COMMIT", CutWhen::AfterReply, 1);
    let mut env = file_env(&proxy.url_for(&url));
    env.push(("RAGSHIFT_EXECUTOR_CONCURRENCY".into(), "1".into()));
    let out = ragshift(dir.path(), &["rebuild", "--yes", "--json"], &env);
    assert!(proxy.cuts() > 0, "the fault struck");
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(r["failed"], 0, "the journal says the bot committed: {r}");
    assert!(
        stderr(&out).contains("the journal says it committed"),
        "{}",
        stderr(&out)
    );
    let now = rows(&url).await;
    for (bot, _, _) in &bots {
        assert!(!ids(&now, bot).is_empty(), "bot {bot} has its rows");
    }
}

/// `[run] journal_schema` from the environment: the run, its bots and the embedding cache are
/// kept in that schema only, `status` reads it there, and rerunning with the same setting
/// resumes the run.
#[tokio::test]
async fn the_journal_and_the_cache_live_in_the_schema_the_environment_names() {
    let (a, b) = (bot_id(95), bot_id(96));
    let dir = tempfile::tempdir().unwrap();
    let bots = [
        (a.clone(), vec!["faq.txt"], vec![]),
        (b.clone(), vec!["handbook.md"], vec![]),
    ];
    write_registry(dir.path(), &bots);
    let b_file = dir
        .path()
        .join("docs")
        .join(USER_A)
        .join(&b)
        .join("documents/handbook.md");
    std::fs::remove_file(&b_file).unwrap();
    let url = shared_pg().fresh_database("rebuild_journal_env");
    let env = file_env_with(&url, &[("RAGSHIFT_RUN_JOURNAL_SCHEMA", "other_journal")]);
    let cmd = ["rebuild", "--yes", "--json"];
    let out = ragshift(dir.path(), &cmd, &env);
    assert_eq!(out.status.code(), Some(1), "B fails: {}", stderr(&out));
    let first = report(&out)["run_id"].as_str().unwrap().to_owned();

    let c = shared_pg().connect(&url).await;
    let units: Vec<(String, String)> = c
        .query(
            "SELECT unit_id, status FROM other_journal.units WHERE run_id = $1 ORDER BY unit_id",
            &[&first],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        units,
        [
            (a.clone(), "succeeded".to_owned()),
            (b.clone(), "failed".to_owned())
        ]
    );
    let cached: i64 = scalar(&c, "SELECT count(*) FROM other_journal.embedding_cache").await;
    assert!(cached > 0, "the embedding cache is in the journal's schema");
    assert!(
        !scalar::<bool>(&c, "SELECT to_regnamespace('ragshift') IS NOT NULL").await,
        "the default journal schema was created"
    );

    // `status` reads the run from the same schema.
    let out = ragshift(dir.path(), &["status", "--json", &first], &env);
    assert_eq!(out.status.code(), Some(1), "a failed run: {}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["run"]["run_id"], first.as_str(), "{status}");
    assert_eq!(status["run"]["status"], "failed", "{status}");

    // B's file is back: the same command resumes the run and only B is done now.
    std::fs::write(&b_file, HANDBOOK).unwrap();
    let out = ragshift(dir.path(), &cmd, &env);
    assert_exit(&out, 0);
    let rep = report(&out);
    assert_eq!(
        rep["run_id"],
        first.as_str(),
        "the same run is resumed: {rep}"
    );
    assert_eq!(rep["already_done"], 1, "{rep}");
    let runs: Vec<(String, String)> = c
        .query("SELECT run_id, status FROM other_journal.runs", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(runs, [(first, "succeeded".to_owned())]);
    assert!(
        !scalar::<bool>(&c, "SELECT to_regnamespace('ragshift') IS NOT NULL").await,
        "the default journal schema was created"
    );
}
