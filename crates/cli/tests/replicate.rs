//! `ragshift replicate` end to end between two real clusters: start, status until caught up,
//! cutover (fenced; `--no-fence` alone refused), abort lifting the fence afterwards; a source
//! without wal_level = logical exits 2 with the fix; the source's password never shows, not
//! with `-vv`, not in the journal, not in the target's server log.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ragshift_testkit::PgCluster;
use serde_json::Value;

fn ragshift(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragshift"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("RAGSHIFT_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run ragshift")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const SETUP: &str = "
CREATE EXTENSION vector;
CREATE TABLE items (id character(26) PRIMARY KEY, botid character(26), content text, source text, embedding vector(8));
CREATE INDEX ON items (botid);
INSERT INTO items
SELECT lpad(b::text, 2, '0') || lpad(i::text, 24, '0'), 'BOT' || lpad(b::text, 23, '0'),
       'chunk ' || i, 's3://docs/u1/' || b || '/documents/f.pdf',
       (SELECT array_agg(cos(b * 31 + i * 3 + d)::real ORDER BY d) FROM generate_series(1, 8) d)::vector
  FROM generate_series(1, 3) b, generate_series(1, 30) i;
";

async fn clusters(logical: bool) -> (PgCluster, PgCluster, String, String) {
    let source = if logical {
        PgCluster::builder().logical_replication().start()
    } else {
        PgCluster::start()
    };
    let target = PgCluster::start();
    let s = source.fresh_database("cli_rep_src");
    let t = target.fresh_database("cli_rep_tgt");
    source
        .connect(&s)
        .await
        .batch_execute(SETUP)
        .await
        .expect("seed");
    (source, target, s, t)
}

#[tokio::test(flavor = "multi_thread")]
async fn start_status_cutover() {
    let dir = tempfile::tempdir().unwrap();
    let (source, target, s, t) = clusters(true).await;
    let sides = ["--source", s.as_str(), "--target", t.as_str()];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&sides);
        ragshift(dir.path(), &all)
    };

    let out = run(&["replicate", "start", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry run: nothing was created"), "{text}");
    assert!(text.contains("binary transfer"), "{text}");

    let out = run(&["replicate", "start", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = json(&out);
    let sub = started["names"]["subscription"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sub.starts_with("ragshift_sub_"));
    let all_output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all_output.contains(source.password()), "{all_output}");

    // Poll `status` until the initial copy is done and nothing is behind.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(&["replicate", "status", "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let st = json(&out);
        if st["caught_up"] == true && st["target_rows"] == 90 {
            assert_eq!(st["tables"][0]["state"], "r");
            assert_eq!(st["behind_bytes"], 0);
            assert_eq!(st["subscription"], sub.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {st:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = run(&["replicate", "status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("caught up: yes"));

    // Without the fence, only with the acknowledgement: refused before anything is done.
    let out = run(&["replicate", "cutover", "--no-fence"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--accept-losing-writes"), "{err}");
    assert!(err.contains("nothing was done"), "{err}");

    let out = run(&["replicate", "cutover", "--timeout", "60s", "--queries", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("verified: everything matches"), "{text}");
    assert!(text.contains("point the application at"), "{text}");
    assert!(!text.contains(source.password()));

    let tgt = target.connect(&t).await;
    let subs: i64 = tgt
        .query_one("SELECT count(*) FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(subs, 0);
    let out = run(&["verify", "--json", "--queries", "2"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(json(&out)["retrieval"]["index"]["method"] == "hnsw");

    let out = run(&["replicate", "status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no replication is running"));

    // The old source refuses writes until the fence is lifted.
    assert!(text.contains("stays fenced"), "{text}");
    let src = source.connect(&s).await;
    let write = "DELETE FROM items WHERE id = '01000000000000000000000001'";
    let e = src.batch_execute(write).await.unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "25006");
    assert!(
        db.message().contains("writes to public.items are fenced"),
        "{db:?}"
    );
    let out = run(&["replicate", "abort"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("already cut over"), "{text}");
    assert!(text.contains("removed write fence"), "{text}");
    src.batch_execute(write)
        .await
        .expect("writes are accepted again");
}

/// The percent-encoded form of `s` for a URL's password.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_password_reaches_no_output_journal_or_server_log() {
    let dir = tempfile::tempdir().unwrap();
    let source = PgCluster::builder().logical_replication().start();
    // The target logs every statement.
    let target = PgCluster::builder().setting("log_statement", "all").start();
    let s = source.fresh_database("cli_rep_pw_src");
    let t = target.fresh_database("cli_rep_pw_tgt");
    let password = "Pw#?/@:%'x9";
    let src = source.connect(&s).await;
    src.batch_execute(SETUP).await.expect("seed");
    src.batch_execute(&format!(
        "CREATE ROLE odd_user LOGIN SUPERUSER PASSWORD '{}'",
        password.replace('\'', "''")
    ))
    .await
    .unwrap();
    let db = s.rsplit('/').next().unwrap();
    let s_odd = format!(
        "postgres://odd_user:{}@{}:{}/{db}?sslmode=disable",
        encode(password),
        source.host(),
        source.port()
    );
    let sides = ["--source", s_odd.as_str(), "--target", t.as_str()];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&sides);
        ragshift(dir.path(), &all)
    };
    let mut output = String::new();
    for args in [
        &["replicate", "start", "-vv"][..],
        &["replicate", "status", "-vv"],
        &["replicate", "status", "-vv", "--json"],
    ] {
        let out = run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
        output.push_str(&text);
    }
    assert!(
        output.contains("pg_subscription.subconninfo"),
        "says where the password is kept: {output}"
    );
    assert!(output.contains("ok   target server log"), "{output}");

    // The target server holds the password (so it was sent), and logged statements...
    let tgt = target.connect(&t).await;
    let conninfo: String = tgt
        .query_one("SELECT subconninfo FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        conninfo.contains("Pw#?/@:%"),
        "the subscription uses odd_user"
    );
    let journal: String = tgt
        .query_one(
            "SELECT (SELECT string_agg(r::text, ' ') FROM ragshift.runs r)
                 || (SELECT string_agg(u::text, ' ') FROM ragshift.units u)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let out = run(&["replicate", "abort", "-vv"]);
    assert_eq!(out.status.code(), Some(0));
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(target.log_file()).unwrap();
    assert!(log.contains("ragshift.units"), "the target logs statements");
    assert!(log.contains("DROP SUBSCRIPTION"), "the target logs DDL");

    // ...but the password is in none of them.
    for form in [password.to_owned(), encode(password), "Pw#?/@".to_owned()] {
        assert!(!output.contains(&form), "output holds {form:?}: {output}");
        assert!(
            !journal.contains(&form),
            "journal holds {form:?}: {journal}"
        );
        assert!(!log.contains(&form), "target log holds {form:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_without_logical_wal_exits_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (source, target, s, t) = clusters(false).await;
    let out = ragshift(
        dir.path(),
        &["replicate", "start", "--source", &s, "--target", &t],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wal_level is replica"), "{err}");
    assert!(err.contains("nothing was created"), "{err}");
    assert!(!err.contains(source.password()), "{err}");
    let tgt = target.connect(&t).await;
    let n: i64 = tgt
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname IN ('items', 'runs')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn replicating_a_database_into_itself_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _target, s, _t) = clusters(true).await;
    let itself = s.replacen("@127.0.0.1:", "@localhost:", 1);
    assert_ne!(itself, s, "the same database, named another way");
    let out = ragshift(
        dir.path(),
        &["replicate", "start", "--source", &s, "--target", &itself],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("same database"), "{err}");
    assert!(!err.contains(source.password()), "{err}");
    let c = source.connect(&s).await;
    let made: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)
                  + (SELECT count(*) FROM pg_replication_slots)
                  + (SELECT count(*) FROM pg_namespace WHERE nspname = 'ragshift')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(made, 0, "nothing was created");
}
