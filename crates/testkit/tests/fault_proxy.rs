//! The fault proxy between a client and a real PostgreSQL: it forwards, and each fault it
//! offers really happens (a COMMIT cut after the server answered is committed, one cut before
//! the server saw it is not; a failover refuses connections and then lets them through).

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ragshift_testkit::sql::scalar;
use ragshift_testkit::{shared_pg, CutWhen, FaultProxy};

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

fn upstream() -> String {
    format!("{}:{}", shared_pg().host(), shared_pg().port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_cut_after_the_reply_are_committed_and_before_the_server_are_not() {
    let url = shared_pg().fresh_database("proxy_commit");
    let direct = shared_pg().connect(&url).await;
    direct
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    let proxy = FaultProxy::start(&upstream()).unwrap();
    let via = proxy.url_for(&url);
    assert_ne!(via, url);

    let c = connect(&via).await.unwrap();
    assert_eq!(scalar::<i32>(&c, "SELECT 1").await, 1, "it forwards");

    proxy.cut_on_query("COMMIT", CutWhen::AfterReply, 1);
    let e = c
        .batch_execute("BEGIN; INSERT INTO t VALUES (1); COMMIT")
        .await
        .unwrap_err();
    assert!(e.is_closed() || e.code().is_none(), "{e}");
    assert_eq!(proxy.cuts(), 1);
    assert_eq!(
        scalar::<i64>(&direct, "SELECT count(*) FROM t WHERE id = 1").await,
        1,
        "the server committed what the client never heard about"
    );

    let c = connect(&via).await.unwrap();
    proxy.cut_on_query("COMMIT", CutWhen::BeforeServer, 1);
    c.batch_execute("BEGIN; INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    assert!(c.batch_execute("COMMIT").await.is_err());
    assert_eq!(proxy.cuts(), 2);
    // The server rolls back once it notices the closed connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open: i64 = scalar(&direct, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").await;
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the cut session never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        scalar::<i64>(&direct, "SELECT count(*) FROM t WHERE id = 2").await,
        0,
        "a COMMIT the server never saw did not commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_cuts_failovers_and_stalls_happen() {
    let url = shared_pg().fresh_database("proxy_faults");
    let proxy = FaultProxy::start(&upstream()).unwrap();
    let via = proxy.url_for(&url);

    let c = connect(&via).await.unwrap();
    let at = proxy.cut_at_random_byte(7, 50_000);
    assert!((1..=50_000).contains(&at));
    let e = c
        .query_one("SELECT repeat('x', 1000000)", &[])
        .await
        .unwrap_err();
    assert!(e.is_closed() || e.code().is_none(), "{e}");
    assert_eq!(proxy.cuts(), 1);
    assert!(c.is_closed());

    let c = connect(&via).await.unwrap();
    proxy.failover(Duration::from_secs(2));
    assert!(
        c.query_one("SELECT 1", &[]).await.is_err(),
        "open connections are cut"
    );
    assert!(connect(&via).await.is_err(), "new connections are refused");
    assert!(proxy.refused() >= 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let c = loop {
        match connect(&via).await {
            Ok(c) => break c,
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "still refused after the failover"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    c.query_one("SELECT 1", &[]).await.unwrap();

    proxy.stall(Duration::from_millis(800));
    let t = Instant::now();
    c.query_one("SELECT 1", &[]).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn the_binary_takes_commands_on_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ragshift-fault-proxy"))
        .arg(upstream())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening 127.0.0.1:"), "{line}");
    let mut ask = |cmd: &str| {
        writeln!(stdin, "{cmd}").unwrap();
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l.trim().to_owned()
    };
    let expected = 1 + ragshift_testkit::SeededRng::new(42).below(1000);
    assert_eq!(
        ask("cut-random 42 1000"),
        format!("ok cut after {expected} bytes")
    );
    assert_eq!(ask("failover 10"), "ok");
    assert!(ask("stats").starts_with("ok connections=0 refused=0 cuts=1"));
    assert!(ask("bogus").starts_with("error: unknown command"));
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
