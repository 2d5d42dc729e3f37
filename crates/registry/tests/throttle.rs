//! Retries decided by the classified error kind: a loopback HTTP server answers DynamoDB's
//! throttling error a few times before succeeding, or refuses with AccessDenied. The SDK's own
//! retries are off, so every attempt seen here is the registry's backoff at work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use ragshift_aws::AwsErrorKind;
use ragshift_registry::retry::Backoff;
use ragshift_registry::{DynamoRegistry, Registry, Selection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `failures` answers of (`status`, `error type`) and then one page with a bot.
async fn server(failures: usize, status: u16, error: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                // Read the head, then the body by Content-Length.
                let mut buf = Vec::new();
                let mut chunk = [0_u8; 4096];
                let head_end = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (code, body) = if n < failures {
                    (
                        status,
                        format!(
                            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error}","message":"try again"}}"#
                        ),
                    )
                } else {
                    (
                        200,
                        r#"{"Items":[{"PK":{"S":"u"},"SK":{"S":"u#BOT#B1"},"Title":{"S":"t"}}],"Count":1,"ScannedCount":1}"#
                            .to_owned(),
                    )
                };
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, seen)
}

async fn registry(url: &str) -> DynamoRegistry {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    DynamoRegistry::new(&sdk, "table")
        .with_segments(1)
        .with_backoff(Backoff {
            max_attempts: 5,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        })
}

#[tokio::test]
async fn throttled_scans_are_retried_with_backoff() {
    let (url, seen) = server(3, 400, "ProvisionedThroughputExceededException").await;
    let found = registry(&url)
        .await
        .bots(&Selection::all())
        .await
        .expect("succeeds after the throttling stops");
    assert_eq!(found.bots.len(), 1);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        4,
        "3 throttled attempts, then success"
    );
}

#[tokio::test]
async fn throttling_that_never_stops_gives_up_after_max_attempts() {
    let (url, seen) = server(100, 400, "ThrottlingException").await;
    let err = registry(&url)
        .await
        .bots(&Selection::all())
        .await
        .expect_err("gives up");
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::Throttled), "{err}");
    assert!(err.is_retryable());
    assert_eq!(seen.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn no_permission_is_not_retried() {
    let (url, seen) = server(100, 400, "AccessDeniedException").await;
    let err = registry(&url)
        .await
        .bots(&Selection::all())
        .await
        .expect_err("denied");
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::AccessDenied), "{err}");
    assert!(err.to_string().contains("lack this permission"), "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}
