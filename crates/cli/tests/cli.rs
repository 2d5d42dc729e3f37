//! The `ragshift` binary end to end: exit codes, JSON output, masking and configuration layers,
//! against a real PostgreSQL with pgvector and a real moto server.

use std::path::Path;
use std::process::Output;

use ragshift_testkit::{shared_moto, shared_pg, unique_name};
use serde_json::Value;

/// Runs ragshift in `dir` with only the given RAGSHIFT_*/AWS_* variables.
fn ragshift(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    ragshift_testkit::env::run_isolated_with(env!("CARGO_BIN_EXE_ragshift"), dir, args, env)
}

use ragshift_testkit::env::{stderr_text as stderr, stdout_json};

/// `ragshift init-target` of the database at `url` with `flags`.
fn init_target(dir: &Path, url: &str, flags: &[&str]) -> Output {
    let mut args = vec!["init-target", "--target-url", url];
    args.extend_from_slice(flags);
    ragshift(dir, &args, &[])
}
use ragshift_testkit::env::assert_exit;

/// `ragshift search` of bot `BOT…A` in the database at `url`, for the vector in file `vector`,
/// with `flags`.
fn search_bot_a(dir: &Path, url: &str, vector: &Path, flags: &[&str]) -> Output {
    let vector = vector.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "search",
        "--target-url",
        url,
        "--bot",
        "BOT0000000000000000000000A",
        "--vector",
        vector,
    ];
    args.extend_from_slice(flags);
    ragshift(dir, &args, &[])
}

#[test]
fn init_target_creates_then_reports_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_pg().fresh_database("cli_init");
    let out = ragshift(
        dir.path(),
        &["init-target", "--json", "--target-url", &url],
        &[],
    );
    assert_exit(&out, 0);
    let v = stdout_json(&out);
    assert_eq!(v["created"], true);
    assert_eq!(
        v["dimension"], 384,
        "the local model's dimension by default"
    );
    assert_eq!(v["table"], "public.items");
    assert!(!v["target"]
        .as_str()
        .unwrap()
        .contains(shared_pg().password()));

    let out = ragshift(
        dir.path(),
        &["init-target", "--json"],
        &[("RAGSHIFT_TARGET_URL", url)],
    );
    assert_exit(&out, 0);
    assert_eq!(stdout_json(&out)["created"], false);
}

#[test]
fn init_target_creates_a_library_layout_the_library_writes_into() {
    use ragshift_testkit::rag_stores::{library_add, StoreKind};
    let dir = tempfile::tempdir().unwrap();
    let url = shared_pg().fresh_database("cli_init_lc");
    let args = [
        "init-target",
        "--json",
        "--target-url",
        &url,
        "--layout",
        "langchain",
        "--dimensions",
        "16",
    ];
    let out = ragshift(dir.path(), &args, &[]);
    assert_exit(&out, 0);
    let v = stdout_json(&out);
    assert_eq!(v["created"], true);
    assert_eq!(v["table"], "public.langchain_pg_embedding");
    // The library finds its own tables (collections too) and adds to them.
    let added = library_add(StoreKind::LangchainV1, &url).unwrap();
    assert_eq!(added.added, 3, "{added:?}");
    assert!(added.found_by_similarity, "{added:?}");
    let out = ragshift(dir.path(), &args, &[]);
    assert_exit(&out, 0);
    assert_eq!(stdout_json(&out)["created"], false);
}

#[tokio::test]
async fn shape_and_dimension_mismatches_exit_2_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let url = pg.fresh_database("cli_shape");
    let client = pg.connect(&url).await;
    client
        .batch_execute("CREATE EXTENSION vector; CREATE TABLE items (id text, v vector(3));")
        .await
        .unwrap();
    let out = init_target(dir.path(), &url, &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("found:    (id text, v vector(3))"), "{err}");
    assert!(!err.contains(pg.password()), "{err}");

    let url2 = pg.fresh_database("cli_dim");
    let out = init_target(dir.path(), &url2, &["--dimensions", "1024"]);
    assert_exit(&out, 0);
    let out = init_target(dir.path(), &url2, &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("vector(1024)"), "{}", stderr(&out));
}

#[test]
fn connection_errors_exit_2_with_the_password_masked() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let url = format!(
        "postgres://{}:WrongPass123@{}:{}/postgres",
        pg.user(),
        pg.host(),
        pg.port()
    );
    let out = init_target(dir.path(), &url, &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(!err.contains("WrongPass123"), "{err}");
    assert!(err.contains("****") && err.contains("password"), "{err}");

    let out = ragshift(dir.path(), &["init-target"], &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("RAGSHIFT_TARGET_URL"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_show_layers_flags_over_env_over_file_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ragshift.toml"),
        "[target]\ntable = \"file_table\"\nschema = \"file_schema\"\nbot_column = \"bot\"\n",
    )
    .unwrap();
    let out = ragshift(
        dir.path(),
        &["config", "show", "--json", "--target-table", "flag_table"],
        &[
            ("RAGSHIFT_TARGET_TABLE", "env_table".into()),
            ("RAGSHIFT_TARGET_SCHEMA", "env_schema".into()),
            (
                "RAGSHIFT_TARGET_URL",
                "postgres://app:Hunter2Secret@db:5432/rag".into(),
            ),
        ],
    );
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("Hunter2Secret"), "{text}");
    let v = stdout_json(&out);
    assert_eq!(v["config"]["target"]["table"], "flag_table");
    assert_eq!(v["config"]["target"]["schema"], "env_schema");
    assert_eq!(v["config"]["target"]["bot_column"], "bot");
    assert_eq!(
        v["config"]["target"]["url"],
        "postgres://app:****@db:5432/rag"
    );
    assert_eq!(v["origins"]["target.table"], "flag --target-table");
    assert_eq!(
        v["origins"]["target.schema"],
        "environment variable RAGSHIFT_TARGET_SCHEMA"
    );
    assert!(v["origins"]["target.bot_column"]
        .as_str()
        .unwrap()
        .ends_with("ragshift.toml"));
    assert_eq!(v["origins"]["target.id_column"], "default");

    // Human output masks too.
    let out = ragshift(
        dir.path(),
        &["config", "show"],
        &[(
            "RAGSHIFT_TARGET_URL",
            "postgres://app:Hunter2Secret@db:5432/rag".into(),
        )],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("url = \"postgres://app:****@db:5432/rag\""),
        "{text}"
    );
    assert!(!text.contains("Hunter2Secret"));
}

#[test]
fn a_named_layout_fills_both_sides_and_one_side_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let show = |args: &[&str]| {
        let mut all = vec!["config", "show", "--json"];
        all.extend(args);
        ragshift(dir.path(), &all, &[])
    };
    let out = show(&[
        "--source-table",
        "li_old",
        "--layout",
        "llamaindex",
        "--table",
        "docs",
    ]);
    assert_exit(&out, 0);
    let v = stdout_json(&out);
    assert_eq!(v["config"]["target"]["table"], "docs");
    assert_eq!(
        v["config"]["source"]["table"], "li_old",
        "--source-table wins"
    );
    assert_eq!(v["config"]["target"]["content_column"], "text");
    assert_eq!(v["config"]["source"]["bot_column"], "");
    assert_eq!(
        v["origins"]["target.content_column"],
        "layout \"llamaindex\""
    );

    // A layout whose table has no fixed name wants it, before anything connects.
    for layout in ["llamaindex", "langchain-v2"] {
        let out = show(&["--layout", layout]);
        assert_eq!(out.status.code(), Some(2), "{layout}");
        assert!(
            stderr(&out).contains("--table") && stderr(&out).contains(layout),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn bad_configuration_exits_2_naming_key_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(&file, "[target]\ntabel = \"x\"\n").unwrap();
    let out = ragshift(
        dir.path(),
        &["config", "show", "--config", file.to_str().unwrap()],
        &[],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("tabel") && stderr(&out).contains("custom.toml"),
        "{}",
        stderr(&out)
    );

    let out = ragshift(
        dir.path(),
        &["config", "show"],
        &[("RAGSHIFT_EMBEDDING_DIMENSIONS", "lots".into())],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("RAGSHIFT_EMBEDDING_DIMENSIONS"),
        "{}",
        stderr(&out)
    );

    let out = ragshift(dir.path(), &["init-target", "--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[tokio::test]
async fn search_json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let url = pg.fresh_database("cli_search");
    let out = init_target(dir.path(), &url, &["--dimensions", "3"]);
    assert_exit(&out, 0);
    let client = pg.connect(&url).await;
    client
        .batch_execute(
            "INSERT INTO items VALUES
              ('01J00000000000000000000001', 'BOT0000000000000000000000A', 'near', 'a.txt', '[1,0,0]'),
              ('01J00000000000000000000002', 'BOT0000000000000000000000A', 'far', 'b.txt', '[0,1,0]'),
              ('01J00000000000000000000003', 'BOT0000000000000000000000B', 'other bot', 'c.txt', '[1,0,0]');",
        )
        .await
        .unwrap();
    let q = dir.path().join("q.json");
    std::fs::write(&q, "[0.9, 0.1, 0]").unwrap();
    let out = search_bot_a(dir.path(), &url, &q, &["--json", "--limit", "5"]);
    assert_exit(&out, 0);
    let v = stdout_json(&out);
    assert_eq!(v["bot_id"], "BOT0000000000000000000000A");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["rank"], 1);
    assert_eq!(results[0]["id"], "01J00000000000000000000001");
    assert_eq!(results[0]["content"], "near");
    assert_eq!(results[0]["source"], "a.txt");
    assert!(results[0]["distance"].as_f64().unwrap() < results[1]["distance"].as_f64().unwrap());

    std::fs::write(&q, "[1, 0]").unwrap();
    let out = search_bot_a(dir.path(), &url, &q, &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("2 dimensions"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_target_can_come_from_a_secrets_manager_secret() {
    let dir = tempfile::tempdir().unwrap();
    let pg = shared_pg();
    let url = pg.fresh_database("cli_secret");
    let dbname = url.rsplit('/').next().unwrap().to_owned();
    let moto = shared_moto();
    let sdk = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = serde_json::json!({
        "host": pg.host(), "port": pg.port(), "username": pg.user(),
        "password": pg.password(), "dbname": dbname, "engine": "postgres"
    });
    let arn = sm
        .create_secret()
        .name(unique_name("dbsecret"))
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let mut env: Vec<(&str, String)> = moto.aws_env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    let out = ragshift(
        dir.path(),
        &[
            "init-target",
            "--json",
            "--target-secret-arn",
            &arn,
            "--aws-endpoint-url",
            moto.endpoint_url(),
        ],
        &env,
    );
    assert_exit(&out, 0);
    let v = stdout_json(&out);
    assert_eq!(v["created"], true);
    assert!(v["target"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{dbname}")));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(pg.password()));

    // A secret that doesn't exist: exit 2, naming it.
    let missing = arn.replace("dbsecret", "nosuchsecret");
    let out = ragshift(
        dir.path(),
        &[
            "init-target",
            "--target-secret-arn",
            &missing,
            "--aws-endpoint-url",
            moto.endpoint_url(),
        ],
        &env,
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("nosuchsecret"), "{}", stderr(&out));
}

#[tokio::test]
async fn build_index_exits_2_before_building_and_1_when_the_build_fails() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_pg().fresh_database("build_index_codes");
    // No table: nothing could start.
    let out = ragshift(dir.path(), &["build-index", "--target-url", &url], &[]);
    assert_exit(&out, 2);
    // A vector column without dimensions: the build itself fails.
    shared_pg().execute(&url, "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE TABLE items (id character(26) PRIMARY KEY, botid character(26), content text,
                                 source text, embedding vector);
             INSERT INTO items VALUES ('a', 'b', 'c', 'd', '[1,2]'), ('e', 'b', 'c', 'd', '[1,2,3]');").await;
    let out = ragshift(dir.path(), &["build-index", "--target-url", &url], &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("dimensions"), "{}", stderr(&out));
}

#[tokio::test]
async fn build_index_reports_its_memory_a_wait_for_a_lock_and_its_progress_as_json() {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let url = shared_pg().fresh_database("build_index_progress");
    let rows = 300u64;
    shared_pg()
        .execute(
            &url,
            &format!(
                "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE TABLE items (id character(26) PRIMARY KEY, botid character(26), content text,
                                 source text, embedding vector(3));
             INSERT INTO items SELECT lpad(i::text, 26, '0'), 'b', 'c', 'd',
                                      format('[%s,%s,%s]', i, i % 7, i % 13)::vector
               FROM generate_series(1, {rows}) i;"
            ),
        )
        .await;
    // A lock CREATE INDEX must wait for (reads still pass): the build can't end before the
    // test has seen it reported.
    let holder = shared_pg().connect(&url).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE items IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut child =
        ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir.path())
            .args(["build-index", "--json", "--target-url", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let v = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(v) => {
                let waiting = v["event"] == "index_progress"
                    && v["phase"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("waiting for a lock"));
                events.push(v);
                if waiting {
                    break;
                }
            }
            Err(e) => panic!("no report of the wait for the lock ({e}): {events:?}"),
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the build waits for the lock"
    );
    holder.batch_execute("COMMIT").await.unwrap();
    events.extend(lines.iter());
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);

    let memory = events
        .iter()
        .find(|v| v["event"] == "index_memory")
        .unwrap_or_else(|| panic!("no index_memory event: {events:?}"));
    assert_eq!(memory["table"], "public.items");
    assert_eq!(memory["method"], "hnsw");
    assert_eq!(memory["rows"], rows);
    assert_eq!(memory["fits"], true);
    let done: Vec<&Value> = events
        .iter()
        .filter(|v| v["event"] == "index_progress" && v["done"] == true)
        .collect();
    assert_eq!(done.len(), 1, "{events:?}");
    assert_eq!(done[0]["tuples_done"], rows);
    assert_eq!(done[0]["index"], memory["index"]);
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["built"], true);
}
