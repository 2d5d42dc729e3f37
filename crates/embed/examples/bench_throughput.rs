//! Benchmark (a): embed 10,000 chunks through a local fake provider (OpenAI-compatible wire
//! shape on 127.0.0.1, fixed latency per call, at most 96 texts per call, a requests-per-window
//! limit enforced with 429 + Retry-After) with ragshift's throughput wrapper, against the
//! platform's loop (batches of 10, one call at a time).
//!
//! Run through bench/embed/run.sh, or:
//! `cargo run --release -p ragshift-embed --example bench_throughput`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ragshift_embed::{
    Embedder, InputKind, OpenAiEmbedder, OpenAiOptions, RateLimit, Throttled, ThroughputOptions,
};
use serde_json::{json, Value};

const DIM: usize = 16;

struct Fake {
    latency: Duration,
    limit: usize,
    window: Duration,
    max_texts: usize,
    arrivals: Mutex<VecDeque<Instant>>,
    all: Mutex<Vec<Instant>>,
    throttled: AtomicU64,
}

async fn handle(fake: Arc<Fake>, body: Bytes) -> Response {
    let now = Instant::now();
    {
        let mut a = fake.arrivals.lock().unwrap();
        while a
            .front()
            .is_some_and(|t| now.duration_since(*t) >= fake.window)
        {
            a.pop_front();
        }
        if a.len() >= fake.limit {
            fake.throttled.fetch_add(1, Ordering::Relaxed);
            let wait = fake.window - now.duration_since(*a.front().unwrap());
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                "{\"error\":{\"message\":\"rate limit\"}}",
            )
                .into_response();
            r.headers_mut().insert(
                "retry-after-ms",
                wait.as_millis().to_string().parse().unwrap(),
            );
            return r;
        }
        a.push_back(now);
        fake.all.lock().unwrap().push(now);
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = v["input"].as_array().map(|a| a.len()).unwrap_or(0);
    if n > fake.max_texts {
        return (
            StatusCode::BAD_REQUEST,
            "{\"error\":{\"message\":\"too many inputs\"}}",
        )
            .into_response();
    }
    tokio::time::sleep(fake.latency).await; // the provider's fixed latency
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"index": i, "embedding": vec![0.25f32; DIM]}))
        .collect();
    axum::Json(json!({"data": data, "usage": {"prompt_tokens": n * 250}})).into_response()
}

async fn start(fake: Arc<Fake>) -> String {
    let f = fake.clone();
    let app = Router::new().fallback(move |body: Bytes| handle(f.clone(), body));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap())
        .unwrap_or(default)
}

fn max_in_window(times: &[Instant], window: Duration) -> usize {
    times
        .iter()
        .map(|s| {
            times
                .iter()
                .filter(|t| **t >= *s && t.duration_since(*s) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let chunks = arg("--chunks", 10_000) as usize;
    let latency = Duration::from_millis(arg("--latency-ms", 150));
    let limit = arg("--limit", 24) as usize;
    let window = Duration::from_millis(arg("--window-ms", 3000));
    let in_flight = arg("--in-flight", 32) as usize;
    let fake = || {
        Arc::new(Fake {
            latency,
            limit,
            window,
            max_texts: 96,
            arrivals: Mutex::new(VecDeque::new()),
            all: Mutex::new(Vec::new()),
            throttled: AtomicU64::new(0),
        })
    };
    let texts: Vec<String> = (0..chunks)
        .map(|i| format!("chunk {i}: {}", "lorem ipsum dolor sit amet ".repeat(36)))
        .collect();
    let options = |url: String| OpenAiOptions {
        base_url: url,
        model: "fake-embed".into(),
        api_key_env: "RAGSHIFT_BENCH_NO_KEY".into(),
        expected_dimension: Some(DIM),
        batch_size: 96,
        ..OpenAiOptions::default()
    };
    println!(
        "fake provider: {} ms per call, max 96 texts per call, {limit} requests per {:.1} s ({:.0}/min)",
        latency.as_millis(),
        window.as_secs_f64(),
        limit as f64 * 60.0 / window.as_secs_f64()
    );

    // ragshift: batches filled to 96, many in flight, the limiter set to the provider's limit.
    let f1 = fake();
    let provider = Arc::new(
        OpenAiEmbedder::connect(options(start(f1.clone()).await))
            .await
            .unwrap(),
    );
    let t = Throttled::new(
        provider,
        ThroughputOptions {
            batch_size: None,
            max_in_flight: in_flight,
            rate: RateLimit {
                requests: Some(limit as u64),
                tokens: None,
                window,
            },
            retry: ragshift_retry::Policy::default(),
        },
    );
    let start_r = Instant::now();
    let out = t.embed(&texts, InputKind::Document).await.unwrap();
    let ragshift = start_r.elapsed().as_secs_f64();
    assert_eq!(out.vectors.len(), chunks);
    let calls = f1.all.lock().unwrap().len();
    let ideal = (calls.div_ceil(limit).saturating_sub(1)) as f64 * window.as_secs_f64()
        + latency.as_secs_f64();
    let max_w = max_in_window(&f1.all.lock().unwrap(), window);
    println!(
        "ragshift: {chunks} chunks in {calls} calls, {ragshift:.2} s; 429s: {}; max requests in any {:.1} s window at the provider: {max_w} (limit {limit})",
        f1.throttled.load(Ordering::Relaxed),
        window.as_secs_f64()
    );
    println!(
        "  fastest possible under the provider's limit: {ideal:.2} s -> limit utilisation {:.1} %",
        100.0 * ideal / ragshift
    );

    // The platform's loop: batches of 10, one call at a time, no retry.
    let f2 = fake();
    let baseline_provider = OpenAiEmbedder::connect(options(start(f2.clone()).await))
        .await
        .unwrap();
    let start_b = Instant::now();
    for batch in texts.chunks(10) {
        let out = baseline_provider
            .embed(batch, InputKind::Document)
            .await
            .unwrap();
        assert_eq!(out.vectors.len(), batch.len());
    }
    let baseline = start_b.elapsed().as_secs_f64();
    println!(
        "baseline (batches of 10, one at a time): {} calls, {baseline:.2} s; 429s: {}",
        f2.all.lock().unwrap().len(),
        f2.throttled.load(Ordering::Relaxed)
    );
    println!(
        "speed-up: {:.1}x (goal >= 8x); limit utilisation {:.1} % (goal >= 90 %)",
        baseline / ragshift,
        100.0 * ideal / ragshift
    );
    let report = serde_json::to_string(&t.report()).unwrap();
    println!("ragshift usage report: {report}");
}
