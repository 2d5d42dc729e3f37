//! `ragshift export` / `ragshift import` end to end against real PostgreSQL and moto: a round
//! trip through Parquet leaves every bot's checksum unchanged, pyarrow reads the files as they
//! are, S3 works like a directory, and a corrupted file is refused by name before any write.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use ragshift_store::checksum::{bot_checksums, BotChecksum};
use ragshift_store::Layout;
use ragshift_testkit::rag_stores::all_column_digest;
use ragshift_testkit::{shared_moto, shared_pg, unique_name};
use serde_json::Value;

/// Awkward rows: empty and NULL content, NULL sources and vectors, long and non-ASCII texts,
/// rows without a bot id, bots of very different sizes.
fn fixture() -> String {
    let mut sql = ragshift_testkit::awkward_items(ragshift_testkit::AwkwardItems {
        rows: 1500,
        big_bot_rows: 400,
        small_bots: 25,
        long_repeat: 3000,
    });
    sql.push_str("CREATE INDEX idx_items_botid ON items (botid);\n");
    sql
}

fn ragshift(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    ragshift_testkit::env::run_isolated_with(env!("CARGO_BIN_EXE_ragshift"), dir, args, env)
}

/// `ragshift export` of the store at `source` to `to`, with `flags` and the variables `env`.
fn export(dir: &Path, source: &str, to: &str, flags: &[&str], env: &[(&str, String)]) -> Output {
    let mut args = vec!["export", "--source", source, "--to", to];
    args.extend_from_slice(flags);
    ragshift(dir, &args, env)
}

/// `ragshift import` of the export at `from` into `target`, with `flags` and the variables `env`.
fn import(dir: &Path, from: &str, target: &str, flags: &[&str], env: &[(&str, String)]) -> Output {
    let mut args = vec!["import", "--from", from, "--target", target];
    args.extend_from_slice(flags);
    ragshift(dir, &args, env)
}

use ragshift_testkit::env::assert_exit;
use ragshift_testkit::env::output_text as text;
use ragshift_testkit::sql::scalar;

/// Runs the test venv's Python on `script` with `args`; its stdout (it must succeed).
fn python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let python = ragshift_testkit::env::ragshift_home().join("venv/bin/python");
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn checksums(c: &tokio_postgres::Client) -> Vec<BotChecksum> {
    bot_checksums(c, &Layout::default(), None).await.unwrap()
}

async fn source(name: &str) -> (String, tokio_postgres::Client) {
    shared_pg().seeded_database(name, &fixture()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_drop_import_round_trips_every_bot_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("export_dir").await;
    let before = checksums(&db).await;
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap();

    let out = export(
        dir.path(),
        &url,
        out_str,
        &["--json", "--model", "test-model"],
        &[],
    );
    assert_exit(&out, 0);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["dimension"], 8);
    assert_eq!(manifest["rows"], 1500);
    assert_eq!(manifest["model"], "test-model");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        before.len(),
        "one file per bot, rows without a bot included"
    );
    assert!(files
        .iter()
        .all(|f| f["sha256"].as_str().unwrap().len() == 64));
    assert!(files.iter().any(|f| f["bot_id"].is_null()));

    // pyarrow reads the files as they are, with the promised schema and values.
    let big = out_dir.join("bots/BIGBOT00000000000000000000.parquet");
    let py = python(
            "import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(t.schema.field('embedding').type)
print(t.num_rows, t.column_names)
r = t.filter(__import__('pyarrow.compute', fromlist=['x']).equal(t['id'], '00000000000000000000000003')).to_pylist()[0]
print(r['content'])
print(round(r['embedding'][6], 6))",
        &[big.as_os_str()],
    );
    let lines: Vec<&str> = py.lines().collect();
    assert_eq!(lines[0], "fixed_size_list<item: float>[8]");
    assert!(
        lines[1].starts_with("396 ['id', 'botid', 'content', 'source', 'embedding']"),
        "{py}"
    );
    assert_eq!(lines[2], "héllo wörld 日本語 🚀 3");
    assert_eq!(lines[3], "0.333333");

    // The destructive deploy.
    db.batch_execute("DROP TABLE items").await.unwrap();
    let out = import(
        dir.path(),
        out_str,
        &url,
        &["--target-index", "ivfflat"],
        &[],
    );
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("checksums match the export"),
        "{}",
        text(&out)
    );
    assert_eq!(
        checksums(&db).await,
        before,
        "every bot byte-identical per checksums"
    );
    assert_eq!(scalar::<i64>(&db,
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'items' AND indexdef LIKE '%ivfflat%'",).await, 1);

    // Importing again replaces each bot's rows instead of duplicating them.
    let out = import(dir.path(), out_str, &url, &[], &[]);
    assert_exit(&out, 0);
    assert_eq!(checksums(&db).await, before);

    // Exporting into a directory that holds an export is refused.
    let out = export(dir.path(), &url, out_str, &[], &[]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds an export"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_parquet_file_is_refused_by_name_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _db) = source("export_corrupt").await;
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap();
    let out = export(dir.path(), &url, out_str, &[], &[]);
    assert_exit(&out, 0);

    let victim = out_dir.join("bots/BOT00000000000000000000007.parquet");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();

    let target = shared_pg().fresh_database("import_corrupt");
    let out = import(dir.path(), out_str, &target, &[], &[]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BOT00000000000000000000007.parquet"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(
        !err.contains("BOT00000000000000000000008.parquet"),
        "only the bad file is named: {err}"
    );
    let t = shared_pg().connect(&target).await;
    assert_eq!(
        scalar::<i64>(
            &t,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'items'",
        )
        .await,
        0,
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_checksummed_another_way_is_imported_with_counts_checked_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("export_old_scheme").await;
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap();
    let out = export(dir.path(), &url, out_str, &[], &[]);
    assert_exit(&out, 0);

    // A manifest from before the checksum scheme was recorded: its checksums can't be compared.
    let manifest_path = out_dir.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(
        manifest["checksum_scheme"],
        ragshift_store::checksum::SCHEME
    );
    manifest.as_object_mut().unwrap().remove("checksum_scheme");
    for f in manifest["files"].as_array_mut().unwrap() {
        f["checksum"] = Value::from("12345");
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let target = shared_pg().fresh_database("import_old_scheme");
    let out = import(dir.path(), out_str, &target, &["--json"], &[]);
    assert_exit(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], false);
    let why = report["unverified_reason"].as_str().unwrap();
    assert!(why.contains("row counts were compared"), "{why}");
    assert!(
        report["problems"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let t = shared_pg().connect(&target).await;
    assert_eq!(checksums(&t).await, checksums(&db).await);

    // Row counts are still held to the manifest.
    for f in manifest["files"].as_array_mut().unwrap() {
        f["rows"] = Value::from(f["rows"].as_i64().unwrap() + 1);
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let target2 = shared_pg().fresh_database("import_old_scheme_rows");
    let out = import(dir.path(), out_str, &target2, &["--json"], &[]);
    assert_exit(&out, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_through_s3() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("export_s3").await;
    let before = checksums(&db).await;
    let moto = shared_moto();
    let bucket = unique_name("exports");
    python(
        "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name=sys.argv[2], aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket=sys.argv[3])",
        &[moto.endpoint_url(), moto.region(), bucket.as_str()].map(std::ffi::OsStr::new),
    );
    let mut env = moto.aws_env();
    env.push(("RAGSHIFT_AWS_ENDPOINT_URL", moto.endpoint_url().to_owned()));
    let to = format!("s3://{bucket}/ragshift/before-deploy");

    let out = export(dir.path(), &url, &to, &[], &env);
    assert_exit(&out, 0);
    db.batch_execute("DROP TABLE items").await.unwrap();
    let out = import(dir.path(), &to, &url, &["--json", "--no-index"], &env);
    assert_exit(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 1500);
    assert_eq!(report["verified"], true);
    assert_eq!(checksums(&db).await, before);

    let out = import(
        dir.path(),
        &format!("s3://{bucket}/nothing-here"),
        &url,
        &[],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing started: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("manifest.json"),
        "{}",
        text(&out)
    );
}

async fn bot_sum(c: &tokio_postgres::Client, bot: &str) -> Option<BotChecksum> {
    bot_checksums(c, &Layout::default(), Some(&[bot.to_owned()]))
        .await
        .unwrap()
        .into_iter()
        .next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_file_with_its_hash_recomputed_leaves_the_bots_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("import_altered").await;
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap();
    let out = export(dir.path(), &url, out_str, &[], &[]);
    assert_exit(&out, 0);
    let bot = "BOT00000000000000000000007";
    let good = bot_sum(&db, bot).await.unwrap();

    // One value changed in the bot's file, then the file's SHA-256 and size recomputed in the
    // manifest: the file check passes, only the rows can tell.
    let name = format!("bots/{bot}.parquet");
    let victim = out_dir.join(&name);
    python(
            "import sys, hashlib, json, os, pyarrow as pa, pyarrow.parquet as pq
path, manifest, name = sys.argv[1], sys.argv[2], sys.argv[3]
t = pq.read_table(path)
content = t.column('content').to_pylist()
content[0] = (content[0] or '') + ' (tampered)'
t = t.set_column(t.schema.get_field_index('content'), t.schema.field('content'), pa.array(content, type=pa.string()))
pq.write_table(t, path, use_compliant_nested_type=False)
m = json.load(open(manifest))
for f in m['files']:
    if f['path'] == name:
        f['sha256'] = hashlib.sha256(open(path, 'rb').read()).hexdigest()
        f['bytes'] = os.path.getsize(path)
json.dump(m, open(manifest, 'w'))",
        &[
            victim.as_os_str(),
            out_dir.join("manifest.json").as_os_str(),
            std::ffi::OsStr::new(&name),
        ],
    );

    // The target holds the bot's good rows (an earlier import of the same data, say).
    let out = import(dir.path(), out_str, &url, &["--json"], &[]);
    assert_exit(&out, 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["bot_id"], bot);
    assert_eq!(problems[0]["file"], name.as_str());
    let why = problems[0]["error"].as_str().unwrap();
    assert!(why.contains("keeps its old rows"), "{why}");
    assert_eq!(
        bot_sum(&db, bot).await.unwrap(),
        good,
        "the bot's old rows are still there, unchanged"
    );
    assert_eq!(
        report["bots"].as_u64().unwrap() as usize,
        report_files(&out_dir) - 1,
        "every other bot was imported"
    );
    // The journal says the same: the run failed because of that file, the others succeeded.
    let run_id = report["run_id"].as_str().unwrap();
    let run = db
        .query_one(
            "SELECT kind, status, error FROM ragshift.runs WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .unwrap();
    assert_eq!(
        (run.get::<_, String>(0), run.get::<_, String>(1)),
        ("import".to_owned(), "failed".to_owned())
    );
    assert!(run.get::<_, Option<String>>(2).unwrap().contains(&name));
    let units: Vec<(String, String)> = db
        .query(
            "SELECT unit_id, status FROM ragshift.units WHERE run_id = $1 ORDER BY unit_id",
            &[&run_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(units.len(), report_files(&out_dir));
    for (unit, status) in &units {
        let want = if *unit == name { "failed" } else { "succeeded" };
        assert_eq!(status, want, "{unit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_loses_its_lock_commits_nothing_more_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, _src) = source("import_lock_src").await;
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap();
    let out = export(dir.path(), &src_url, out_str, &[], &[]);
    assert_exit(&out, 0);
    let url = shared_pg().fresh_database("import_lock_tgt");
    let out = import(dir.path(), out_str, &url, &[], &[]);
    assert_exit(&out, 0);
    let c = shared_pg().connect(&url).await;
    c.batch_execute("UPDATE items SET content = 'old'")
        .await
        .unwrap();
    // The third bot's journal row waits inside its transaction until the test lets it go.
    ragshift_testkit::gate::close(&c, "ragshift").await;
    let mut cmd =
        ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir.path());
    cmd.args(["import", "--from", out_str, "--target", &url, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    ragshift_testkit::gate::wait_held(&c, "the third bot reached its commit").await;
    assert_eq!(
        scalar::<i64>(
            &c,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name LIKE 'ragshift import run %'",
        )
        .await,
        1,
        "the lock's session"
    );
    ragshift_testkit::gate::open(&c).await;
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    assert!(text(&out).contains("lost its lock"), "{}", text(&out));
    assert_eq!(scalar::<i64>(&c, "SELECT count(DISTINCT coalesce(botid::text, '')) FROM items WHERE content IS DISTINCT FROM 'old'").await, 2,
        "only the two bots committed before the lock was lost were rewritten"
    );
    let run = c
        .query_one(
            "SELECT status, error FROM ragshift.runs WHERE kind = 'import' ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.get::<_, String>(0), "failed");
    assert!(run
        .get::<_, Option<String>>(1)
        .unwrap()
        .contains("lost its lock"));
}

fn report_files(export: &Path) -> usize {
    let m: Value =
        serde_json::from_slice(&std::fs::read(export.join("manifest.json")).unwrap()).unwrap();
    m["files"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_exit_2_when_nothing_could_start() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("exit_codes").await;
    let before = checksums(&db).await;

    // import: a directory that isn't there, and one without a manifest.
    let missing = dir.path().join("not-there");
    let out = import(dir.path(), missing.to_str().unwrap(), &url, &[], &[]);
    assert_exit(&out, 2);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = import(dir.path(), empty.to_str().unwrap(), &url, &[], &[]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));

    // import: a maintenance_work_mem PostgreSQL would refuse after the rows were written.
    let out = import(
        dir.path(),
        empty.to_str().unwrap(),
        &url,
        &["--maintenance-work-mem", "1gigabyte"],
        &[],
    );
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1gigabyte"));

    // export: to a place that can't hold files (under a regular file).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = export(
        dir.path(),
        &url,
        file.join("kb").to_str().unwrap(),
        &[],
        &[],
    );
    assert_exit(&out, 2);

    // export: a --bot that matches nothing is named, and nothing is written.
    let to = dir.path().join("kb");
    let out = export(
        dir.path(),
        &url,
        to.to_str().unwrap(),
        &["--bot", "BOT00000000000000000000007", "--bot", "NOSUCHBOT"],
        &[],
    );
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NOSUCHBOT") && !err.contains("BOT0000"),
        "{err}"
    );
    assert!(!to.join("manifest.json").exists());

    // S3: a bucket that doesn't exist, both ways.
    let moto = shared_moto();
    let mut env = moto.aws_env();
    env.push(("RAGSHIFT_AWS_ENDPOINT_URL", moto.endpoint_url().to_owned()));
    let nowhere = format!("s3://{}/kb", unique_name("no-such-bucket"));
    let out = export(dir.path(), &url, &nowhere, &[], &env);
    assert_exit(&out, 2);
    let out = import(dir.path(), &nowhere, &url, &[], &env);
    assert_exit(&out, 2);
    assert_eq!(checksums(&db).await, before, "the database is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_more_columns_is_exported_and_imported_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("export_wide").await;
    db.batch_execute(
        "ALTER TABLE items ADD COLUMN metadata jsonb DEFAULT '{\"page\": 1}';
         UPDATE items SET metadata = jsonb_build_object('len', length(content), 'nested', jsonb_build_object('k', botid))
          WHERE botid = 'BOT00000000000000000000007';",
    )
    .await
    .unwrap();
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap();
    let out = export(dir.path(), &url, out_str, &[], &[]);
    assert_exit(&out, 0);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], 2);
    let columns = manifest["tables"][0]["definition"]["columns"]
        .as_array()
        .unwrap();
    assert!(
        columns
            .iter()
            .any(|c| c["name"] == "metadata" && c["type_sql"] == "jsonb"),
        "{columns:?}"
    );

    let target = shared_pg().fresh_database("import_wide");
    let out = import(dir.path(), out_str, &target, &[], &[]);
    assert_exit(&out, 0);
    let t = shared_pg().connect(&target).await;
    assert_eq!(
        all_column_digest(&t, "public.items").await.unwrap(),
        all_column_digest(&db, "public.items").await.unwrap(),
        "every column of every row, metadata included"
    );
    let default: Option<String> = scalar(&t, "SELECT column_default FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'metadata'").await;
    assert!(
        default.unwrap_or_default().contains("page"),
        "the default came along"
    );
}

/// A table without a bot column: cut into files by size at primary key boundaries (not one
/// file per row), imported exactly with its sequence, its text-only types (tsvector, numeric)
/// and arrays; an existing target table of another shape is refused, both shapes shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_table_is_split_by_size_and_imported_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_pg().fresh_database("export_keyless");
    let db = shared_pg().connect(&url).await;
    db.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL, tags text[],
                             price numeric(10,2), tsv tsvector, emb vector(3), made timestamptz);
         INSERT INTO notes (body, tags, price, tsv, emb, made)
         SELECT repeat('note ' || g || ' ', 40), ARRAY['a' || g, NULL, 'é'], g / 7.0,
                to_tsvector('english', 'note number ' || g), ARRAY[g, -g, 0.5]::vector,
                timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
           FROM generate_series(1, 300) g;
         DELETE FROM notes WHERE id % 50 = 0;",
    )
    .await
    .unwrap();
    let rows: i64 = scalar(&db, "SELECT count(*) FROM notes").await;
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap();
    let layout = [
        "--source-table",
        "notes",
        "--source-bot-column",
        "",
        "--source-embedding-column",
        "emb",
    ];
    let mut flags = vec!["--max-file-bytes", "40000"];
    flags.extend(layout);
    let out = export(dir.path(), &url, out_str, &flags, &[]);
    assert_exit(&out, 0);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert!(
        files.len() > 1 && (files.len() as i64) < rows / 10,
        "{} files for {rows} rows",
        files.len()
    );
    assert!(files.iter().all(|f| f["range"]["first"].is_string()));
    assert_eq!(manifest["tables"][0]["split_key"], "id");

    // pyarrow reads every file, vectors as lists of floats, the PostgreSQL types recorded.
    let first = out_dir.join(files[0]["path"].as_str().unwrap());
    let py = python(
        "import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(t.schema.field('emb').type)
print(t.schema.field('tsv').metadata[b'pg_type'].decode())
print(t.column('emb').to_pylist()[0])",
        &[first.as_os_str()],
    );
    let lines: Vec<&str> = py.lines().collect();
    assert_eq!(lines[0], "fixed_size_list<item: float>[3]", "{py}");
    assert_eq!(lines[1], "tsvector", "{py}");
    assert_eq!(lines[2], "[1.0, -1.0, 0.5]", "{py}");

    // A target whose table has another shape: refused before anything is written.
    let other = shared_pg().fresh_database("import_keyless_other");
    let o = shared_pg().connect(&other).await;
    o.batch_execute("CREATE TABLE notes (id bigint PRIMARY KEY, body varchar(20))")
        .await
        .unwrap();
    let notes = ["--target-table", "notes", "--target-bot-column", ""];
    let out = import(dir.path(), out_str, &other, &notes, &[]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("export: (id bigint, body text, tags text[]")
            && err.contains("target: (id bigint, body character varying(20))"),
        "{err}"
    );
    let written: bool = scalar(
        &o,
        "SELECT to_regclass('ragshift.runs') IS NOT NULL OR EXISTS (SELECT 1 FROM notes)",
    )
    .await;
    assert!(!written, "nothing was written");

    // Into an empty database: the same table, every value, its sequence past the ids.
    let target = shared_pg().fresh_database("import_keyless");
    let out = import(dir.path(), out_str, &target, &notes, &[]);
    assert_exit(&out, 0);
    let t = shared_pg().connect(&target).await;
    assert_eq!(
        all_column_digest(&t, "public.notes").await.unwrap(),
        all_column_digest(&db, "public.notes").await.unwrap()
    );
    assert_eq!(
        scalar::<i64>(&t, "INSERT INTO notes (body) VALUES ('new') RETURNING id").await,
        301,
        "the sequence continues where the source's stood"
    );
    // Importing again leaves it as it is (every range already there).
    t.batch_execute("DELETE FROM notes WHERE id = 301")
        .await
        .unwrap();
    let out = import(dir.path(), out_str, &target, &notes, &[]);
    assert_exit(&out, 0);
    assert_eq!(
        all_column_digest(&t, "public.notes").await.unwrap(),
        all_column_digest(&db, "public.notes").await.unwrap()
    );

    // An import whose every file fails its checksum (the manifest's row checksums altered;
    // the files themselves intact) fails, and the table it created, left empty, is gone.
    let bad_dir = dir.path().join("kb-bad");
    let mut bad = manifest.clone();
    for f in bad["files"].as_array_mut().unwrap() {
        let path = f["path"].as_str().unwrap().to_owned();
        let to = bad_dir.join(&path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(out_dir.join(&path), to).unwrap();
        f["checksum"] = Value::from("1");
    }
    std::fs::write(bad_dir.join("manifest.json"), bad.to_string()).unwrap();
    let empty = shared_pg().fresh_database("import_keyless_debris");
    let out = import(dir.path(), bad_dir.to_str().unwrap(), &empty, &notes, &[]);
    assert_exit(&out, 1);
    let e = shared_pg().connect(&empty).await;
    let row = e
        .query_one(
            "SELECT to_regclass('public.notes') IS NULL,
                    (SELECT string_agg(status, ',') FROM ragshift.runs)",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the empty table was removed: {}",
        text(&out)
    );
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("failed"));
}

/// A version 1 export (Bedrock Chat's five columns, written before manifests named their
/// tables) still imports, into the Bedrock Chat layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_export_still_imports_into_the_bedrock_layout() {
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("kb");
    python(
            "import hashlib, json, os, sys, pyarrow as pa, pyarrow.parquet as pq
root = sys.argv[1]
os.makedirs(os.path.join(root, 'bots'))
bot = 'BOTV1000000000000000000001'
schema = pa.schema([('id', pa.string()), ('botid', pa.string()), ('content', pa.string()),
                    ('source', pa.string()), ('embedding', pa.list_(pa.float32(), 3))])
t = pa.table({'id': ['ID%024d' % i for i in range(3)], 'botid': [bot] * 3,
              'content': ['one', 'héllo', None], 'source': ['a.pdf', None, 'c.txt'],
              'embedding': [[0.5, 1.0, -2.0], None, [0.0, 0.25, 3.0]]}, schema=schema)
path = os.path.join(root, 'bots', bot + '.parquet')
pq.write_table(t, path, use_compliant_nested_type=False)
data = open(path, 'rb').read()
m = {'format': 'ragshift-export', 'version': 1, 'created_at': 0, 'source': 'old',
     'table': 'public.items', 'columns': ['id', 'botid', 'content', 'source', 'embedding'],
     'shape': '(id character(26), botid character(26), content text, source text, embedding vector(3))',
     'dimension': 3, 'model': None, 'rows': 3,
     'files': [{'path': 'bots/%s.parquet' % bot, 'bot_id': bot, 'rows': 3, 'bytes': len(data),
                'sha256': hashlib.sha256(data).hexdigest(), 'checksum': ''}]}
json.dump(m, open(os.path.join(root, 'manifest.json'), 'w'))",
        &[kb.as_os_str()],
    );
    let target = shared_pg().fresh_database("import_v1");
    let out = import(dir.path(), kb.to_str().unwrap(), &target, &[], &[]);
    assert_exit(&out, 0);
    let t = shared_pg().connect(&target).await;
    let rows: Vec<(String, String, Option<String>)> = t
        .query(
            "SELECT format_type(atttypid, atttypmod), botid, content FROM items
               JOIN pg_attribute ON attrelid = 'items'::regclass AND attname = 'id' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].0, "character(26)", "the Bedrock Chat layout");
    assert_eq!(rows[1].2.as_deref(), Some("héllo"));
}

/// A column whose type the target lacks: one error naming table, column and type before
/// anything is written (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_the_target_lacks_is_named_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("export_enum").await;
    db.batch_execute(
        "CREATE TYPE mood AS ENUM ('calm', 'sad');
         ALTER TABLE items ADD COLUMN feeling mood DEFAULT 'calm';",
    )
    .await
    .unwrap();
    let kb = dir.path().join("kb");
    let kb = kb.to_str().unwrap();
    let out = export(dir.path(), &url, kb, &[], &[]);
    assert_exit(&out, 0);
    let target = shared_pg().fresh_database("import_enum");
    let out = import(dir.path(), kb, &target, &[], &[]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("public.items.feeling mood"), "{err}");
    let t = shared_pg().connect(&target).await;
    let created: bool = scalar(&t, "SELECT to_regclass('public.items') IS NOT NULL OR to_regclass('ragshift.runs') IS NOT NULL").await;
    assert!(!created, "nothing was created");

    // With the type there, the enum values arrive (carried as text, cast back).
    t.batch_execute("CREATE TYPE mood AS ENUM ('calm', 'sad')")
        .await
        .unwrap();
    let out = import(dir.path(), kb, &target, &[], &[]);
    assert_exit(&out, 0);
    assert_eq!(
        all_column_digest(&t, "public.items").await.unwrap(),
        all_column_digest(&db, "public.items").await.unwrap()
    );
}

/// `import` through a fault proxy, a few seeded trials (the seed is printed; set
/// RAGSHIFT_TEST_SEED to replay one): a connection cut at a random byte, a COMMIT whose answer
/// is lost, or a SIGKILL at a random moment; then the same import again until it succeeds.
/// Every bot ends byte for byte as exported, none twice, and an exit 2 only ever comes from a
/// run that recorded nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_through_cut_connections_and_kills_ends_with_every_bot_exact() {
    use ragshift_testkit::{sigkill_at_random, CutWhen, FaultProxy, SeededRng};
    let dir = tempfile::tempdir().unwrap();
    let (url, db) = source("import_faults_src").await;
    let out_dir = dir.path().join("kb");
    let out_str = out_dir.to_str().unwrap().to_owned();
    let out = export(dir.path(), &url, &out_str, &[], &[]);
    assert_exit(&out, 0);
    let want = checksums(&db).await;
    let upstream = format!("{}:{}", shared_pg().host(), shared_pg().port());

    // How many bytes a whole import sends, through a proxy that only counts.
    let counter = FaultProxy::start(&upstream).unwrap();
    let reference = shared_pg().fresh_database("import_faults_ref");
    let out = import(dir.path(), &out_str, &counter.url_for(&reference), &[], &[]);
    assert_exit(&out, 0);
    let whole = counter.forwarded();

    let seed = SeededRng::trial_seed("import fault trials");
    for trial in 0..3_u64 {
        let seed = seed.wrapping_add(trial);
        let url = shared_pg().fresh_database("import_faults");
        let proxy = FaultProxy::start(&upstream).unwrap();
        let through = proxy.url_for(&url);
        let args = [
            "import",
            "--from",
            out_str.as_str(),
            "--target",
            through.as_str(),
        ];
        let fault = match trial {
            0 => format!("cut at byte {}", proxy.cut_at_random_byte(seed, whole)),
            1 => {
                let nth = 1 + (seed % 8) as u32;
                proxy.cut_on_query("COMMIT", CutWhen::AfterReply, nth);
                format!("COMMIT {nth} committed, its answer lost")
            }
            _ => "SIGKILL".to_owned(),
        };
        let mut child =
            ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir.path())
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
        let killed = trial == 2
            && sigkill_at_random(
                &mut child,
                seed,
                std::time::Duration::from_millis(50)..std::time::Duration::from_secs(3),
            )
            .unwrap()
            .is_some();
        let out = child.wait_with_output().unwrap();
        let c = shared_pg().connect(&url).await;
        match out.status.code() {
            Some(0 | 1) => {}
            None if killed => {}
            Some(2) => {
                let recorded: bool = scalar(
                    &c,
                    "SELECT to_regclass('ragshift.runs') IS NOT NULL
                            AND EXISTS (SELECT 1 FROM ragshift.runs WHERE kind = 'import')",
                )
                .await;
                assert!(
                    !recorded,
                    "trial {trial} (seed {seed}, {fault}): exit 2 after the run was recorded:\n{}",
                    text(&out)
                );
            }
            other => panic!(
                "trial {trial} (seed {seed}, {fault}): exit {other:?}:\n{}",
                text(&out)
            ),
        }
        proxy.heal();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let out = ragshift(dir.path(), &args, &[]);
            if out.status.code() == Some(0) {
                break;
            }
            assert!(
                attempts < 3,
                "trial {trial} (seed {seed}, {fault}): rerun {attempts} failed:\n{}",
                text(&out)
            );
        }
        assert_eq!(
            checksums(&c).await,
            want,
            "trial {trial} (seed {seed}, {fault}): every bot as exported, none twice"
        );
        assert_eq!(
            scalar::<i64>(
                &c,
                "SELECT count(*) FROM ragshift.runs WHERE status = 'running'",
            )
            .await,
            0,
            "trial {trial} (seed {seed}, {fault}): a run left running"
        );
    }
}
