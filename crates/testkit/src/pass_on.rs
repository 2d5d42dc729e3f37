//! Passing a request on to the real server, for tests' recording or fault-injecting HTTP
//! proxies in front of an AWS-API server.

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Sends the request (`parts`, `body`) to `upstream` (scheme and authority, e.g. moto's
/// endpoint) with its headers, and returns the answer as it came. When `upstream` does not
/// answer (gone, refusing, or cut mid-answer) the answer is `502 Bad Gateway` naming it and
/// why, as a real proxy's would be, so the client sees a server error instead of a proxy
/// task that panicked and a connection dropped without an answer.
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
        Err(e) => return bad_gateway(format!("{upstream} did not answer: {e}")),
    };
    let mut out = Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out = out.header(k, v);
        }
    }
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return bad_gateway(format!("reading {upstream}'s answer: {e}")),
    };
    out.body(Body::from(bytes))
        .unwrap_or_else(|e| bad_gateway(format!("{upstream}'s answer: {e}")))
}

/// `502 Bad Gateway` with `why` as its text.
fn bad_gateway(why: String) -> Response {
    (StatusCode::BAD_GATEWAY, why).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read, Write};

    use super::*;

    /// Passes a POST with a small body on to `upstream`: the status and the text answered.
    async fn passed_on(upstream: &str) -> (StatusCode, String) {
        let (parts, ()) = axum::http::Request::builder()
            .method("POST")
            .uri("/?Action=RunTask")
            .header("x-amz-target", "AmazonEC2ContainerServiceV20141113.RunTask")
            .body(())
            .unwrap()
            .into_parts();
        let answer = pass_on(
            &reqwest::Client::new(),
            upstream,
            &parts,
            Bytes::from_static(b"{}"),
        )
        .await;
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn an_upstream_that_is_gone_is_answered_502_naming_it() {
        // An address nothing listens on any more: bound, then closed.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = format!("http://{}", gone.local_addr().unwrap());
        drop(gone);
        let (status, text) = passed_on(&upstream).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
        assert!(
            text.contains(&format!("{upstream} did not answer")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_answer_cut_midway_is_answered_502() {
        // An upstream that promises 100 bytes, sends 3 and closes the connection.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc")
                .unwrap();
        });
        let (status, text) = passed_on(&upstream).await;
        server.join().unwrap();
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
        assert!(
            text.contains(&format!("reading {upstream}'s answer")),
            "{text}"
        );
    }
}
