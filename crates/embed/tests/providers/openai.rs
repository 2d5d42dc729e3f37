//! OpenAI-compatible `/v1/embeddings`: request shape, API key from the environment, order by
//! `index`, 429 with Retry-After, 500s, the dimension probe, and keys never leaking.

use std::sync::Arc;
use std::time::Duration;

use ragshift_embed::{
    Embedder, Error, ErrorKind, OpenAiEmbedder, OpenAiOptions, Secret, Throttled, ThroughputOptions,
};
use ragshift_retry::{Policy, StopReason};
use serde_json::json;

use crate::mock::{fake_vector, Mock, Reply};
use crate::{quick, quick_retry};

fn options(mock: &Mock) -> OpenAiOptions {
    OpenAiOptions {
        base_url: format!("{}/v1", mock.url()),
        model: "nomic-embed-text".into(),
        api_key_env: "RAGSHIFT_EMBED_TEST_UNSET_KEY".into(),
        expected_dimension: Some(8),
        ..OpenAiOptions::default()
    }
}

#[tokio::test]
async fn request_shape_key_from_env_and_order_by_index() {
    let mock = Mock::start().await;
    std::env::set_var("RAGSHIFT_EMBED_TEST_KEY_A", "sk-test-from-env");
    let e = OpenAiEmbedder::connect(OpenAiOptions {
        api_key_env: "RAGSHIFT_EMBED_TEST_KEY_A".into(),
        ..options(&mock)
    })
    .await
    .expect("builds");
    let input: Vec<String> = vec!["alpha beta".into(), "gamma".into(), "delta".into()];
    let out = e.embed_documents(&input).await.expect("embeds");
    for (t, v) in input.iter().zip(&out.vectors) {
        assert_eq!(v, &fake_vector(t, 8), "vectors come back in input order");
    }
    assert_eq!(out.tokens, Some(4));
    let seen = mock.seen();
    assert_eq!(seen[0].path, "/v1/embeddings");
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-test-from-env");
    assert_eq!(
        seen[0].body,
        json!({"model": "nomic-embed-text", "input": input, "encoding_format": "float"})
    );
    assert!(!format!("{e:?}").contains("sk-test-from-env"));
}

#[tokio::test]
async fn dimensions_are_sent_and_an_unknown_dimension_is_probed() {
    let mock = Mock::start().await;
    let e = OpenAiEmbedder::connect(OpenAiOptions {
        dimensions: Some(16),
        ..options(&mock)
    })
    .await
    .expect("builds");
    assert_eq!(e.dimension(), 16);
    e.embed_documents(&["x".into()]).await.expect("embeds");
    assert_eq!(mock.seen()[0].body["dimensions"], 16);
    assert!(
        mock.seen()[0].headers.get("authorization").is_none(),
        "no key, no header"
    );

    mock.set_openai_dim(12);
    let probed = OpenAiEmbedder::connect(OpenAiOptions {
        expected_dimension: None,
        ..options(&mock)
    })
    .await
    .expect("builds");
    assert_eq!(probed.dimension(), 12);
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_retried() {
    let mock = Mock::start().await;
    mock.script([
        Reply::status(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
        )
        .header("retry-after", "0"),
        Reply::status(500, r#"{"error":{"message":"internal"}}"#),
        Reply::status(502, "bad gateway"),
    ]);
    let t = Throttled::new(
        Arc::new(
            OpenAiEmbedder::connect(options(&mock))
                .await
                .expect("builds"),
        ),
        quick(5),
    );
    let out = t.embed_documents(&["one".into()]).await.expect("succeeds");
    assert_eq!(out.vectors.len(), 1);
    let u = &t.report().usage[0];
    assert_eq!((u.calls, u.retries, u.throttled), (4, 3, 1));
}

#[tokio::test]
async fn retry_after_is_read_and_the_message_kept_when_giving_up() {
    let mock = Mock::start().await;
    mock.script([Reply::status(
        429,
        r#"{"error":{"message":"Rate limit reached for requests"}}"#,
    )
    .header("retry-after", "7")]);
    let t = Throttled::new(
        Arc::new(
            OpenAiEmbedder::connect(options(&mock))
                .await
                .expect("builds"),
        ),
        quick(1),
    );
    let err = t
        .embed_documents(&["one".into()])
        .await
        .expect_err("one attempt only");
    let Error::GaveUp {
        attempts,
        last,
        reason,
        ..
    } = &err
    else {
        panic!("unexpected {err}")
    };
    assert_eq!((*attempts, *reason), (1, StopReason::Attempts(1)));
    assert_eq!(last.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(last.kind(), Some(ErrorKind::Throttled));
    assert!(
        err.to_string().contains("Rate limit reached for requests"),
        "{err}"
    );
    assert!(err.to_string().contains("HTTP 429"), "{err}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_time_budget_gives_up_at_once_naming_the_budget() {
    let mock = Mock::start().await;
    mock.script([
        Reply::status(429, r#"{"error":{"message":"Rate limit reached"}}"#)
            .header("retry-after", "7"),
    ]);
    let t = Throttled::new(
        Arc::new(
            OpenAiEmbedder::connect(options(&mock))
                .await
                .expect("builds"),
        ),
        ThroughputOptions {
            retry: Policy {
                budget: Duration::from_secs(2),
                ..quick_retry(5)
            },
            ..quick(5)
        },
    );
    let err = t
        .embed_documents(&["one".into()])
        .await
        .expect_err("the provider's wait doesn't fit the budget");
    let Error::GaveUp {
        attempts, reason, ..
    } = &err
    else {
        panic!("unexpected {err}")
    };
    assert_eq!(
        (*attempts, *reason),
        (1, StopReason::Budget(Duration::from_secs(2)))
    );
    assert!(err.to_string().contains("retry budget of 2s"), "{err}");
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn client_errors_fail_at_once_without_leaking_the_key() {
    let mock = Mock::start().await;
    mock.script([Reply::status(
        401,
        r#"{"error":{"message":"Incorrect API key provided"}}"#,
    )]);
    let t = Throttled::new(
        Arc::new(
            OpenAiEmbedder::connect(OpenAiOptions {
                api_key: Some(Secret::new("sk-do-not-print")),
                ..options(&mock)
            })
            .await
            .expect("builds"),
        ),
        quick(5),
    );
    let err = t.embed_documents(&["one".into()]).await.expect_err("401");
    assert_eq!(err.kind(), Some(ErrorKind::Rejected));
    assert!(!err.to_string().contains("sk-do-not-print"));
    assert!(!format!("{err:?}").contains("sk-do-not-print"));
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    // Bind and drop a listener to get a loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let e = OpenAiEmbedder::connect(OpenAiOptions {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        expected_dimension: Some(8),
        ..OpenAiOptions::default()
    })
    .await
    .expect("builds without a request");
    let err = e
        .embed_documents(&["x".into()])
        .await
        .expect_err("nobody there");
    assert_eq!(err.kind(), Some(ErrorKind::Network), "{err}");
}
