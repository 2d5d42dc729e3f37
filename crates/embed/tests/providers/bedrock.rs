//! Bedrock InvokeModel: request and response bodies for Cohere v3 and Titan v2, SigV4 headers,
//! the model id in the path, throttling, 5xx and malformed responses.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_bedrockruntime::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
};
use ragshift_embed::{
    BedrockEmbedder, BedrockOptions, CohereTruncate, Embedder, Error, ErrorKind, InputKind,
    Throttled, ThroughputOptions,
};
use ragshift_retry::{Policy, StopReason};
use serde_json::json;

use crate::mock::{fake_vector, Mock, Reply};
use crate::quick;

fn sdk(mock: &Mock) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(mock.url())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTESTTESTTEST",
            "test-secret-key",
            None,
            None,
            "ragshift-test",
        )))
        .behavior_version(BehaviorVersion::latest())
        .build()
}

fn cohere(mock: &Mock, truncate: CohereTruncate) -> BedrockEmbedder {
    BedrockEmbedder::new(
        &sdk(mock),
        BedrockOptions {
            truncate,
            ..BedrockOptions::default()
        },
    )
    .expect("builds")
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("chunk number {i}")).collect()
}

#[tokio::test]
async fn cohere_request_and_response_shape() {
    let mock = Mock::start().await;
    let e = cohere(&mock, CohereTruncate::End);
    assert_eq!(e.dimension(), 1024);
    assert_eq!(e.max_batch_size(), 96);
    assert_eq!(e.max_input_chars(), 2048);
    let input = texts(3);
    let out = e.embed(&input, InputKind::Document).await.expect("embeds");
    assert_eq!(out.vectors.len(), 3);
    assert_eq!(out.vectors[2], fake_vector("chunk number 2", 1024));
    assert_eq!(
        e.embed_query("where is it?").await.expect("embeds").len(),
        1024
    );

    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/model/cohere.embed-multilingual-v3/invoke");
    let auth = seen[0].headers["authorization"].to_str().expect("ascii");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTESTTESTTEST/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(seen[0].headers["accept"], "application/json");
    assert_eq!(
        seen[0].body,
        json!({"texts": input, "input_type": "search_document", "truncate": "END"})
    );
    assert_eq!(seen[1].body["input_type"], "search_query");
    assert_eq!(seen[1].body["texts"], json!(["where is it?"]));
}

#[tokio::test]
async fn cohere_long_texts_are_cut_to_2048_chars_and_counted() {
    let mock = Mock::start().await;
    let e = Throttled::new(Arc::new(cohere(&mock, CohereTruncate::End)), quick(1));
    let long = "é".repeat(3000);
    let out = e
        .embed_documents(&[long.clone(), "short".into()])
        .await
        .expect("embeds");
    assert_eq!(out.truncated, 1);
    assert_eq!(e.report().usage[0].truncated, 1);
    let sent = mock.seen()[0].body["texts"][0]
        .as_str()
        .expect("text")
        .to_string();
    assert_eq!(sent.chars().count(), 2048);

    // START keeps the end of the text.
    let start = cohere(&mock, CohereTruncate::Start);
    let tail = format!("{}END", "a".repeat(3000));
    start
        .embed(&[tail], InputKind::Document)
        .await
        .expect("embeds");
    let sent = mock.seen()[1].body["texts"][0]
        .as_str()
        .expect("text")
        .to_string();
    assert!(sent.ends_with("END") && sent.len() == 2048);
    assert_eq!(mock.seen()[1].body["truncate"], "START");
}

#[tokio::test]
async fn cohere_truncate_none_refuses_long_texts_without_a_request() {
    let mock = Mock::start().await;
    let e = cohere(&mock, CohereTruncate::None);
    let err = e
        .embed(&["x".repeat(2049)], InputKind::Document)
        .await
        .expect_err("too long");
    assert!(matches!(err, Error::Input { .. }), "{err}");
    assert!(mock.seen().is_empty());
}

#[tokio::test]
async fn titan_v2_one_text_per_call_with_dimensions_and_normalize() {
    let mock = Mock::start().await;
    let e = BedrockEmbedder::new(
        &sdk(&mock),
        BedrockOptions {
            model_id: "amazon.titan-embed-text-v2:0".into(),
            titan_dimensions: 512,
            titan_normalize: true,
            ..BedrockOptions::default()
        },
    )
    .expect("builds");
    assert_eq!(e.dimension(), 512);
    assert_eq!(e.max_batch_size(), 1);
    assert!(e.cache_model().contains("dim512"));
    let t = Throttled::new(Arc::new(e), quick(1));
    let out = t.embed_documents(&texts(3)).await.expect("embeds");
    assert_eq!(out.vectors.len(), 3);
    assert_eq!(out.vectors[1], fake_vector("chunk number 1", 512));
    // Reported tokens (inputTextTokenCount: 3 words each) are used, not estimates.
    let usage = &t.report().usage[0];
    assert_eq!(
        (usage.calls, usage.tokens, usage.tokens_estimated),
        (3, 9, 0)
    );

    let seen = mock.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen[0].path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
            || seen[0].path == "/model/amazon.titan-embed-text-v2:0/invoke",
        "{}",
        seen[0].path
    );
    let mut bodies: Vec<_> = seen.iter().map(|s| s.body.clone()).collect();
    bodies.sort_by_key(|b| b["inputText"].as_str().map(String::from));
    assert_eq!(
        bodies[0],
        json!({"inputText": "chunk number 0", "dimensions": 512, "normalize": true})
    );
}

#[tokio::test]
async fn titan_rejects_unsupported_dimensions() {
    let mock = Mock::start().await;
    let err = BedrockEmbedder::new(
        &sdk(&mock),
        BedrockOptions {
            model_id: "amazon.titan-embed-text-v2:0".into(),
            titan_dimensions: 300,
            ..BedrockOptions::default()
        },
    )
    .expect_err("300 is not offered");
    assert!(err.to_string().contains("256, 512 or 1024"));
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_and_counted() {
    let mock = Mock::start().await;
    mock.script([
        Reply::bedrock_throttle(),
        Reply::status(503, r#"{"message":"Bedrock is unavailable"}"#)
            .header("x-amzn-ErrorType", "ServiceUnavailableException"),
        Reply::bedrock_throttle(),
    ]);
    let t = Throttled::new(Arc::new(cohere(&mock, CohereTruncate::End)), quick(5));
    let out = t
        .embed_documents(&texts(2))
        .await
        .expect("succeeds after retries");
    assert_eq!(out.vectors.len(), 2);
    let u = &t.report().usage[0];
    assert_eq!((u.calls, u.retries, u.throttled), (4, 3, 2));
    assert_eq!(mock.seen().len(), 4);
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_providers_message() {
    let mock = Mock::start().await;
    mock.script(std::iter::repeat_n(Reply::bedrock_throttle(), 10));
    let t = Throttled::new(Arc::new(cohere(&mock, CohereTruncate::End)), quick(3));
    let err = t
        .embed_documents(&texts(1))
        .await
        .expect_err("keeps failing");
    match &err {
        Error::GaveUp {
            attempts,
            last,
            reason,
            ..
        } => {
            assert_eq!((*attempts, *reason), (3, StopReason::Attempts(3)));
            assert_eq!(last.kind(), Some(ErrorKind::Throttled));
        }
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("Too many requests"), "{msg}");
    assert!(
        msg.contains("cohere.embed-multilingual-v3") && msg.contains("bedrock"),
        "{msg}"
    );
    assert!(!msg.contains("test-secret-key"));
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn throttling_that_never_stops_ends_with_the_time_budget() {
    let mock = Mock::start().await;
    mock.script(std::iter::repeat_n(Reply::bedrock_throttle(), 1000));
    let retry = Policy {
        initial: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
        budget: Duration::from_secs(1),
        max_attempts: None,
        ..Policy::default()
    };
    let t = Throttled::new(
        Arc::new(cohere(&mock, CohereTruncate::End)),
        ThroughputOptions { retry, ..quick(1) },
    );
    let err = t
        .embed_documents(&texts(1))
        .await
        .expect_err("keeps failing");
    let Error::GaveUp {
        attempts, reason, ..
    } = &err
    else {
        panic!("unexpected {err}")
    };
    assert_eq!(*reason, StopReason::Budget(Duration::from_secs(1)));
    // Waits of at most 100 ms in 1 s: several attempts, each exactly one request.
    assert!(*attempts >= 5, "{err}");
    assert_eq!(mock.seen().len(), *attempts as usize);
    assert!(err.to_string().contains("retry budget of 1s"), "{err}");
}

#[tokio::test]
async fn validation_errors_are_not_retried() {
    let mock = Mock::start().await;
    mock.script([
        Reply::status(400, r#"{"message":"Malformed input request"}"#)
            .header("x-amzn-ErrorType", "ValidationException"),
    ]);
    let t = Throttled::new(Arc::new(cohere(&mock, CohereTruncate::End)), quick(5));
    let err = t.embed_documents(&texts(1)).await.expect_err("rejected");
    assert_eq!(err.kind(), Some(ErrorKind::Rejected));
    assert!(err.to_string().contains("Malformed input request"));
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn malformed_response_is_a_clear_error() {
    let mock = Mock::start().await;
    mock.script([
        Reply::status(200, r#"{"unexpected": true}"#),
        Reply::status(200, r#"{"embeddings": [[0.1, 0.2]]}"#),
    ]);
    let t = Throttled::new(Arc::new(cohere(&mock, CohereTruncate::End)), quick(5));
    let err = t.embed_documents(&texts(1)).await.expect_err("malformed");
    assert_eq!(err.kind(), Some(ErrorKind::Malformed), "{err}");
    assert!(err.to_string().contains("embeddings"), "{err}");
    // A well-formed body with the wrong dimension is caught too.
    let err = t
        .embed_documents(&texts(1))
        .await
        .expect_err("wrong dimension");
    assert_eq!(err.kind(), Some(ErrorKind::Malformed), "{err}");
    assert!(err.to_string().contains("expected 1024"), "{err}");
    assert_eq!(mock.seen().len(), 2);
}
