//! An in-process HTTP server on 127.0.0.1 that speaks Bedrock's InvokeModel REST shape
//! (`POST /model/{modelId}/invoke`) and OpenAI's `POST /v1/embeddings`, records every request
//! with its arrival time, and plays scripted failures before answering normally.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
}

/// A scripted reply: status, headers, raw body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn bedrock_throttle() -> Self {
        Reply {
            status: 429,
            headers: vec![("x-amzn-ErrorType", "ThrottlingException".into())],
            body: json!({"message": "Too many requests, please wait before trying again."})
                .to_string(),
        }
    }

    pub fn status(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: vec![],
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<VecDeque<Reply>>,
    openai_dim: AtomicUsize,
    active: AtomicUsize,
    max_active: AtomicUsize,
}

/// The running server; dropped with the test's runtime.
#[derive(Clone)]
pub struct Mock {
    pub addr: SocketAddr,
    state: Arc<State>,
}

/// A deterministic vector for a text: tests can tell which text a vector belongs to.
pub fn fake_vector(text: &str, dim: usize) -> Vec<f32> {
    let mut h: u64 = 1469598103934665603;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    (0..dim)
        .map(|i| (((h.wrapping_add(i as u64 * 7919)) % 1000) as f32) / 1000.0)
        .collect()
}

impl Mock {
    pub async fn start() -> Mock {
        let state = Arc::new(State::default());
        state.openai_dim.store(8, Ordering::SeqCst);
        let st = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { handle(st, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_openai_dim(&self, dim: usize) {
        self.state.openai_dim.store(dim, Ordering::SeqCst);
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }

    pub fn max_concurrent(&self) -> usize {
        self.state.max_active.load(Ordering::SeqCst)
    }
}

async fn handle(
    st: Arc<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = st.active.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_active.fetch_max(now, Ordering::SeqCst);
    // Give concurrent requests a chance to overlap, as a real provider's latency would.
    tokio::task::yield_now().await;
    let r = reply(&st, method, uri, headers, body);
    st.active.fetch_sub(1, Ordering::SeqCst);
    r
}

fn reply(st: &State, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    st.seen.lock().expect("lock").push(Seen {
        path: path.clone(),
        headers,
        body: value.clone(),
        at: Instant::now(),
    });
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if let Some(r) = st.script.lock().expect("lock").pop_front() {
        let mut resp = (
            StatusCode::from_u16(r.status).expect("status"),
            r.body.clone(),
        )
            .into_response();
        for (k, v) in r.headers {
            resp.headers_mut().insert(k, v.parse().expect("header"));
        }
        return resp;
    }
    if path.starts_with("/model/") && path.ends_with("/invoke") {
        if let Some(texts) = value.get("texts").and_then(|t| t.as_array()) {
            let embeddings: Vec<Vec<f32>> = texts
                .iter()
                .map(|t| fake_vector(t.as_str().unwrap_or(""), 1024))
                .collect();
            return axum::Json(json!({
                "embeddings": embeddings,
                "id": "test",
                "response_type": "embeddings_floats",
                "texts": texts,
            }))
            .into_response();
        }
        if let Some(text) = value.get("inputText").and_then(|t| t.as_str()) {
            let dim = value
                .get("dimensions")
                .and_then(|d| d.as_u64())
                .unwrap_or(1024) as usize;
            return axum::Json(json!({
                "embedding": fake_vector(text, dim),
                "inputTextTokenCount": text.split_whitespace().count(),
            }))
            .into_response();
        }
        return (StatusCode::BAD_REQUEST, "{\"message\":\"bad body\"}").into_response();
    }
    if path == "/v1/embeddings" {
        let dim = value
            .get("dimensions")
            .and_then(|d| d.as_u64())
            .map(|d| d as usize)
            .unwrap_or_else(|| st.openai_dim.load(Ordering::SeqCst));
        let inputs: Vec<String> = value
            .get("input")
            .and_then(|i| i.as_array())
            .map(|a| {
                a.iter()
                    .map(|t| t.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        // Answer in reverse order: clients must sort by `index`.
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": fake_vector(t, dim)}))
            .collect();
        let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
        return axum::Json(json!({
            "object": "list",
            "data": data,
            "model": value.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }))
        .into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}
