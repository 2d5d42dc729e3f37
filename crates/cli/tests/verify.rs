//! `ragshift verify` end to end: exit 0 and a JSON report when both stores match; exit 1 naming
//! the bot and the ids when they differ, when a registry bot has no rows or rows are orphans;
//! exit 2 when it can't run; the password never in the output.

use std::path::Path;
use std::process::Output;

use ragshift_testkit::{shared_pg, three_bots};
use serde_json::Value;

fn ragshift(dir: &Path, args: &[&str]) -> Output {
    ragshift_testkit::env::run_isolated(env!("CARGO_BIN_EXE_ragshift"), dir, args)
}

/// `ragshift verify` of `target` against `source` with `flags`.
fn verify(dir: &Path, source: &str, target: &str, flags: &[&str]) -> Output {
    let mut args = vec!["verify", "--source", source, "--target", target];
    args.extend_from_slice(flags);
    ragshift(dir, &args)
}

use ragshift_testkit::env::assert_exit;
use ragshift_testkit::env::stdout_json as json;

fn bot(n: u32) -> String {
    format!("BOT{n:023}")
}

async fn two_stores(prefix: &str) -> (String, String, tokio_postgres::Client) {
    let pg = shared_pg();
    let (s, _) = pg
        .seeded_database(&format!("{prefix}_src"), &three_bots(25))
        .await;
    let (t, target) = pg
        .seeded_database(&format!("{prefix}_tgt"), &three_bots(25))
        .await;
    (s, t, target)
}

/// A DynamoDB-JSON export (`aws dynamodb scan --output json`) with bots 1..=n, all with files.
fn registry_file(dir: &Path, bots: &[u32]) -> String {
    let items: Vec<Value> = bots
        .iter()
        .map(|n| {
            serde_json::json!({
                "PK": {"S": "u1"},
                "SK": {"S": format!("u1#BOT#{}", bot(*n))},
                "Title": {"S": format!("bot {n}")},
                "Knowledge": {"M": {
                    "source_urls": {"L": []},
                    "sitemap_urls": {"L": []},
                    "filenames": {"L": [{"S": "f.pdf"}]}
                }}
            })
        })
        .collect();
    let path = dir.join("bots.json");
    std::fs::write(&path, serde_json::json!({ "Items": items }).to_string())
        .expect("write the export");
    path.display().to_string()
}

#[tokio::test]
async fn matching_stores_exit_0_with_a_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t, _) = two_stores("cli_verify_ok").await;
    let reg = registry_file(dir.path(), &[1, 2, 3]);
    let out = verify(
        dir.path(),
        &s,
        &t,
        &[
            "--json",
            "--queries",
            "3",
            "--k",
            "5",
            "--registry-file",
            &reg,
        ],
    );
    assert_exit(&out, 0);
    let v = json(&out);
    assert_eq!(v["passed"], true);
    assert_eq!(v["checksums"]["bots_matching"], 3);
    assert_eq!(v["retrieval"]["overlap_at_k"], 1.0);
    assert_eq!(v["retrieval"]["queries"], 9);
    assert_eq!(v["coverage"]["with_knowledge"], 3);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(shared_pg().password()), "{text}");
}

#[tokio::test]
async fn differences_exit_1_naming_bots_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t, target) = two_stores("cli_verify_diff").await;
    target
        .batch_execute(&format!(
            "UPDATE items SET content = 'edited' WHERE id = '02' || lpad('4', 24, '0');
             INSERT INTO items SELECT '99' || substr(id, 3), '{orphan}', content, source, embedding
               FROM items WHERE botid = '{b1}' LIMIT 2;",
            orphan = bot(9),
            b1 = bot(1)
        ))
        .await
        .unwrap();
    let reg = registry_file(dir.path(), &[1, 2, 3, 4]);
    let out = verify(
        dir.path(),
        &s,
        &t,
        &["--queries", "2", "--registry-file", &reg],
    );
    assert_exit(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT verified"), "{text}");
    assert!(text.contains(&format!("bot {} differs", bot(2))), "{text}");
    assert!(text.contains(&format!("02{:024}", 4)), "{text}");
    assert!(
        text.contains(&format!("bot {} is on the target only", bot(9))),
        "{text}"
    );
    assert!(
        text.contains(&format!("bot u1/{} has knowledge", bot(4))),
        "{text}"
    );
    assert!(text.contains("(orphan)"), "{text}");
    assert!(!text.contains(shared_pg().password()));

    // JSON says the same; --bot narrows to a bot that matches.
    let out = verify(dir.path(), &s, &t, &["--json", "--bot", &bot(3)]);
    assert_exit(&out, 0);
    assert_eq!(json(&out)["checksums"]["bots_compared"], 1);
}

#[test]
fn a_missing_table_or_server_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let s = pg.fresh_database("cli_verify_empty_src");
    let t = pg.fresh_database("cli_verify_empty_tgt");
    let out = verify(dir.path(), &s, &t, &[]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("source") && err.contains("public.items"),
        "{err}"
    );
    assert!(!err.contains(pg.password()), "{err}");

    let out = ragshift(dir.path(), &["verify", "--source", &s]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAGSHIFT_TARGET_URL"));
}

/// A table without constraints, so ids, bots and vectors can be NULL.
const LOOSE: &str = "
CREATE EXTENSION vector;
CREATE TABLE items (id text, botid text, content text, source text, embedding vector(3));
INSERT INTO items
SELECT 'r' || b || '-' || i, 'B' || b, 'chunk ' || i, 'f.txt',
       ARRAY[b, i, (b * i) % 7]::real[]::vector
  FROM generate_series(1, 2) b, generate_series(1, 12) i;
";

/// Rows that `Row::get` into a `String` or a `Vector` would crash on.
const NULL_ROWS: &str = "
INSERT INTO items VALUES
  (NULL, 'B1', 'no id', 'f.txt', '[1,1,1]'),
  (NULL, 'B1', 'no id either', 'f.txt', '[2,2,2]'),
  ('r-nobot', NULL, 'no bot', 'f.txt', '[3,3,3]'),
  ('r-novec', 'B2', 'no vector', 'f.txt', NULL);
";

#[tokio::test]
async fn null_ids_bots_and_vectors_are_reported_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let with_nulls = format!("{LOOSE}{NULL_ROWS}");
    let (s, _) = pg.seeded_database("cli_verify_null_src", &with_nulls).await;
    let (t, _) = pg.seeded_database("cli_verify_null_tgt", LOOSE).await;
    let (same, _) = pg
        .seeded_database("cli_verify_null_same", &with_nulls)
        .await;

    // The target lacks the rows with NULLs: a mismatch, exit 1, each named.
    let flags = ["--json", "--queries", "3", "--k", "5"];
    let out = verify(dir.path(), &s, &t, &flags);
    assert_exit(&out, 1);
    let v = json(&out);
    let failures: Vec<&str> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let all = failures.join("\n");
    assert!(
        all.contains("bot <NULL> (the rows whose bot id is NULL) is missing on the target (1 rows"),
        "{all}"
    );
    let b1 = failures
        .iter()
        .find(|f| f.starts_with("bot B1 differs"))
        .expect(&all);
    assert!(
        b1.contains(r#"missing ["<NULL>", "<NULL>"]"#) && b1.contains("row whose id is NULL"),
        "{b1}"
    );
    let b2 = failures
        .iter()
        .find(|f| f.starts_with("bot B2 differs"))
        .expect(&all);
    assert!(b2.contains(r#"missing ["r-novec"]"#), "{b2}");

    // Identical stores, NULLs included: they match, and retrieval runs over the NULL ids.
    let out = verify(dir.path(), &s, &same, &flags);
    assert_exit(&out, 0);
    let v = json(&out);
    assert_eq!(v["passed"], true, "{v}");
    assert_eq!(
        v["checksums"]["bots_matching"], 3,
        "B1, B2 and the NULL bot"
    );
    assert_eq!(v["retrieval"]["overlap_at_k"], 1.0);
}

#[tokio::test]
async fn a_store_compared_with_itself_or_a_bot_in_neither_store_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t, _) = two_stores("cli_verify_refuse").await;
    let itself = s.replacen("@127.0.0.1:", "@localhost:", 1);
    assert_ne!(itself, s, "the same database, named another way");
    let out = verify(dir.path(), &s, &itself, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("same table") && err.contains("proves nothing"),
        "{err}"
    );

    let missing = bot(99);
    let out = verify(dir.path(), &s, &t, &["--bot", &missing]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&missing), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("verified"));
}

#[tokio::test]
async fn a_changed_value_in_a_column_the_layout_does_not_map_is_a_difference() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t, target) = two_stores("cli_verify_unmapped").await;
    let extra = "ALTER TABLE items ADD COLUMN metadata jsonb, ADD COLUMN half halfvec(2);
                 UPDATE items SET metadata = jsonb_build_object('page', 1, 'tags', jsonb_build_array('a', 'b')),
                                  half = '[0.5, 1.5]';";
    shared_pg().execute(&s, extra).await;
    target.batch_execute(extra).await.unwrap();
    let flags = ["--json"];
    let out = verify(dir.path(), &s, &t, &flags);
    assert_exit(&out, 0);

    let row = format!("02{:024}", 4);
    for change in [
        format!("UPDATE items SET metadata = jsonb_set(metadata, '{{tags,1}}', '\"c\"') WHERE id = '{row}'"),
        format!("UPDATE items SET half = '[0.5, 1.25]' WHERE id = '{row}'"),
    ] {
        target.batch_execute(&change).await.unwrap();
        let out = verify(dir.path(), &s, &t, &flags);
        assert_eq!(out.status.code(), Some(1), "{change}: {}", String::from_utf8_lossy(&out.stderr));
        let v = json(&out);
        assert_eq!(v["passed"], false, "{change}");
        assert!(v.to_string().contains(&row), "{change}: the row is named: {v}");
        let column = if change.contains("metadata") { "metadata" } else { "half" };
        let named = &v["checksums"]["different"][0]["changed_columns"][0];
        assert_eq!(named["id"], row.as_str(), "{v}");
        assert_eq!(named["columns"], serde_json::json!([column]), "{change}: {v}");
        // Put it back for the next change.
        let undo = if change.contains("metadata") {
            format!("UPDATE items SET metadata = jsonb_build_object('page', 1, 'tags', jsonb_build_array('a', 'b')) WHERE id = '{row}'")
        } else {
            format!("UPDATE items SET half = '[0.5, 1.5]' WHERE id = '{row}'")
        };
        target.batch_execute(&undo).await.unwrap();
    }
}

/// A table without a bot column (LlamaIndex's shape) is compared per range of its id, so a
/// difference is found in, and explained from, one range's rows, and a table without a primary
/// key is compared by content: rows paired by id, then by every column's hash.
#[tokio::test]
async fn a_table_without_a_bot_column_is_compared_per_id_range() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let (s, t) = (
        pg.fresh_database("cli_verify_ranges_src"),
        pg.fresh_database("cli_verify_ranges_tgt"),
    );
    // 120k rows: more than two ranges' worth. No primary key, and one id twice.
    let setup = "CREATE EXTENSION vector;
        CREATE TABLE data_docs (id bigint, text varchar, metadata_ jsonb, embedding vector(2));
        INSERT INTO data_docs SELECT i, 'node ' || i, jsonb_build_object('i', i), ARRAY[i % 7, 1]::vector
          FROM generate_series(1, 120000) i;
        INSERT INTO data_docs VALUES (5, 'a twin of node 5', '{}', '[0, 1]');
        ANALYZE data_docs;";
    pg.execute(&s, setup).await;
    let target = pg.connect(&t).await;
    target.batch_execute(setup).await.unwrap();
    let flags = [
        "--layout",
        "llamaindex",
        "--table",
        "docs",
        "--queries",
        "0",
        "--json",
    ];
    let out = verify(dir.path(), &s, &t, &flags);
    assert_exit(&out, 0);
    let v = json(&out);
    let ranges = v["checksums"]["bots_compared"].as_u64().unwrap();
    assert!(ranges >= 2, "compared in id ranges: {v}");
    assert_eq!(v["checksums"]["source_rows"], 120_001);

    target
        .batch_execute(
            "UPDATE data_docs SET metadata_ = '{\"i\": -1}' WHERE id = 77777;
             DELETE FROM data_docs WHERE text = 'a twin of node 5';",
        )
        .await
        .unwrap();
    let out = verify(dir.path(), &s, &t, &flags);
    assert_exit(&out, 1);
    let v = json(&out);
    let different = v["checksums"]["different"].as_array().unwrap();
    assert_eq!(
        different.len(),
        2,
        "two ranges differ, the others match: {v}"
    );
    for d in different {
        assert!(
            d["source_rows"].as_i64().unwrap() < 120_001,
            "each difference is one range's rows, not the table's: {d}"
        );
        assert!(
            d["bot_id"].as_str().unwrap().starts_with("rows with ids"),
            "{d}"
        );
    }
    let text = v.to_string();
    let changed = different
        .iter()
        .flat_map(|d| d["changed_columns"].as_array().unwrap().iter())
        .find(|r| r["id"] == "77777")
        .unwrap_or_else(|| panic!("row 77777 is named: {text}"));
    assert_eq!(
        changed["columns"],
        serde_json::json!(["metadata_"]),
        "{text}"
    );
    let twin = different
        .iter()
        .find(|d| d["missing_ids"] == serde_json::json!(["5"]))
        .unwrap_or_else(|| panic!("the twin of row 5 is missing: {text}"));
    assert_eq!(
        twin["source_rows"].as_i64().unwrap() - 1,
        twin["target_rows"].as_i64().unwrap()
    );
}

/// Rows are not all a table is: a target without the source's primary key or vector index is
/// named, and a vector index of another method counts as present.
#[tokio::test]
async fn a_lost_constraint_or_vector_index_is_a_difference() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t, target) = two_stores("cli_verify_structure").await;
    let source = shared_pg().connect(&s).await;
    source
        .batch_execute("CREATE INDEX items_vec ON items USING hnsw (embedding vector_cosine_ops)")
        .await
        .unwrap();
    target
        .batch_execute(
            "CREATE INDEX items_vec_ivf ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 1)",
        )
        .await
        .unwrap();
    let flags = ["--queries", "0", "--json"];
    let out = verify(dir.path(), &s, &t, &flags);
    assert_exit(&out, 0);
    let v = json(&out);
    let checked = v["structure"].as_array().unwrap();
    assert!(
        checked
            .iter()
            .any(|c| c["definition"] == "PRIMARY KEY (id)"),
        "{v}"
    );

    target
        .batch_execute("ALTER TABLE items DROP CONSTRAINT items_pkey; DROP INDEX items_vec_ivf;")
        .await
        .unwrap();
    let out = verify(dir.path(), &s, &t, &flags);
    assert_exit(&out, 1);
    let failures = json(&out)["failures"].to_string();
    assert!(
        failures.contains("constraint items_pkey: PRIMARY KEY (id)"),
        "{failures}"
    );
    assert!(
        failures.contains("no vector index like the source's items_vec"),
        "{failures}"
    );
    assert!(failures.contains("build-index"), "{failures}");
}
