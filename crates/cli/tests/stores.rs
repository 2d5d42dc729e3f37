//! Stores written by the real libraries most pgvector RAG data lives in (langchain-postgres,
//! LlamaIndex) and a hand-made table of awkward types, moved to another cluster with `ragshift
//! copy`, and again with `ragshift export` then `ragshift import`: every table arrives identical (an all-column digest), the library's own searches
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
    ragshift_testkit::env::run_isolated(env!("CARGO_BIN_EXE_ragshift"), dir, args)
}

use ragshift_testkit::env::assert_exit;
use ragshift_testkit::env::output_text as text;
use ragshift_testkit::sql::scalar;

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

/// The source side's flags of [`layout_flags`] alone (for `export`).
fn source_flags(kind: StoreKind, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for pair in layout_flags(kind, table).chunks(2) {
        match pair[0].as_str() {
            "--layout" => out.extend(["--source-layout".to_owned(), pair[1].clone()]),
            "--table" => out.extend(["--source-table".to_owned(), pair[1].clone()]),
            f if f.starts_with("--source-") => out.extend(pair.iter().cloned()),
            _ => {}
        }
    }
    out
}

/// Every file of the export at `kb` opens with pyarrow and with DuckDB, each column typed as its
/// PostgreSQL type says (recorded in the field metadata), vectors as lists of floats, sparse
/// vectors as {dim, indices, values}; and the rows of all files add up to the manifest's.
fn check_files_with_pyarrow(kind: StoreKind, kb: &Path) {
    let python = ragshift_testkit::env::ragshift_home().join("venv/bin/python");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(
            r#"import json, os, sys, duckdb, pyarrow as pa, pyarrow.parquet as pq
root = sys.argv[1]
m = json.load(open(os.path.join(root, 'manifest.json')))
rows = 0
vectors = 0
for f in m['files']:
    t = pq.read_table(os.path.join(root, f['path']))
    assert t.num_rows == f['rows'], (f['path'], t.num_rows, f['rows'])
    rows += t.num_rows
    for field in t.schema:
        pg = (field.metadata or {}).get(b'pg_type', b'').decode()
        assert pg, ('no pg_type', f['path'], field.name)
        base = pg.split('(')[0]
        values = [v for v in t.column(field.name).to_pylist() if v is not None]
        if base in ('vector', 'halfvec'):
            assert (pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type))                 and field.type.value_type == pa.float32(), (field.name, field.type)
            assert all(isinstance(x, float) for v in values for x in v), field.name
            vectors += len(values)
        elif base == 'sparsevec':
            assert pa.types.is_struct(field.type), field.type
            assert all(len(v['indices']) == len(v['values']) <= v['dim'] for v in values)
            vectors += len(values)
        elif pg == 'uuid':
            assert getattr(field.type, 'extension_name', None) == 'arrow.uuid', field.type
            assert all(len(v) == 16 for v in t.column(field.name).cast(pa.binary(16)).to_pylist() if v)
        elif pg in ('bigint', 'integer'):
            assert field.type in (pa.int64(), pa.int32()), field.type
    # DuckDB reads the same file: vectors as lists of floats, the same row count.
    src = "read_parquet('%s')" % os.path.join(root, f['path']).replace("'", "''")
    assert duckdb.sql('SELECT count(*) FROM ' + src).fetchone()[0] == f['rows'], f['path']
    d = duckdb.sql('SELECT * FROM %s LIMIT 0' % src)
    for name, typ in zip(d.columns, d.types):
        pg = t.schema.field(name).metadata[b'pg_type'].decode().split('(')[0]
        if pg in ('vector', 'halfvec'):
            assert str(typ).startswith('FLOAT['), (name, typ)
            got = duckdb.sql('SELECT "%s" FROM %s WHERE "%s" IS NOT NULL LIMIT 5' % (name, src, name)).fetchall()
            assert all(isinstance(x, float) for (v,) in got for x in v), (name, got)
        elif pg == 'sparsevec':
            assert 'indices INTEGER[]' in str(typ) and 'values" FLOAT[]' in str(typ), (name, typ)
assert rows == m['rows'], (rows, m['rows'])
print(json.dumps({'files': len(m['files']), 'rows': rows, 'vectors': vectors}))"#,
        )
        .arg(kb)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{kind}: pyarrow could not read the export as promised: {}",
        text(&out)
    );
    let seen: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(
        seen["vectors"].as_i64().unwrap() > 0,
        "{kind}: no vector read: {seen}"
    );
}

/// How a store is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// `ragshift copy`.
    Copy,
    /// `ragshift export` to a directory, then `ragshift import` from it.
    ExportImport,
    /// `ragshift replicate start`, then `replicate cutover` (from a source with logical
    /// replication).
    Replicate,
}

impl Move {
    /// Database names' prefix, so that the moves of one store don't meet.
    fn prefix(self) -> &'static str {
        match self {
            Move::Copy => "st",
            Move::ExportImport => "ex",
            Move::Replicate => "rs",
        }
    }

    /// A source cluster of its own where the move needs one (replication: `wal_level =
    /// logical`); the others use the shared cluster.
    fn source_cluster(self) -> Option<PgCluster> {
        matches!(self, Move::Replicate).then(|| PgCluster::builder().logical_replication().start())
    }
}

async fn moved_whole_and_still_working(kind: StoreKind) {
    moved_whole_by(kind, Move::Copy).await;
}

async fn exported_whole_and_still_working(kind: StoreKind) {
    moved_whole_by(kind, Move::ExportImport).await;
}

async fn moved_whole_by(kind: StoreKind, how: Move) {
    let dir = tempfile::tempdir().unwrap();
    let name = kind.name().replace('-', "_");
    let (prefix, logical) = (how.prefix(), how.source_cluster());
    let source = logical.as_ref().map_or(shared_pg(), |c| c.server());
    let src_url = source.fresh_database(&format!("{prefix}_{name}_src"));
    let store = write_store(kind, &src_url).unwrap();
    let target = PgCluster::start();
    let tgt_url = target.fresh_database(&format!("{prefix}_{name}_tgt"));
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

    match how {
        Move::Copy => {
            let out = with(&["copy", "--partition-rows", "100", "--jobs", "2"]);
            assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));
        }
        Move::ExportImport => {
            let kb = dir.path().join("kb");
            let kb = kb.to_str().unwrap();
            let mut args = vec!["export", "--source", &src_url, "--to", kb];
            let flags = source_flags(kind, &table);
            args.extend(flags.iter().map(String::as_str));
            let out = ragshift(dir.path(), &args);
            assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));
            check_files_with_pyarrow(kind, Path::new(kb));
            // The tables' definitions travel in the manifest: import needs no layout flags.
            let out = ragshift(dir.path(), &["import", "--from", kb, "--target", &tgt_url]);
            assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));
        }
        Move::Replicate => {
            let out = with(&["replicate", "start"]);
            assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));
            let out = with(&["replicate", "cutover", "--timeout", "120s"]);
            assert_eq!(out.status.code(), Some(0), "{kind}: {}", text(&out));
        }
    }

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

    if kind == StoreKind::LangchainV1 {
        // A difference names the collection as the library does, by its name.
        let name: String = scalar(&tgt, "WITH changed AS (
                   UPDATE langchain_pg_embedding SET document = document || '!'
                    WHERE id = (SELECT min(id) FROM langchain_pg_embedding) RETURNING collection_id)
                 SELECT c.name FROM langchain_pg_collection c JOIN changed ON c.uuid = changed.collection_id").await;
        let out = with(&["verify", "--queries", "0"]);
        assert_eq!(out.status.code(), Some(1), "{kind}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("collection {name} (")),
            "{kind}: {}",
            text(&out)
        );
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
    moved_whole_by(kind, Move::Replicate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_v1_replicated_with_its_collections() {
    replicated_whole_and_still_working(StoreKind::LangchainV1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamaindex_hybrid_replicated_with_its_sequence_and_generated_tsvector() {
    replicated_whole_and_still_working(StoreKind::LlamaIndexHybrid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_langchain_v1_with_its_collections() {
    exported_whole_and_still_working(StoreKind::LangchainV1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_langchain_v2_with_its_text_search_column() {
    exported_whole_and_still_working(StoreKind::LangchainV2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_llamaindex_with_its_id_sequence() {
    exported_whole_and_still_working(StoreKind::LlamaIndex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_llamaindex_hybrid_with_its_generated_tsvector() {
    exported_whole_and_still_working(StoreKind::LlamaIndexHybrid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_llamaindex_halfvec() {
    exported_whole_and_still_working(StoreKind::LlamaIndexHalfvec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_sparsevec_bit_uuid_serial_and_checks() {
    exported_whole_and_still_working(StoreKind::CustomTypes).await;
}

/// A store whose chunk table refers to its collections, which refer to their tenants (two
/// levels of parents), plus a docstore nothing refers to, named with `--extra-table`; and a
/// table of notes on the chunks, which refers to the chunk table.
const LAYERED_STORE: &str = "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE tenants (id serial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE collections (
    uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id int NOT NULL REFERENCES tenants (id),
    name text NOT NULL);
CREATE TABLE chunks (
    id bigserial PRIMARY KEY,
    collection_id uuid NOT NULL REFERENCES collections (uuid) ON DELETE CASCADE,
    content text, source text, embedding vector(8));
CREATE TABLE docstore (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE notes (id serial PRIMARY KEY, chunk_id bigint REFERENCES chunks (id), note text);
INSERT INTO tenants (name) VALUES ('acme'), ('globex');
INSERT INTO collections (tenant_id, name)
     SELECT 1 + g % 2, 'collection ' || g FROM generate_series(1, 3) g;
INSERT INTO chunks (collection_id, content, source, embedding)
     SELECT (SELECT uuid FROM collections ORDER BY name OFFSET g % 3 LIMIT 1),
            'chunk ' || g, 's3://docs/' || g % 7,
            ARRAY(SELECT sin(g * k)::real FROM generate_series(1, 8) k)::vector
       FROM generate_series(1, 300) g;
INSERT INTO docstore SELECT 'doc-' || g, jsonb_build_object('text', 'document ' || g, 'n', g)
       FROM generate_series(1, 50) g;
INSERT INTO notes (chunk_id, note) VALUES (1, 'check this');
";

async fn layered_store_moved_whole_by(how: Move) {
    let dir = tempfile::tempdir().unwrap();
    let (prefix, logical) = (how.prefix(), how.source_cluster());
    let source = logical.as_ref().map_or(shared_pg(), |c| c.server());
    let src_url = source.fresh_database(&format!("{prefix}_layered_src"));
    let src = source.connect(&src_url).await;
    src.batch_execute(LAYERED_STORE).await.unwrap();
    let target = PgCluster::start();
    let tgt_url = target.fresh_database(&format!("{prefix}_layered_tgt"));
    let layout: Vec<&str> = vec![
        "--table",
        "chunks",
        "--source-bot-column",
        "collection_id",
        "--target-bot-column",
        "collection_id",
    ];
    let with = |cmd: &[&str], extra: &str| {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend(["--source", &src_url, "--target", &tgt_url]);
        args.extend(&layout);
        args.extend(["--extra-table", extra]);
        ragshift(dir.path(), &args)
    };

    // Tables that can't be moved along are refused before anything is written.
    for (extra, why) in [
        ("notes", "refers to the chunk table public.chunks"),
        ("nowhere", "extra table public.nowhere"),
    ] {
        let cmd: &[&str] = match how {
            Move::Copy => &["copy"],
            Move::ExportImport => &["export", "--to", "/nonexistent/never-written"],
            Move::Replicate => &["replicate", "start"],
        };
        let out = if how == Move::ExportImport {
            let mut args = cmd.to_vec();
            args.extend(["--source", &src_url, "--source-table", "chunks"]);
            args.extend([
                "--source-bot-column",
                "collection_id",
                "--extra-table",
                extra,
            ]);
            ragshift(dir.path(), &args)
        } else {
            with(cmd, extra)
        };
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", text(&out));
        assert!(text(&out).contains(why), "{extra}: {}", text(&out));
        let tgt = target.connect(&tgt_url).await;
        assert_eq!(
            scalar::<i64>(
                &tgt,
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            )
            .await,
            0,
            "{extra}: nothing is created on the target"
        );
    }

    match how {
        Move::Copy => {
            let out = with(
                &["copy", "--partition-rows", "100", "--jobs", "2"],
                "docstore",
            );
            assert_exit(&out, 0);
        }
        Move::ExportImport => {
            let kb = dir.path().join("kb");
            let kb = kb.to_str().unwrap();
            let mut args = vec!["export", "--source", &src_url, "--to", kb];
            args.extend([
                "--source-table",
                "chunks",
                "--source-bot-column",
                "collection_id",
            ]);
            args.extend(["--extra-table", "public.docstore"]);
            let out = ragshift(dir.path(), &args);
            assert_exit(&out, 0);
            let out = ragshift(dir.path(), &["import", "--from", kb, "--target", &tgt_url]);
            assert_exit(&out, 0);

            // Restored beside the original under another name: the original and its parents
            // are left as they are, the copy refers to the same collections.
            let before = all_column_digest(&src, "public.chunks").await.unwrap();
            let args = ["import", "--from", kb, "--target", &src_url];
            let mut args = args.to_vec();
            args.extend(["--target-table", "chunks_restored"]);
            let out = ragshift(dir.path(), &args);
            assert_exit(&out, 0);
            assert_eq!(
                all_column_digest(&src, "public.chunks").await.unwrap(),
                before
            );
            assert_eq!(
                all_column_digest(&src, "public.chunks_restored")
                    .await
                    .unwrap(),
                before
            );
            let fk: String = scalar(
                &src,
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE conrelid = 'chunks_restored'::regclass AND contype = 'f'",
            )
            .await;
            assert!(fk.contains("REFERENCES collections(uuid)"), "{fk}");

            // Collections that differ from the export's are refused, not deleted: deleting
            // them would cascade to the chunks of the original table.
            src.batch_execute(
                "UPDATE collections SET name = 'renamed' WHERE name = 'collection 1'",
            )
            .await
            .unwrap();
            let chunks = all_column_digest(&src, "public.chunks").await.unwrap();
            let collections = all_column_digest(&src, "public.collections").await.unwrap();
            let last = args.len() - 1;
            args[last] = "chunks_again";
            let out = ragshift(dir.path(), &args);
            assert_exit(&out, 1);
            assert!(
                text(&out).contains("public.collections already holds"),
                "{}",
                text(&out)
            );
            assert_eq!(
                all_column_digest(&src, "public.chunks").await.unwrap(),
                chunks
            );
            assert_eq!(
                all_column_digest(&src, "public.collections").await.unwrap(),
                collections
            );
            src.batch_execute(
                "UPDATE collections SET name = 'collection 1' WHERE name = 'renamed'",
            )
            .await
            .unwrap();
        }
        Move::Replicate => {
            let out = with(&["replicate", "start"], "docstore");
            assert_exit(&out, 0);
            // Written after the start: replication carries it to the extra table too.
            src.batch_execute("INSERT INTO docstore VALUES ('late', '{\"text\": \"late\"}')")
                .await
                .unwrap();
            let out = with(&["replicate", "cutover", "--timeout", "120s"], "docstore");
            assert_exit(&out, 0);
        }
    }

    let tgt = target.connect(&tgt_url).await;
    for t in ["tenants", "collections", "chunks", "docstore"] {
        let t = format!("public.{t}");
        assert_eq!(
            all_column_digest(&src, &t).await.unwrap(),
            all_column_digest(&tgt, &t).await.unwrap(),
            "every column of every row of {t}"
        );
    }
    // The grandparent's foreign key came along, and its sequence stands where the source's does.
    assert_eq!(
        scalar::<i64>(
            &tgt,
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'
                AND conrelid IN ('collections'::regclass, 'chunks'::regclass)",
        )
        .await,
        2,
        "both levels of foreign keys are on the target"
    );
    tgt.batch_execute("BEGIN; INSERT INTO tenants (name) VALUES ('initech'); ROLLBACK")
        .await
        .unwrap();
    assert!(
        scalar::<bool>(&tgt, "SELECT to_regclass('public.notes') IS NULL").await,
        "a table nobody named stays behind"
    );

    let out = with(&["verify", "--queries", "0"], "docstore");
    assert_exit(&out, 0);
    tgt.batch_execute("UPDATE docstore SET value = '{\"text\": \"changed\"}' WHERE key = 'doc-7'")
        .await
        .unwrap();
    let out = with(&["verify", "--queries", "0"], "docstore");
    assert_exit(&out, 1);
    assert!(text(&out).contains("docstore"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_of_parents_and_extra_tables_copied() {
    layered_store_moved_whole_by(Move::Copy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_of_parents_and_extra_tables_exported() {
    layered_store_moved_whole_by(Move::ExportImport).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_of_parents_and_extra_tables_replicated() {
    layered_store_moved_whole_by(Move::Replicate).await;
}
