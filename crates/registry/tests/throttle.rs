//! Retries under the one policy, decided by the classified error kind: a loopback HTTP server
//! speaking DynamoDB's JSON protocol answers with throttling, 5xx or AccessDenied as a script
//! says, and counts every request it receives. The SDK configuration keeps the SDK's standard
//! retries (as `sdk_config` builds it), so the counts also prove that the registry turns them
//! off: a call is sent exactly as often as the policy says, never policy × SDK attempts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ragshift_aws::AwsErrorKind;
use ragshift_model::{BotKey, SyncStatus};
use ragshift_registry::{DynamoRegistry, Registry, RegistryError, Selection, StatusUpdate};
use ragshift_retry::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One answer: HTTP status and JSON body.
type Reply = (u16, String);

/// DynamoDB's error body for `error` (its `__type`).
fn error(status: u16, error: &str) -> Reply {
    (
        status,
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error}","message":"injected"}}"#),
    )
}

/// A scan page holding one bot.
fn page() -> Reply {
    (
        200,
        r#"{"Items":[{"PK":{"S":"u"},"SK":{"S":"u#BOT#B1"},"Title":{"S":"t"}}],"Count":1,"ScannedCount":1}"#
            .to_owned(),
    )
}

/// Serves `answer(n, operation)` for the n-th request (0-based; the operation is the
/// `X-Amz-Target` action in lower case, e.g. `scan`); returns the URL and the request counter.
async fn server<F>(answer: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(usize, &str) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            let answer = answer.clone();
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
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_owned())
                };
                let len: usize = header("content-length:")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let operation = header("x-amz-target:")
                    .and_then(|t| t.rsplit('.').next().map(str::to_owned))
                    .unwrap_or_default();
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
                let (code, body) = answer(n, &operation);
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

/// Quick waits, at most `max_attempts` attempts, a generous budget.
fn quick(max_attempts: Option<u32>) -> Policy {
    Policy {
        initial: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_attempts,
        ..Policy::default()
    }
}

/// A registry on `url` built from an SDK configuration with the SDK's default (standard)
/// retries, as `ragshift_aws::sdk_config` makes it.
async fn registry(url: &str, retry: Policy) -> DynamoRegistry {
    let sdk = ragshift_testkit::sdk_config(url).await;
    DynamoRegistry::new(&sdk, "table")
        .with_segments(1)
        .with_retry(retry)
}

fn update() -> StatusUpdate {
    StatusUpdate {
        status: SyncStatus::Running,
        reason: String::new(),
        exec_id: "ragshift-run-1".into(),
        expected_exec_id: None,
    }
}

#[tokio::test]
async fn throttled_scans_are_retried_until_they_succeed() {
    let (url, seen) = server(|n, _| {
        if n < 3 {
            error(400, "ProvisionedThroughputExceededException")
        } else {
            page()
        }
    })
    .await;
    let found = registry(&url, quick(Some(5)))
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
async fn throttling_that_never_stops_is_tried_exactly_max_attempts_times() {
    let (url, seen) = server(|_, _| error(400, "ThrottlingException")).await;
    let err = registry(&url, quick(Some(4)))
        .await
        .bots(&Selection::all())
        .await
        .expect_err("gives up");
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::Throttled), "{err}");
    assert!(err.is_retryable());
    // 4, not 4 × the SDK's 3: the SDK's own retries are off.
    assert_eq!(seen.load(Ordering::SeqCst), 4);
    assert!(
        err.to_string().contains("after 4 attempts") && err.to_string().contains("limit of 4"),
        "{err}"
    );
}

#[tokio::test]
async fn a_throttled_status_update_is_tried_exactly_as_the_policy_says() {
    let (url, seen) = server(|n, op| {
        if op != "updateitem" {
            error(400, "ValidationException")
        } else if n < 2 {
            error(400, "ThrottlingException")
        } else {
            (200, "{}".to_owned())
        }
    })
    .await;
    let key = BotKey::new("u", "B1");
    registry(&url, quick(Some(4)))
        .await
        .set_status(&key, &update())
        .await
        .expect("written on the third attempt");
    assert_eq!(seen.load(Ordering::SeqCst), 3);

    let (url, seen) = server(|_, _| error(400, "ThrottlingException")).await;
    let err = registry(&url, quick(Some(4)))
        .await
        .set_status(&key, &update())
        .await
        .expect_err("gives up");
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::Throttled), "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 4, "no SDK retries on top");
}

#[tokio::test]
async fn the_time_budget_stops_retrying_and_the_error_names_it() {
    let (url, seen) = server(|_, _| error(503, "ServiceUnavailable")).await;
    let budget = Policy {
        initial: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
        budget: Duration::from_secs(1),
        max_attempts: None,
        ..Policy::default()
    };
    let err = registry(&url, budget)
        .await
        .set_status(&BotKey::new("u", "B1"), &update())
        .await
        .expect_err("gives up when the budget is spent");
    let seen = seen.load(Ordering::SeqCst);
    let msg = err.to_string();
    assert_eq!(
        err.aws_kind(),
        Some(AwsErrorKind::ServiceUnavailable),
        "{msg}"
    );
    assert!(msg.contains("retry budget of 1s"), "{msg}");
    // Waits of at most 100 ms in a 1 s budget: several attempts, each one request.
    assert!(seen >= 5, "only {seen} attempts: {msg}");
    assert!(msg.contains(&format!("after {seen} attempts")), "{msg}");
}

#[tokio::test]
async fn a_5xx_without_a_known_code_is_retried() {
    let (url, seen) = server(|n, _| {
        if n == 0 {
            error(502, "SomethingUnexpected")
        } else {
            page()
        }
    })
    .await;
    let found = registry(&url, quick(Some(3)))
        .await
        .bots(&Selection::all())
        .await
        .expect("retried after the 502");
    assert_eq!((found.bots.len(), seen.load(Ordering::SeqCst)), (1, 2));
}

#[tokio::test]
async fn no_permission_is_not_retried() {
    let (url, seen) = server(|_, _| error(400, "AccessDeniedException")).await;
    let err = registry(&url, quick(Some(5)))
        .await
        .bots(&Selection::all())
        .await
        .expect_err("denied");
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::AccessDenied), "{err}");
    assert!(err.to_string().contains("lack this permission"), "{err}");
    assert!(!err.to_string().contains("attempts"), "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_condition_is_not_retried() {
    let (url, seen) = server(|_, op| match op {
        "updateitem" => error(400, "ConditionalCheckFailedException"),
        // The refusal is explained by reading the item: it is gone.
        _ => (200, "{}".to_owned()),
    })
    .await;
    let err = registry(&url, quick(Some(5)))
        .await
        .set_status(&BotKey::new("u", "B1"), &update())
        .await
        .expect_err("refused");
    assert!(matches!(err, RegistryError::BotGone { .. }), "{err}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "one UpdateItem, one GetItem"
    );
}
