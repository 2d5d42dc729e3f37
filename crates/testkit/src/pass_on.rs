//! Passing a request on to the real server, for tests' recording or fault-injecting HTTP
//! proxies in front of an AWS-API server.

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::response::Response;

/// Sends the request (`parts`, `body`) to `upstream` (scheme and authority, e.g. moto's
/// endpoint) with its headers, and returns the answer as it came. Panics if `upstream` does
/// not answer: the test's world is broken.
pub async fn pass_on(
    http: &reqwest::Client,
    upstream: &str,
    parts: &Parts,
    body: Bytes,
) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|x| x.as_str())
        .unwrap_or("/");
    let mut rb = http.request(parts.method.clone(), format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let answer = match rb.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => panic!("{upstream} did not answer: {e}"),
    };
    let mut out = Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out = out.header(k, v);
        }
    }
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => panic!("reading {upstream}'s answer: {e}"),
    };
    match out.body(Body::from(bytes)) {
        Ok(response) => response,
        Err(e) => panic!("{upstream}'s answer: {e}"),
    }
}
