//! The library-written stores work before anyone moves them: for every kind the real library
//! writes the store, finds rows with its own similarity search, adds rows to it (and, with text
//! search, finds the new one by a word only it contains); the all-column digest is stable and
//! sees one changed value.

#![allow(clippy::unwrap_used)]

use ragshift_testkit::rag_stores::{
    all_column_digest, library_add, library_search, write_store, StoreKind, QUERIES,
};
use ragshift_testkit::shared_pg;
use ragshift_testkit::sql::scalar;

/// Writes, searches and extends one store on the same database, checking what each step must
/// show.
async fn store_works_in_place(kind: StoreKind) {
    let url = shared_pg().fresh_database(&kind.name().replace('-', "_"));
    let client = shared_pg().connect(&url).await;

    let store = write_store(kind, &url).unwrap();
    assert_eq!(store.main_table().rows, 300, "{kind}: {store:?}");
    for t in &store.tables {
        assert_eq!(
            scalar::<i64>(&client, &format!("SELECT count(*) FROM {}", t.name)).await,
            t.rows,
            "{kind}: {} holds what the script reported",
            t.name
        );
    }
    if kind == StoreKind::LangchainV1 {
        let names: Vec<&str> = store.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "public.langchain_pg_collection",
                "public.langchain_pg_embedding"
            ]
        );
        assert_eq!(store.tables[0].rows, 3, "three collections");
    }

    let results = library_search(kind, &url, QUERIES).unwrap();
    let results = results.as_array().unwrap();
    let per_query = if kind == StoreKind::LangchainV1 { 3 } else { 1 };
    assert_eq!(
        results.len(),
        QUERIES.len() * per_query,
        "{kind}: {results:?}"
    );
    for r in results {
        let hits = r["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 5, "{kind}: top 5 for {r}");
        assert!(hits.iter().all(|h| !h["id"].is_null()), "{kind}: {r}");
    }
    // Deterministic: the same search gives the same answer (what a move must preserve).
    let again = library_search(kind, &url, QUERIES).unwrap();
    assert_eq!(again.as_array().unwrap(), results, "{kind}");

    let main = store.main_table().name.clone();
    let before = all_column_digest(&client, &main).await.unwrap();
    assert_eq!(
        before,
        all_column_digest(&client, &main).await.unwrap(),
        "{kind}: the digest is stable"
    );
    assert!(before.starts_with("300 rows, md5 "), "{kind}: {before}");

    let added = library_add(kind, &url).unwrap();
    assert_eq!(added.added, 3, "{kind}: {added:?}");
    assert!(added.found_by_similarity, "{kind}: {added:?}");
    assert!(added.old_rows_found, "{kind}: {added:?}");
    let expect_text = kind.has_text_search().then_some(true);
    assert_eq!(added.text_search_found, expect_text, "{kind}: {added:?}");
    let after = all_column_digest(&client, &main).await.unwrap();
    assert!(after.starts_with("303 rows, md5 "), "{kind}: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_v1_store_works_in_place() {
    store_works_in_place(StoreKind::LangchainV1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_v2_store_works_in_place() {
    store_works_in_place(StoreKind::LangchainV2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_store_works_in_place() {
    store_works_in_place(StoreKind::LlamaIndex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_hybrid_store_works_in_place() {
    store_works_in_place(StoreKind::LlamaIndexHybrid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_halfvec_store_works_in_place() {
    store_works_in_place(StoreKind::LlamaIndexHalfvec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_types_store_works_in_place() {
    store_works_in_place(StoreKind::CustomTypes).await;
}

/// The digest covers every column, orders by the primary key (insertion order does not
/// matter), and by the whole row where there is no key; one changed jsonb value changes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_sees_every_column_in_any_insertion_order() {
    let url = shared_pg().fresh_database("digest");
    let c = shared_pg().connect(&url).await;
    c.batch_execute(
        "CREATE SCHEMA \"Odd Schema\";
         CREATE TABLE \"Odd Schema\".keyed (a int, b text, meta jsonb, PRIMARY KEY (b, a));
         CREATE TABLE \"Odd Schema\".keyed2 (LIKE \"Odd Schema\".keyed INCLUDING ALL);
         INSERT INTO \"Odd Schema\".keyed VALUES (1, 'x', '{\"k\": 1}'), (2, 'x', '{\"k\": 2}'), (1, 'y', NULL);
         INSERT INTO \"Odd Schema\".keyed2 VALUES (1, 'y', NULL), (2, 'x', '{\"k\": 2}'), (1, 'x', '{\"k\": 1}');
         CREATE TABLE loose (v text, n int);
         CREATE TABLE loose2 (v text, n int);
         INSERT INTO loose VALUES ('b', 2), ('a', 1), (NULL, 3);
         INSERT INTO loose2 VALUES (NULL, 3), ('a', 1), ('b', 2);",
    )
    .await
    .unwrap();
    let keyed = all_column_digest(&c, "\"Odd Schema\".keyed").await.unwrap();
    assert!(keyed.starts_with("3 rows, md5 "), "{keyed}");
    assert_eq!(
        keyed,
        all_column_digest(&c, "\"Odd Schema\".keyed2")
            .await
            .unwrap()
    );
    let loose = all_column_digest(&c, "loose").await.unwrap();
    assert_eq!(loose, all_column_digest(&c, "public.loose2").await.unwrap());

    c.batch_execute("UPDATE \"Odd Schema\".keyed2 SET meta = '{\"k\": 3}' WHERE a = 2")
        .await
        .unwrap();
    assert_ne!(
        keyed,
        all_column_digest(&c, "\"Odd Schema\".keyed2")
            .await
            .unwrap()
    );
    c.batch_execute("UPDATE loose2 SET n = 4 WHERE v IS NULL")
        .await
        .unwrap();
    assert_ne!(loose, all_column_digest(&c, "loose2").await.unwrap());

    let err = all_column_digest(&c, "public.nowhere").await.unwrap_err();
    assert!(format!("{err:#}").contains("nowhere"), "{err:#}");
}
