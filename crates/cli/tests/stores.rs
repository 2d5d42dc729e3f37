//! Stores written by the real libraries most pgvector RAG data lives in (langchain-postgres,
//! LlamaIndex) and a hand-made table of awkward types, moved with `ragshift copy` to another
//! cluster: every table arrives identical (an all-column digest), the library's own searches
//! answer the same on both sides, the library keeps working on the target (adds rows, finds
//! them, by text search too), and `ragshift verify` passes.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use ragshift_testkit::rag_stores::{
    all_column_digest, library_add, library_search, write_store, StoreKind, QUERIES,
};
use ragshift_testkit::{shared_pg, PgCluster};

fn ragshift(dir: &Path, args: &[&str]) -> Output {
    ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir)
        .args(args)
        .output()
        .expect("run ragshift")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How ragshift is told about each kind's table: a named layout (with `--table` where the
/// library lets the user name it), or the columns one by one (a store without a collection
/// column gets an empty bot column: one key, split by id ranges).
fn layout_flags(kind: StoreKind, table: &str) -> Vec<String> {
    let columns = |id: &str, bot: &str, embedding: &str| {
        let mut v = Vec::new();
        for side in ["source", "target"] {
            v.extend([
                format!("--{side}-table"),
                table.to_owned(),
                format!("--{side}-id-column"),
                id.to_owned(),
                format!("--{side}-bot-column"),
                bot.to_owned(),
                format!("--{side}-embedding-column"),
                embedding.to_owned(),
            ]);
        }
        v
    };
    let named = |layout: &str, table: &str| {
        vec![
            "--layout".to_owned(),
            layout.to_owned(),
            "--table".to_owned(),
            table.to_owned(),
        ]
    };
    match kind {
        StoreKind::LangchainV1 => vec!["--layout".into(), "langchain".into()],
        StoreKind::LangchainV2 => named("langchain-v2", table),
        // As LlamaIndex's own `table_name`: the layout finds it in `data_<name>`.
        StoreKind::LlamaIndex | StoreKind::LlamaIndexHybrid => {
            named("llamaindex", table.trim_start_matches("data_"))
        }
        // As the catalog shows it.
        StoreKind::LlamaIndexHalfvec => named("llamaindex", table),
        StoreKind::CustomTypes => columns("id", "", "emb"),
    }
}

async fn moved_whole_and_still_working(kind: StoreKind) {
    let dir = tempfile::tempdir().unwrap();
    let name = kind.name().replace('-', "_");
    let src_url = shared_pg().fresh_database(&format!("st_{name}_src"));
    let store = write_store(kind, &src_url).unwrap();
    let target = PgCluster::start();
    let tgt_url = target.fresh_database(&format!("st_{name}_tgt"));
    let table = store
        .main_table()
        .name
        .trim_start_matches("public.")
        .to_owned();
    let flags = layout_flags(kind, &table);
    let with = |cmd: &[&str]| {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend(["--source", &src_url, "--target", &tgt_url]);
        args.extend(flags.iter().map(String::as_str));
        ragshift(dir.path(), &args)
    };

    let out = with(&["copy", "--partition-rows", "100", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));

    let (src, tgt) = (
        shared_pg().connect(&src_url).await,
        target.connect(&tgt_url).await,
    );
    for t in &store.tables {
        assert_eq!(
            all_column_digest(&src, &t.name).await.unwrap(),
            all_column_digest(&tgt, &t.name).await.unwrap(),
            "{kind}: every column of every row of {}",
            t.name
        );
    }
    assert_eq!(
        library_search(kind, &src_url, QUERIES).unwrap(),
        library_search(kind, &tgt_url, QUERIES).unwrap(),
        "{kind}: the library finds the same chunks on both sides"
    );

    let out = with(&["verify", "--queries", "2"]);
    assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));

    let added = library_add(kind, &tgt_url).unwrap();
    assert_eq!(added.added, 3, "{kind}: {added:?}");
    assert!(added.found_by_similarity, "{kind}: {added:?}");
    assert!(
        added.old_rows_found,
        "{kind}: the moved rows are still found: {added:?}"
    );
    if kind.has_text_search() {
        assert_eq!(added.text_search_found, Some(true), "{kind}: {added:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_v1_with_its_collections() {
    moved_whole_and_still_working(StoreKind::LangchainV1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_v2_with_its_text_search_column() {
    moved_whole_and_still_working(StoreKind::LangchainV2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_with_its_id_sequence() {
    moved_whole_and_still_working(StoreKind::LlamaIndex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_hybrid_with_its_generated_tsvector() {
    moved_whole_and_still_working(StoreKind::LlamaIndexHybrid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_halfvec() {
    moved_whole_and_still_working(StoreKind::LlamaIndexHalfvec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparsevec_bit_uuid_serial_and_checks() {
    moved_whole_and_still_working(StoreKind::CustomTypes).await;
}

/// The same stores moved with `replicate start` and `cutover`: the tables the chunk table
/// refers to are published with it, generated columns computed by the target, sequences set
/// and foreign keys added at cutover, so the library works on the target as on the source.
async fn replicated_whole_and_still_working(kind: StoreKind) {
    let dir = tempfile::tempdir().unwrap();
    let name = kind.name().replace('-', "_");
    let source = PgCluster::builder().logical_replication().start();
    let src_url = source.fresh_database(&format!("rs_{name}_src"));
    let store = write_store(kind, &src_url).unwrap();
    let target = PgCluster::start();
    let tgt_url = target.fresh_database(&format!("rs_{name}_tgt"));
    let table = store
        .main_table()
        .name
        .trim_start_matches("public.")
        .to_owned();
    let flags = layout_flags(kind, &table);
    let with = |cmd: &[&str]| {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend(["--source", &src_url, "--target", &tgt_url]);
        args.extend(flags.iter().map(String::as_str));
        ragshift(dir.path(), &args)
    };

    let out = with(&["replicate", "start"]);
    assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));
    let out = with(&["replicate", "cutover", "--timeout", "120s", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));

    let (src, tgt) = (
        source.connect(&src_url).await,
        target.connect(&tgt_url).await,
    );
    for t in &store.tables {
        assert_eq!(
            all_column_digest(&src, &t.name).await.unwrap(),
            all_column_digest(&tgt, &t.name).await.unwrap(),
            "{kind}: every column of every row of {}",
            t.name
        );
    }
    assert_eq!(
        library_search(kind, &src_url, QUERIES).unwrap(),
        library_search(kind, &tgt_url, QUERIES).unwrap(),
        "{kind}: the library finds the same chunks on both sides"
    );
    let added = library_add(kind, &tgt_url).unwrap();
    assert_eq!(added.added, 3, "{kind}: {added:?}");
    assert!(
        added.found_by_similarity && added.old_rows_found,
        "{kind}: {added:?}"
    );
    if kind.has_text_search() {
        assert_eq!(added.text_search_found, Some(true), "{kind}: {added:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_v1_replicated_with_its_collections() {
    replicated_whole_and_still_working(StoreKind::LangchainV1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_hybrid_replicated_with_its_sequence_and_generated_tsvector() {
    replicated_whole_and_still_working(StoreKind::LlamaIndexHybrid).await;
}
