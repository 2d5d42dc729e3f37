//! One provider budget per run, with real processes: four `ragshift embed-bot` workers of one
//! run embed against one loopback OpenAI-compatible provider that counts requests per window and
//! answers 429 above its limit. The configured limit holds for the run as a whole: the provider
//! never sees more than the limit in any window, the run uses at least 90 % of it while busy,
//! and every bot succeeds.

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ragshift_store::journal::Journal;
use ragshift_store::lock::TargetLock;
use ragshift_store::{ConnectSpec, Layout};
use ragshift_testkit::shared_pg;
use ragshift_testkit::sql::scalar;
use serde_json::{json, Value};

/// Requests per window the run's configuration allows (and, in most tests, the provider).
const LIMIT: usize = 12;
/// The window, seconds (`[embedding] budget_window_secs`).
const WINDOW_SECS: u64 = 6;
const DIM: usize = 8;
const RUN_ID: &str = "01JBUDGET0000000000000000";
const USER: &str = "5b1f0e3c-aaaa-4bbb-8ccc-000000000001";

/// A loopback OpenAI-compatible `/v1/embeddings` that records when each request arrived and
/// answers 429 to a request that would make more than `limit` in the last `window`.
struct Provider {
    limit: usize,
    window: Duration,
    accepted: Mutex<Vec<Instant>>,
    rejected: Mutex<usize>,
}

impl Provider {
    fn start(limit: usize, window: Duration) -> (Arc<Provider>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/v1",
            listener.local_addr().unwrap().port()
        );
        let provider = Arc::new(Provider {
            limit,
            window,
            accepted: Mutex::default(),
            rejected: Mutex::default(),
        });
        let p = provider.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let p = p.clone();
                std::thread::spawn(move || p.serve(stream));
            }
        });
        (provider, url)
    }

    /// Serves one keep-alive connection.
    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                if h == "\r\n" {
                    break;
                }
                if let Some((name, value)) = h.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let (status, reply) = self.answer(&body);
            let mut s = &stream;
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                reply.len()
            );
            if s.write_all(head.as_bytes()).is_err() || s.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn answer(&self, body: &[u8]) -> (&'static str, String) {
        let now = Instant::now();
        {
            let mut accepted = self.accepted.lock().unwrap();
            let recent = accepted
                .iter()
                .filter(|t| now.duration_since(**t) < self.window)
                .count();
            if recent >= self.limit {
                *self.rejected.lock().unwrap() += 1;
                let e = json!({"error": {"message": "Rate limit reached for requests"}});
                return ("429 Too Many Requests", e.to_string());
            }
            accepted.push(now);
        }
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let inputs = request["input"].as_array().cloned().unwrap_or_default();
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let seed = text.as_str().unwrap_or("").len() as f32;
                let v: Vec<f32> = (0..DIM).map(|d| seed + d as f32).collect();
                json!({"index": i, "embedding": v})
            })
            .collect();
        let tokens = inputs.len() * 30;
        (
            "200 OK",
            json!({"data": data, "usage": {"prompt_tokens": tokens}}).to_string(),
        )
    }

    /// When the accepted requests arrived, oldest first, and how many were refused.
    fn seen(&self) -> (Vec<Instant>, usize) {
        let mut arrivals = self.accepted.lock().unwrap().clone();
        arrivals.sort();
        (arrivals, *self.rejected.lock().unwrap())
    }
}

fn bot_id(n: u32) -> String {
    format!("01JE000000000000000000{n:04}")
}

/// A file registry of `bots` bots, each with one document of `paragraphs` distinct paragraphs
/// (one chunk each).
fn write_bots(dir: &Path, bots: u32, paragraphs: usize) {
    let items: Vec<Value> = (0..bots)
        .map(|n| {
            json!({
                "PK": {"S": USER}, "SK": {"S": format!("{USER}#BOT#{}", bot_id(n))},
                "Title": {"S": format!("bot {n}")},
                "Knowledge": {"M": {"source_urls": {"L": []}, "sitemap_urls": {"L": []},
                    "filenames": {"L": [{"S": "notes.txt"}]}}},
                "EmbeddingParams": {"M": {"chunk_size": {"N": "150"}, "chunk_overlap": {"N": "0"}}},
                "SyncStatus": {"S": "SUCCEEDED"}
            })
        })
        .collect();
    std::fs::write(dir.join("bots.json"), json!({ "Items": items }).to_string()).unwrap();
    for n in 0..bots {
        let d = dir
            .join("docs")
            .join(USER)
            .join(bot_id(n))
            .join("documents");
        std::fs::create_dir_all(&d).unwrap();
        let text: Vec<String> = (0..paragraphs)
            .map(|p| {
                format!(
                    "Bot {n} note {p}: deliveries to region {p} leave the warehouse on weekday {} and arrive within {} days.",
                    p % 5,
                    p + n as usize
                )
            })
            .collect();
        std::fs::write(d.join("notes.txt"), text.join("\n\n")).unwrap();
    }
}

/// The largest number of arrivals within any `window`.
fn busiest(arrivals: &[Instant], window: Duration) -> usize {
    (0..arrivals.len())
        .map(|i| {
            arrivals[i..]
                .iter()
                .take_while(|t| t.duration_since(arrivals[i]) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The target as `rebuild --executor ecs` leaves it for its tasks: the table, the run in the
/// journal, and the run's lock on the target (held until the returned lock drops).
async fn run_for_tasks(url: &str) -> (tokio_postgres::Client, TargetLock) {
    let spec = ConnectSpec::from_url(url, None, None).unwrap();
    let mut client = ragshift_store::connect(&spec, "ragshift-test")
        .await
        .unwrap();
    let layout = Layout::default();
    ragshift_store::schema::init_target(&mut client, &layout, DIM)
        .await
        .unwrap();
    let journal = Journal::default();
    journal.ensure_schema(&client).await.unwrap();
    journal
        .start_run(&client, RUN_ID, "rebuild", "test", &json!({}))
        .await
        .unwrap();
    let lock = TargetLock::acquire(&spec, &layout, &ragshift_run::rebuild::lock_holder(RUN_ID))
        .await
        .unwrap();
    (client, lock)
}

/// `ragshift ARGS` in `dir` with only `env` for configuration: the file registry and documents
/// of [`write_bots`], the target `url`, and the provider at `base_url` limited to `LIMIT`
/// requests per `window_secs` with one text per request.
fn ragshift(dir: &Path, args: &[&str], url: &str, base_url: &str, window_secs: u64) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragshift"));
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("RAGSHIFT_") || k.starts_with("AWS_") || k == "EVENT" {
            cmd.env_remove(k);
        }
    }
    let window = window_secs.to_string();
    let limit = LIMIT.to_string();
    for (k, v) in [
        ("RAGSHIFT_REGISTRY_KIND", "file"),
        ("RAGSHIFT_REGISTRY_PATH", "bots.json"),
        ("RAGSHIFT_DOCUMENTS_KIND", "dir"),
        ("RAGSHIFT_DOCUMENTS_PATH", "docs"),
        ("RAGSHIFT_TARGET_URL", url),
        ("RAGSHIFT_EMBEDDING_PROVIDER", "openai"),
        ("RAGSHIFT_EMBEDDING_BASE_URL", base_url),
        ("RAGSHIFT_EMBEDDING_MODEL", "fake-embed"),
        ("RAGSHIFT_EMBEDDING_DIMENSIONS", "8"),
        ("RAGSHIFT_EMBEDDING_BATCH_SIZE", "1"),
        ("RAGSHIFT_EMBEDDING_CONCURRENCY", "4"),
        ("RAGSHIFT_EMBEDDING_CACHE", "false"),
        ("RAGSHIFT_EMBEDDING_REQUESTS_PER_MINUTE", limit.as_str()),
        ("RAGSHIFT_EMBEDDING_BUDGET_WINDOW_SECS", window.as_str()),
        ("OPENAI_API_KEY", "sk-test"),
    ] {
        cmd.env(k, v);
    }
    cmd
}

/// Runs one `embed-bot --run-id RUN_ID` process per bot, all at once, and waits for them.
fn embed_bots(dir: &Path, bots: u32, url: &str, base_url: &str, window_secs: u64) {
    let workers: Vec<_> = (0..bots)
        .map(|n| {
            let keys = json!({"PK": {"S": USER}, "SK": {"S": format!("{USER}#BOT#{}", bot_id(n))}})
                .to_string();
            let args = [
                "embed-bot",
                "--run-id",
                RUN_ID,
                "--no-status-updates",
                &keys,
            ];
            ragshift(dir, &args, url, base_url, window_secs)
                .spawn()
                .expect("start ragshift embed-bot")
        })
        .collect();
    for (n, child) in workers.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "bot {n} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Requests in the whole windows (from the first request on) that end before the last request,
/// and how many windows that is.
fn busy_windows(arrivals: &[Instant], window: Duration) -> (usize, u32) {
    let first = arrivals[0];
    let last = *arrivals.last().unwrap();
    let whole = (last.duration_since(first).as_secs_f64() / window.as_secs_f64()).floor() as u32;
    let used = arrivals
        .iter()
        .filter(|t| t.duration_since(first) < window * whole)
        .count();
    (used, whole)
}

#[tokio::test]
async fn four_embed_bot_workers_share_one_budget_and_the_provider_never_throttles() {
    let window = Duration::from_secs(WINDOW_SECS);
    let (provider, base_url) = Provider::start(LIMIT, window);
    let dir = tempfile::tempdir().unwrap();
    write_bots(dir.path(), 4, 15);
    let url = shared_pg().fresh_database("budget");
    let (client, _lock) = run_for_tasks(&url).await;

    embed_bots(dir.path(), 4, &url, &base_url, WINDOW_SECS);

    let (arrivals, rejected) = provider.seen();
    let chunks: i64 = scalar(&client, "SELECT count(*) FROM items").await;
    assert!(chunks >= 4 * 15, "every bot's chunks are stored: {chunks}");
    assert_eq!(arrivals.len() as i64, chunks, "one request per chunk");
    assert_eq!(rejected, 0, "the provider never had to throttle");
    let most = busiest(&arrivals, window);
    assert!(
        most <= LIMIT,
        "{most} requests reached the provider within one {WINDOW_SECS}s window"
    );
    let (used, whole) = busy_windows(&arrivals, window);
    assert!(whole >= 3, "the run spans several windows ({whole})");
    let allowed = LIMIT * whole as usize;
    assert!(
        used * 10 >= allowed * 9,
        "only {used} of {allowed} requests allowed in {whole} busy windows were used"
    );

    // The journal's budget counted every call of every worker.
    let report = Journal::default()
        .budget_report(&client, RUN_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.calls, arrivals.len() as u64);
    assert_eq!(report.throttles, 0);
    assert_eq!(report.requests_per_window, Some(LIMIT as u64));
}

#[tokio::test]
async fn a_throttle_seen_by_one_worker_slows_every_worker_of_the_run() {
    // The account's real quota is half what the run was configured with.
    let window_secs = 3;
    let window = Duration::from_secs(window_secs);
    let (provider, base_url) = Provider::start(LIMIT / 2, window);
    let dir = tempfile::tempdir().unwrap();
    write_bots(dir.path(), 4, 8);
    let url = shared_pg().fresh_database("budget_aimd");
    let (client, _lock) = run_for_tasks(&url).await;

    embed_bots(dir.path(), 4, &url, &base_url, window_secs);

    let (arrivals, rejected) = provider.seen();
    assert_eq!(arrivals.len(), 4 * 8, "every chunk was embedded in the end");
    let report = Journal::default()
        .budget_report(&client, RUN_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.throttles as usize, rejected);
    assert!(report.rate_decreases >= 1, "{report:?}");
    // Sending at the configured rate would have had about every other request refused; the
    // shared rate, halved for all workers, keeps refusals to the bursts that find the limit.
    assert!(
        rejected * 3 < arrivals.len(),
        "{rejected} refused for {} accepted: {report:?}",
        arrivals.len()
    );
}

#[tokio::test]
async fn a_local_rebuild_spends_its_runs_budget_and_reports_it() {
    let window = Duration::from_secs(3);
    let (provider, base_url) = Provider::start(LIMIT, window);
    let dir = tempfile::tempdir().unwrap();
    write_bots(dir.path(), 2, 15);
    let url = shared_pg().fresh_database("budget_rebuild");

    let out = ragshift(
        dir.path(),
        &["rebuild", "--yes", "--json", "--no-status-updates"],
        &url,
        &base_url,
        3,
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "report")
        .unwrap_or_else(|| panic!("no report: {stderr}"));
    let (arrivals, rejected) = provider.seen();
    assert_eq!(rejected, 0);
    assert!(busiest(&arrivals, window) <= LIMIT);
    let budget = &report["report"]["budget"];
    assert_eq!(budget["calls"], json!(arrivals.len()), "{report}");
    assert_eq!(budget["throttles"], 0);
    assert_eq!(budget["requests_per_window"], LIMIT);
    assert_eq!(budget["window_secs"], 3.0);
    let utilisation = budget["utilisation"].as_f64().unwrap();
    assert!(utilisation > 0.5 && utilisation <= 1.0, "{budget}");
}
