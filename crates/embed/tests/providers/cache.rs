//! The content-hash cache in PostgreSQL (`<journal schema>.embedding_cache`) and seeding it
//! from an old store's rows.

use std::sync::Arc;

use ragshift_embed::cache::{
    content_hash, seed_cache_from_pairs, seed_cache_from_table, SeedSource,
};
use ragshift_embed::{Embedder, EmbeddingCache, PgEmbeddingCache, Throttled};

use crate::mock::Mock;
use crate::quick;

/// A client of a fresh database named after `prefix`.
pub(crate) async fn db(prefix: &str) -> Arc<tokio_postgres::Client> {
    let pg = ragshift_testkit::shared_pg();
    let url = pg.fresh_database(prefix);
    Arc::new(pg.connect(&url).await)
}

#[tokio::test]
async fn stores_and_finds_vectors_by_model_and_hash() {
    let client = db("embed_cache").await;
    let cache = PgEmbeddingCache::open(client.clone(), "ragshift")
        .await
        .expect("opens");
    PgEmbeddingCache::open(client.clone(), "ragshift")
        .await
        .expect("opening twice is fine");
    let a = content_hash("alpha");
    let b = content_hash("beta");
    cache
        .put("m1", &[(a, vec![1.0, 2.0, 3.0]), (b, vec![4.0, 5.0, 6.0])])
        .await
        .expect("puts");
    // Existing entries are kept.
    cache
        .put("m1", &[(a, vec![9.0, 9.0, 9.0])])
        .await
        .expect("puts");
    let got = cache
        .get("m1", 3, &[a, b, content_hash("gamma")])
        .await
        .expect("gets");
    assert_eq!(got.len(), 2);
    assert_eq!(got[&a], vec![1.0, 2.0, 3.0]);
    assert_eq!(got[&b], vec![4.0, 5.0, 6.0]);
    assert!(
        cache.get("m2", 3, &[a]).await.expect("gets").is_empty(),
        "per model"
    );
    assert!(
        cache.get("m1", 4, &[a]).await.expect("gets").is_empty(),
        "per dimension"
    );
    assert_eq!(cache.count("m1").await.expect("counts"), 2);
}

#[tokio::test]
async fn keeps_the_first_vector_and_filters_by_dimension_and_model() {
    let c = PgEmbeddingCache::open(db("embed_cache_first").await, "ragshift")
        .await
        .expect("opens");
    let h = content_hash("hello");
    c.put("m", &[(h, vec![1.0, 2.0])]).await.expect("put");
    c.put("m", &[(h, vec![3.0, 4.0])]).await.expect("put");
    let got = c.get("m", 2, &[h]).await.expect("get");
    assert_eq!(got[&h], vec![1.0, 2.0]);
    assert!(c.get("m", 3, &[h]).await.expect("get").is_empty());
    assert!(c.get("other", 2, &[h]).await.expect("get").is_empty());
}

/// The cache lives in the journal's schema, whatever its name; nothing goes to `ragshift`.
#[tokio::test]
async fn the_cache_lives_in_the_journal_schema() {
    let client = db("embed_cache_schema").await;
    let cache = PgEmbeddingCache::open(client.clone(), "Journal-1")
        .await
        .expect("opens");
    let a = content_hash("alpha");
    cache.put("m1", &[(a, vec![1.0, 2.0])]).await.expect("puts");
    let got = cache.get("m1", 2, &[a]).await.expect("gets");
    assert_eq!(got[&a], vec![1.0, 2.0]);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM \"Journal-1\".embedding_cache", &[])
        .await
        .expect("the table is in the schema")
        .get(0);
    assert_eq!(rows, 1);
    let ragshift: bool = client
        .query_one("SELECT to_regnamespace('ragshift') IS NOT NULL", &[])
        .await
        .expect("asks")
        .get(0);
    assert!(!ragshift, "the default schema was created");
}

#[tokio::test]
async fn a_rerun_pays_nothing_with_the_database_cache() {
    let client = db("embed_rerun").await;
    let mock = Mock::start().await;
    let provider = Arc::new(
        ragshift_embed::OpenAiEmbedder::connect(ragshift_embed::OpenAiOptions {
            base_url: format!("{}/v1", mock.url()),
            model: "m".into(),
            api_key_env: "RAGSHIFT_EMBED_TEST_UNSET_KEY".into(),
            expected_dimension: Some(8),
            ..Default::default()
        })
        .await
        .expect("builds"),
    );
    let texts: Vec<String> = (0..300).map(|i| format!("chunk {i}")).collect();
    let first = {
        let cache = Arc::new(
            PgEmbeddingCache::open(client.clone(), "ragshift")
                .await
                .expect("opens"),
        );
        let t = Throttled::new(provider.clone(), quick(1)).with_cache(cache);
        t.embed_documents(&texts).await.expect("embeds")
    };
    let calls = mock.seen().len();
    assert!(calls > 0);
    // A new run (new wrapper, same database) finds everything.
    let cache = Arc::new(
        PgEmbeddingCache::open(client.clone(), "ragshift")
            .await
            .expect("opens"),
    );
    let t = Throttled::new(provider, quick(1)).with_cache(cache);
    let again = t.embed_documents(&texts).await.expect("embeds");
    assert_eq!(again.vectors, first.vectors);
    assert_eq!(mock.seen().len(), calls);
    assert_eq!(t.report().usage[0].cache_hits, 300);
}

#[tokio::test]
async fn seeds_from_an_old_pgvector_store_and_from_pairs() {
    let old = db("embed_seed_old").await;
    old.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE \"Old Items\"(id text primary key, content text, embedding vector(3));
         INSERT INTO \"Old Items\" VALUES
           ('1', 'first chunk', '[1,0,0]'),
           ('2', 'second chunk', '[0,1,0]'),
           ('3', NULL, '[0,0,1]');",
    )
    .await
    .expect("old store");
    let target = db("embed_seed_new").await;
    let cache = PgEmbeddingCache::open(target.clone(), "ragshift")
        .await
        .expect("opens");
    let n = seed_cache_from_table(
        &old,
        &SeedSource {
            table: "Old Items".into(),
            ..SeedSource::default()
        },
        &cache,
        "cohere.embed-multilingual-v3",
    )
    .await
    .expect("seeds");
    assert_eq!(n, 2, "rows without content are skipped");
    let got = EmbeddingCache::get(
        &cache,
        "cohere.embed-multilingual-v3",
        3,
        &[content_hash("first chunk"), content_hash("second chunk")],
    )
    .await
    .expect("gets");
    assert_eq!(got[&content_hash("second chunk")], vec![0.0, 1.0, 0.0]);

    let n = seed_cache_from_pairs(&cache, "m", [("x".to_string(), vec![0.5, 0.5, 0.5])])
        .await
        .expect("seeds");
    assert_eq!(n, 1);
    assert_eq!(cache.count("m").await.expect("counts"), 1);

    // A hostile table name is one quoted identifier, not SQL.
    let err = seed_cache_from_table(
        &old,
        &SeedSource {
            table: "items; DROP TABLE \"Old Items\"".into(),
            ..SeedSource::default()
        },
        &cache,
        "m",
    )
    .await
    .expect_err("no such table");
    assert!(err.to_string().contains("seed"), "{err}");
    let still: i64 = old
        .query_one("SELECT count(*) FROM \"Old Items\"", &[])
        .await
        .expect("table still there")
        .get(0);
    assert_eq!(still, 3);
}
