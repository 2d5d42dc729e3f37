//! `ragshift replicate` end to end between two real clusters: start, status until caught up,
//! cutover; a source without wal_level = logical exits 2 with the fix; the source's password
//! never shows.

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
