//! The throughput wrapper: batches filled to the maximum, requests per window under the limit
//! (counted at the server), the in-flight cap, cancellation, and the cache avoiding calls.

use std::sync::Arc;
use std::time::Duration;

use ragshift_embed::{
    check_dimension, Embedder, Error, OpenAiEmbedder, OpenAiOptions, PgEmbeddingCache, RateLimit,
    Throttled, ThroughputOptions,
};
use tokio_util::sync::CancellationToken;

use crate::mock::Mock;
use crate::{quick, quick_retry};

async fn provider(mock: &Mock, batch_size: usize) -> Arc<dyn Embedder> {
    Arc::new(
        OpenAiEmbedder::connect(OpenAiOptions {
            base_url: format!("{}/v1", mock.url()),
            model: "m".into(),
            api_key_env: "RAGSHIFT_EMBED_TEST_UNSET_KEY".into(),
            expected_dimension: Some(8),
            batch_size,
            ..OpenAiOptions::default()
        })
        .await
        .expect("builds"),
    )
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text {i}")).collect()
}

#[tokio::test]
async fn batches_are_filled_to_the_providers_maximum() {
    let mock = Mock::start().await;
    let t = Throttled::new(provider(&mock, 96).await, quick(1));
    assert_eq!(t.batch_size(), 96);
    let input = texts(250);
    let out = t.embed_documents(&input).await.expect("embeds");
    assert_eq!(out.vectors.len(), 250);
    let mut sizes: Vec<usize> = mock
        .seen()
        .iter()
        .map(|s| s.body["input"].as_array().map(|a| a.len()).unwrap_or(0))
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![58, 96, 96]);
    let u = &t.report().usage[0];
    assert_eq!((u.texts, u.calls), (250, 3));
    assert_eq!(
        u.characters,
        input.iter().map(|s| s.len() as u64).sum::<u64>()
    );

    // A smaller configured batch is respected; a larger one is capped at the maximum.
    let small = Throttled::new(
        provider(&mock, 96).await,
        ThroughputOptions {
            batch_size: Some(10),
            ..quick(1)
        },
    );
    assert_eq!(small.batch_size(), 10);
    let big = Throttled::new(
        provider(&mock, 96).await,
        ThroughputOptions {
            batch_size: Some(500),
            ..quick(1)
        },
    );
    assert_eq!(big.batch_size(), 96);
}

#[tokio::test]
async fn requests_per_window_stay_under_the_limit_at_the_server() {
    let mock = Mock::start().await;
    let window = Duration::from_millis(400);
    let limit = 4u64;
    let t = Throttled::new(
        provider(&mock, 1).await,
        ThroughputOptions {
            batch_size: Some(1),
            max_in_flight: 8,
            rate: RateLimit {
                requests: Some(limit),
                tokens: None,
                window,
            },
            retry: quick_retry(1),
        },
    );
    let out = t.embed_documents(&texts(14)).await.expect("embeds");
    assert_eq!(out.vectors.len(), 14);
    let times: Vec<_> = mock.seen().iter().map(|s| s.at).collect();
    assert_eq!(times.len(), 14);
    for (i, &start) in times.iter().enumerate() {
        let in_window = times
            .iter()
            .filter(|&&t| t >= start && t.duration_since(start) < window)
            .count() as u64;
        assert!(
            in_window <= limit,
            "{in_window} requests in the window starting at #{i}"
        );
    }
}

#[tokio::test]
async fn tokens_per_window_stay_under_the_limit_at_the_server() {
    let mock = Mock::start().await;
    let window = Duration::from_millis(300);
    // "text N" is 6-7 characters: 2 estimated tokens; the server reports 2 words = 2 tokens.
    let t = Throttled::new(
        provider(&mock, 2).await,
        ThroughputOptions {
            batch_size: Some(2),
            max_in_flight: 8,
            rate: RateLimit {
                requests: None,
                tokens: Some(8),
                window,
            },
            retry: quick_retry(1),
        },
    );
    t.embed_documents(&texts(12)).await.expect("embeds");
    let seen = mock.seen();
    for s in &seen {
        let tokens_in_window: usize = seen
            .iter()
            .filter(|o| o.at >= s.at && o.at.duration_since(s.at) < window)
            .map(|o| 2 * o.body["input"].as_array().map(|a| a.len()).unwrap_or(0))
            .sum();
        assert!(
            tokens_in_window <= 8,
            "{tokens_in_window} tokens in one window"
        );
    }
}

#[tokio::test]
async fn in_flight_requests_are_capped() {
    let mock = Mock::start().await;
    let t = Throttled::new(
        provider(&mock, 1).await,
        ThroughputOptions {
            max_in_flight: 2,
            ..quick(1)
        },
    );
    t.embed_documents(&texts(20)).await.expect("embeds");
    assert!(mock.max_concurrent() <= 2, "{}", mock.max_concurrent());
}

#[tokio::test]
async fn cancellation_stops_waiting_work() {
    let mock = Mock::start().await;
    let cancel = CancellationToken::new();
    let t = Arc::new(
        Throttled::new(
            provider(&mock, 1).await,
            ThroughputOptions {
                rate: RateLimit {
                    requests: Some(1),
                    tokens: None,
                    window: Duration::from_secs(3600),
                },
                ..quick(1)
            },
        )
        .with_cancel(cancel.clone()),
    );
    t.embed_documents(&texts(1))
        .await
        .expect("the first request fits");
    let waiting = tokio::spawn({
        let t = t.clone();
        async move { t.embed_documents(&["another".into()]).await }
    });
    cancel.cancel();
    let err = waiting.await.expect("joins").expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn the_cache_avoids_a_second_call_for_the_same_text() {
    let mock = Mock::start().await;
    let cache = Arc::new(
        PgEmbeddingCache::open(crate::cache::db("embed_cache_calls").await, "ragshift")
            .await
            .expect("opens"),
    );
    let t = Throttled::new(provider(&mock, 96).await, quick(1)).with_cache(cache.clone());
    let mut input = texts(5);
    input.push("text 0".into()); // a duplicate within the call is embedded once
    let first = t.embed_documents(&input).await.expect("embeds");
    assert_eq!(mock.seen().len(), 1);
    assert_eq!(
        mock.seen()[0].body["input"].as_array().map(|a| a.len()),
        Some(5)
    );
    assert_eq!(first.vectors[5], first.vectors[0]);
    assert_eq!(cache.count("m").await.expect("counts"), 5);

    let again = t.embed_documents(&input).await.expect("embeds");
    assert_eq!(again.vectors, first.vectors);
    assert_eq!(mock.seen().len(), 1, "no second call");
    let u = &t.report().usage[0];
    assert_eq!((u.texts, u.cache_hits, u.calls), (5, 5, 1));

    // Queries are not documents: not cached.
    t.embed_query("text 0").await.expect("embeds");
    assert_eq!(mock.seen().len(), 2);
}

#[test]
fn dimension_mismatch_is_one_clear_error() {
    assert!(check_dimension(1024, 1024, "public.items.embedding").is_ok());
    let err = check_dimension(384, 1024, "public.items.embedding").expect_err("mismatch");
    assert!(matches!(
        err,
        Error::DimensionMismatch {
            embedder_dim: 384,
            column_dim: 1024,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("384") && msg.contains("vector(1024)") && msg.contains("public.items"),
        "{msg}"
    );
}
