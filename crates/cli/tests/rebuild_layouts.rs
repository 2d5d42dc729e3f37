//! `ragshift rebuild` into the layouts of the libraries most pgvector RAG data lives in
//! (langchain-postgres `PGVector` and `PGVectorStore`, llama-index-vector-stores-postgres), from
//! a file registry and a documents directory with the real local model; then the library itself
//! opens the rebuilt store, finds a chunk by its stored vector within its bot, and adds a row.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use ragshift_testkit::rag_stores::library_rebuilt;
use ragshift_testkit::{model_dir, shared_pg};

const USER: &str = "5b1f0e3c-aaaa-4bbb-8ccc-000000000001";
const BOT_A: &str = "01JE00000000000000000000A1";
const BOT_B: &str = "01JE00000000000000000000B2";

/// `bots.json` (a DynamoDB-JSON export) and `docs/` for `bots`: (bot id, file names).
fn write_registry(dir: &Path, bots: &[(&str, &[&str])]) {
    let bots: Vec<_> = bots
        .iter()
        .map(|(bot, files)| (bot.to_string(), files.to_vec(), vec![]))
        .collect();
    common::write_file_registry(dir, USER, &bots);
}

fn rebuild(dir: &Path, url: &str, flags: &[&str]) -> Output {
    ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir)
        .args(["rebuild", "--yes"])
        .args(flags)
        .env("RAGSHIFT_EMBEDDING_MODEL_DIR", model_dir())
        .env("RAGSHIFT_REGISTRY_KIND", "file")
        .env("RAGSHIFT_REGISTRY_PATH", "bots.json")
        .env("RAGSHIFT_DOCUMENTS_KIND", "dir")
        .env("RAGSHIFT_DOCUMENTS_PATH", "docs")
        .env("RAGSHIFT_TARGET_URL", url)
        .output()
        .expect("run ragshift")
}

use ragshift_testkit::env::assert_exit;
use ragshift_testkit::sql::{column, scalar};

mod common;

/// A layout rebuild writes, and how its rows are read back.
#[derive(Clone, Copy)]
struct Case {
    /// `--layout`.
    layout: &'static str,
    /// `--table`, for the layouts whose table the user names.
    table_flag: Option<&'static str>,
    /// The chunk table as the library names it.
    table: &'static str,
    /// The plan's description of how bots map.
    plan: &'static str,
    /// Each row as (bot, id as the library shows it, content, source).
    rows_sql: &'static str,
}

const LANGCHAIN: Case = Case {
    layout: "langchain",
    table_flag: None,
    table: "langchain_pg_embedding",
    plan: "one collection of public.langchain_pg_collection per bot",
    rows_sql: "SELECT c.name::text, e.id::text, e.document::text, e.cmetadata->>'source'
                 FROM langchain_pg_embedding e JOIN langchain_pg_collection c ON c.uuid = e.collection_id",
};

const LANGCHAIN_V2: Case = Case {
    layout: "langchain-v2",
    table_flag: Some("kb_docs"),
    table: "kb_docs",
    plan: "the bot in langchain_metadata->>'bot_id'",
    rows_sql: "SELECT langchain_metadata->>'bot_id', langchain_id::text, content, langchain_metadata->>'source'
                 FROM kb_docs",
};

const LLAMAINDEX: Case = Case {
    layout: "llamaindex",
    table_flag: Some("kb"),
    table: "data_kb",
    plan: "the bot in metadata_->>'bot_id'",
    rows_sql:
        "SELECT metadata_->>'bot_id', node_id::text, text::text, metadata_->>'source' FROM data_kb",
};

/// Bedrock Chat's table, the reference.
const BEDROCK_SQL: &str = "SELECT rtrim(botid), rtrim(id), content, source FROM items";

impl Case {
    fn flags(&self) -> Vec<&'static str> {
        let mut f = vec!["--layout", self.layout];
        if let Some(t) = self.table_flag {
            f.extend(["--table", t]);
        }
        f
    }
}

/// Per bot: its rows as (id, content, source), ordered by id.
type Rows = BTreeMap<String, Vec<(String, String, String)>>;

async fn rows(url: &str, sql: &str) -> Rows {
    let c = shared_pg().connect(url).await;
    let mut out = Rows::new();
    for r in c.query(sql, &[]).await.unwrap() {
        let bot: Option<String> = r.get(0);
        out.entry(bot.unwrap_or_default()).or_default().push((
            r.get(1),
            r.get(2),
            r.get::<_, Option<String>>(3).unwrap_or_default(),
        ));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Per bot: its (content, source) pairs, sorted: what two layouts share for the same input.
fn contents(rows: &Rows) -> BTreeMap<String, Vec<(String, String)>> {
    rows.iter()
        .map(|(bot, v)| {
            let mut c: Vec<(String, String)> =
                v.iter().map(|(_, c, s)| (c.clone(), s.clone())).collect();
            c.sort();
            (bot.clone(), c)
        })
        .collect()
}

fn ids(rows: &Rows, bot: &str) -> Vec<String> {
    rows[bot].iter().map(|r| r.0.clone()).collect()
}

/// Rebuilds bots A (handbook, faq) and B (vi) into `case`'s layout and into Bedrock Chat's, has
/// the library search and extend the result, then rebuilds A with changed knowledge.
async fn rebuild_into(case: Case) {
    let dir = tempfile::tempdir().unwrap();
    write_registry(
        dir.path(),
        &[(BOT_A, &["handbook.md", "faq.txt"]), (BOT_B, &["vi.md"])],
    );
    let name = case.layout.replace('-', "_");
    let reference = shared_pg().fresh_database(&format!("rl_bedrock_{name}"));
    let out = rebuild(dir.path(), &reference, &[]);
    assert_exit(&out, 0);
    let bedrock = rows(&reference, BEDROCK_SQL).await;
    assert_eq!(bedrock.len(), 2, "{bedrock:?}");

    let url = shared_pg().fresh_database(&format!("rl_{name}"));
    let out = rebuild(dir.path(), &url, &case.flags());
    assert_exit(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(case.plan), "the plan shows the layout: {err}");
    let first = rows(&url, case.rows_sql).await;
    assert_eq!(
        contents(&first),
        contents(&bedrock),
        "the same chunks per bot as Bedrock Chat's layout gets"
    );
    let n_a = first[BOT_A].len();
    let n_b = first[BOT_B].len();
    assert!(n_a > 1 && n_b > 0, "{first:?}");

    // The library opens the store and finds a chunk of A by its own vector, within A.
    let chunk = first[BOT_A][n_a / 2].0.clone();
    let view = library_rebuilt(case.layout, &url, case.table, BOT_A, &chunk).unwrap();
    assert_eq!(
        view.hits.first().map(|h| h.0.as_str()),
        Some(chunk.as_str()),
        "the library's nearest chunk is the one whose vector was asked: {:?}",
        view.hits
    );
    let hit_ids_of = |bot: &str| -> Vec<String> {
        let mut v: Vec<String> = view
            .hits
            .iter()
            .filter(|h| h.1.as_deref() == Some(bot))
            .map(|h| h.0.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        hit_ids_of(BOT_A),
        ids(&first, BOT_A),
        "the library sees every chunk of A as A's"
    );
    if case.layout == "langchain-v2" {
        // PGVectorStore filters on metadata columns only: it searched the whole table, and
        // reads each row's bot from the metadata.
        assert_eq!(hit_ids_of(BOT_B), ids(&first, BOT_B));
        assert_eq!(view.hits.len(), n_a + n_b);
    } else {
        assert_eq!(
            view.hits.len(),
            n_a,
            "restricted to A, the library returns A's chunks only: {:?}",
            view.hits
        );
    }
    for (h, doc) in view.hits.iter().zip(&view.ref_doc_ids) {
        assert!(
            h.2.as_deref()
                .is_some_and(|s| s.ends_with(".md") || s.ends_with(".txt")),
            "{h:?}"
        );
        if case.layout == "llamaindex" {
            assert_eq!(doc, &h.2, "LlamaIndex rebuilds the node with its document");
        }
    }
    assert_eq!(view.added.len(), 1, "the library added a row");
    let after_add = rows(&url, case.rows_sql).await;
    assert_eq!(after_add[BOT_A].len(), n_a + 1);
    assert!(
        ids(&after_add, BOT_A).contains(&view.added[0]),
        "the library's row is A's: {after_add:?}"
    );
    assert_eq!(after_add[BOT_B], first[BOT_B]);

    // A loses faq.txt and is rebuilt: its rows are replaced, B's are left as they were (same
    // ids).
    write_registry(
        dir.path(),
        &[(BOT_A, &["handbook.md"]), (BOT_B, &["vi.md"])],
    );
    let mut flags = case.flags();
    flags.extend(["--bot", BOT_A]);
    let out = rebuild(dir.path(), &url, &flags);
    assert_exit(&out, 0);
    let second = rows(&url, case.rows_sql).await;
    assert_eq!(second[BOT_B], first[BOT_B], "B untouched");
    let handbook: Vec<(String, String)> = contents(&bedrock)[BOT_A]
        .iter()
        .filter(|(_, s)| s.ends_with("handbook.md"))
        .cloned()
        .collect();
    assert!(!handbook.is_empty());
    assert_eq!(
        contents(&second)[BOT_A],
        handbook,
        "A holds exactly its handbook chunks: no faq chunk, no duplicate, no library row left"
    );
    let all_ids: Vec<String> = second.values().flatten().map(|r| r.0.clone()).collect();
    let distinct: std::collections::HashSet<&String> = all_ids.iter().collect();
    assert_eq!(distinct.len(), all_ids.len(), "no duplicate ids");
    if case.layout == "langchain" {
        let c = shared_pg().connect(&url).await;
        let named: i64 = c
            .query_one(
                "SELECT count(*) FROM langchain_pg_collection WHERE name = $1",
                &[&BOT_A],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(named, 1, "A keeps one collection");
    }
}

#[tokio::test]
async fn rebuild_writes_langchain_v1_collections_the_library_reads() {
    rebuild_into(LANGCHAIN).await;
}

#[tokio::test]
async fn rebuild_writes_langchain_v2_rows_the_library_reads() {
    rebuild_into(LANGCHAIN_V2).await;
}

#[tokio::test]
async fn rebuild_writes_llamaindex_nodes_the_library_reads() {
    rebuild_into(LLAMAINDEX).await;
}

#[tokio::test]
async fn a_target_table_of_another_shape_or_dimension_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    write_registry(dir.path(), &[(BOT_A, &["faq.txt"])]);
    let url = shared_pg().fresh_database("rl_refused");
    let c = shared_pg().connect(&url).await;
    c.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE data_kb (id bigserial PRIMARY KEY, body text, score int);
         INSERT INTO data_kb (body, score) VALUES ('keep me', 1);
         CREATE TABLE kb_docs (langchain_id uuid PRIMARY KEY, content text NOT NULL,
                               embedding vector(8) NOT NULL, langchain_metadata json);",
    )
    .await
    .unwrap();
    let shape = |table: &'static str| {
        let c = &c;
        async move {
            c.query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
                  WHERE attrelid = $1::text::regclass AND attnum > 0 ORDER BY attnum",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
        }
    };
    let before = shape("data_kb").await;

    let out = rebuild(dir.path(), &url, &LLAMAINDEX.flags());
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("public.data_kb exists with another shape")
            && err.contains("found:")
            && err.contains("metadata_"),
        "{err}"
    );
    assert_eq!(shape("data_kb").await, before);
    let body: Vec<String> = column(&c, "SELECT body FROM data_kb").await;
    assert_eq!(body, vec!["keep me".to_owned()]);

    let out = rebuild(dir.path(), &url, &LANGCHAIN_V2.flags());
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stores vector(8)"), "{err}");
    assert_eq!(
        scalar::<i64>(&c, "SELECT count(*) FROM kb_docs").await,
        0,
        "nothing written"
    );
    let journal: bool = scalar(&c, "SELECT to_regclass('ragshift.runs') IS NOT NULL").await;
    if journal {
        assert_eq!(
            scalar::<i64>(&c, "SELECT count(*) FROM ragshift.runs").await,
            0,
            "no run was started"
        );
    }
}
