//! Bounded memory: a bot of 200,000 rows with `vector(1024)` embeddings (about 800 MB of
//! vectors, far more than the bound) is exported, imported (from a version 2 export and from a
//! version 1 one), copied and verified, each run as the real `ragshift` binary whose peak
//! resident set (`ru_maxrss`, the kernel's high-water mark) must stay under the bound the
//! README documents, while the data round-trips exactly.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use ragshift_store::checksum::{bot_checksums, BotChecksum};
use ragshift_store::Layout;
use ragshift_testkit::{run_measured, shared_pg};
use serde_json::Value;

/// The bound on a ragshift process's peak resident set (README, "Memory").
const BOUND: u64 = 500 << 20;
/// Rows of the one big bot.
const ROWS: i64 = 200_000;
const BOT: &str = "BIGBOT00000000000000000000";

use ragshift_testkit::env::output_text as text;

/// Runs ragshift and checks its exit code and its peak memory against [`BOUND`].
fn ragshift(dir: &Path, args: &[&str], code: i32) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragshift"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("RAGSHIFT_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let m = run_measured(&mut cmd).unwrap();
    let what = args[0];
    assert_eq!(
        m.output.status.code(),
        Some(code),
        "{what}: {}",
        text(&m.output)
    );
    eprintln!("ragshift {what}: peak RSS {} MiB", m.peak_rss >> 20);
    assert!(
        m.peak_rss < BOUND,
        "ragshift {what} peaked at {} MiB, over the bound of {} MiB",
        m.peak_rss >> 20,
        BOUND >> 20
    );
    m.output
}

async fn checksums(c: &tokio_postgres::Client) -> Vec<BotChecksum> {
    bot_checksums(c, &Layout::default(), None).await.unwrap()
}

/// The platform's table with one bot of [`ROWS`] rows: 1,000 distinct vectors (cheap to make
/// in SQL, each stored whole in TOAST) and distinct texts.
const FIXTURE: &str = "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items(id CHAR(26) PRIMARY KEY, botid CHAR(26), content text, source text,
                   embedding vector(1024));
CREATE TEMP TABLE basis AS
  SELECT n, (SELECT array_agg(sin(n * 7.0 + j))::real[] FROM generate_series(1, 1024) j)::vector AS v
    FROM generate_series(0, 999) n;
INSERT INTO items
SELECT lpad(i::text, 26, '0'), 'BIGBOT00000000000000000000',
       'chunk ' || i || ' of a document about ' || md5(i::text),
       's3://bucket/doc-' || (i % 13) || '.pdf', b.v
  FROM generate_series(1, 200000) i JOIN basis b ON b.n = i % 1000;
INSERT INTO items VALUES ('SMALL000000000000000000001', 'SMALLBOT000000000000000001', 'tiny', NULL, NULL);
ANALYZE items;
";

/// Rewrites a version 2 export of the platform's table as a version 1 export (Bedrock Chat's
/// five columns, one file per bot), row group by row group.
const TO_V1: &str = "
import hashlib, json, os, sys, pyarrow as pa, pyarrow.parquet as pq
src, dst, dim = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = json.load(open(os.path.join(src, 'manifest.json')))
schema = pa.schema([('id', pa.string()), ('botid', pa.string()), ('content', pa.string()),
                    ('source', pa.string()), ('embedding', pa.list_(pa.float32(), dim))])
files = []
for f in m['files']:
    if f['table'] != 'public.items':
        continue
    out = os.path.join(dst, f['path'])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    w = pq.ParquetWriter(out, schema, use_compliant_nested_type=False)
    for batch in pq.ParquetFile(os.path.join(src, f['path'])).iter_batches(batch_size=8192):
        cols = [batch.column(batch.schema.get_field_index(n)).cast(schema.field(n).type) for n in schema.names]
        w.write_batch(pa.record_batch(cols, schema=schema))
    w.close()
    data = open(out, 'rb')
    h = hashlib.sha256()
    for block in iter(lambda: data.read(1 << 20), b''):
        h.update(block)
    files.append({'path': f['path'], 'bot_id': f['bot_id'], 'rows': f['rows'],
                  'bytes': os.path.getsize(out), 'sha256': h.hexdigest(), 'checksum': ''})
v1 = {'format': 'ragshift-export', 'version': 1, 'created_at': 0, 'source': 'old',
      'table': 'public.items', 'columns': ['id', 'botid', 'content', 'source', 'embedding'],
      'shape': '(id character(26), botid character(26), content text, source text, embedding vector(%d))' % dim,
      'dimension': dim, 'model': None, 'rows': sum(f['rows'] for f in files), 'files': files}
json.dump(v1, open(os.path.join(dst, 'manifest.json'), 'w'))
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_of_200k_rows_moves_every_way_within_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let src_url = shared_pg().fresh_database("memory_src");
    let src = shared_pg().connect(&src_url).await;
    src.batch_execute(FIXTURE).await.unwrap();
    let before = checksums(&src).await;
    assert_eq!(before.iter().find(|b| b.bot_id == BOT).unwrap().rows, ROWS);
    let kb = dir.path().join("kb");
    let kb = kb.to_str().unwrap();

    // Export, then import into a fresh database: every row back (import compares each bot with
    // the manifest's checksum, verify compares both databases).
    ragshift(dir.path(), &["export", "--source", &src_url, "--to", kb], 0);
    let imported = shared_pg().fresh_database("memory_imported");
    ragshift(
        dir.path(),
        &["import", "--from", kb, "--target", &imported],
        0,
    );
    let tgt = shared_pg().connect(&imported).await;
    assert_eq!(checksums(&tgt).await, before);
    ragshift(
        dir.path(),
        &["verify", "--source", &src_url, "--target", &imported],
        0,
    );

    // A version 1 export of the same bot (one file of 200k rows) imports within the bound too.
    let v1 = dir.path().join("kb-v1");
    let python = ragshift_testkit::env::ragshift_home().join("venv/bin/python");
    let py = Command::new(&python)
        .args(["-c", TO_V1, kb, v1.to_str().unwrap(), "1024"])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", text(&py));
    let from_v1 = shared_pg().fresh_database("memory_v1");
    ragshift(
        dir.path(),
        &[
            "import",
            "--from",
            v1.to_str().unwrap(),
            "--target",
            &from_v1,
        ],
        0,
    );
    let t1 = shared_pg().connect(&from_v1).await;
    assert_eq!(checksums(&t1).await, before);

    // Copy (verified by the copy itself), then verify on its own.
    let copied = shared_pg().fresh_database("memory_copied");
    let out = ragshift(
        dir.path(),
        &[
            "copy", "--json", "--source", &src_url, "--target", &copied, "--jobs", "4",
        ],
        0,
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let s: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(s["rows"], ROWS + 1, "{s}");
    assert_eq!(
        s["verify"]["mismatches"].as_array().unwrap().len(),
        0,
        "{s}"
    );
    let copy = shared_pg().connect(&copied).await;
    assert_eq!(checksums(&copy).await, before);

    // One changed row among 200k is found and named, still within the bound (both sides'
    // row hashes are merged as they stream).
    copy.batch_execute("UPDATE items SET content = 'changed' WHERE id = lpad('123457', 26, '0')")
        .await
        .unwrap();
    let out = ragshift(
        dir.path(),
        &[
            "verify",
            "--json",
            "--source",
            &src_url,
            "--target",
            &copied,
            "--queries",
            "2",
        ],
        1,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("00000000000000000000123457"),
        "{}",
        text(&out)
    );
}
