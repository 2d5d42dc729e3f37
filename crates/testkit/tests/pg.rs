//! The testkit's PostgreSQL clusters, against real servers.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ragshift_testkit::{pg_program, shared_pg, PgCluster};

#[tokio::test]
async fn cluster_serves_pgvector_in_separate_databases() {
    let pg = PgCluster::start();
    let one = pg.create_database("one");
    let two = pg.fresh_database("two");
    assert_eq!(
        one,
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/one",
            pg.password(),
            pg.port()
        )
    );
    assert!(two.contains("/two"), "{two}");

    let client = pg.connect(&one).await;
    client
        .batch_execute(
            "CREATE EXTENSION vector;
             CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
             INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]');",
        )
        .await
        .expect("pgvector schema");
    let rows = client
        .query(
            "SELECT id FROM items ORDER BY embedding <-> '[1,0,0]' LIMIT 2",
            &[],
        )
        .await
        .expect("nearest neighbours");
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 3]);

    let other = pg.connect(&two).await;
    other
        .batch_execute("CREATE EXTENSION vector")
        .await
        .expect("vector in the second db");
    let err = other
        .query("SELECT * FROM items", &[])
        .await
        .expect_err("items is in the first db");
    assert_code(&err, tokio_postgres::error::SqlState::UNDEFINED_TABLE);
}

/// Asserts `err` is the server's error `code`.
fn assert_code(err: &tokio_postgres::Error, code: tokio_postgres::error::SqlState) {
    assert_eq!(err.code(), Some(&code), "{err}");
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let pg = shared_pg();
    let url = pg
        .url("postgres")
        .replace(pg.password(), "not-the-password");
    let err = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .err()
        .expect("a wrong password must fail");
    assert_code(&err, tokio_postgres::error::SqlState::INVALID_PASSWORD);
}

#[tokio::test]
async fn shared_cluster_is_one_server_with_fresh_databases() {
    let first = shared_pg();
    let second = shared_pg();
    assert_eq!(first.port(), second.port());
    let a = first.fresh_database("shared");
    let b = first.fresh_database("shared");
    assert_ne!(a, b);
    let client = first.connect(&b).await;
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .expect("query");
    assert!(b.ends_with(row.get::<_, &str>(0)));
}

#[tokio::test]
async fn options_set_logical_replication_and_extra_settings() {
    let pg = PgCluster::builder()
        .logical_replication()
        .setting("work_mem", "7MB")
        .setting("application_name", "it's quoted")
        .start();
    let client = pg.connect(&pg.url("postgres")).await;
    for (name, want) in [
        ("wal_level", "logical"),
        ("work_mem", "7MB"),
        ("fsync", "off"),
    ] {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .expect("show");
        assert_eq!(row.get::<_, &str>(0), want, "{name}");
    }
    let slots: i32 = client
        .query_one("SELECT current_setting('max_replication_slots')::int", &[])
        .await
        .expect("slots")
        .get(0);
    assert!(slots >= 10);
}

fn psql_tls(pg: &PgCluster, ca: &Path) -> Output {
    let conninfo = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        pg.port(),
        ca.display()
    );
    Command::new(pg_program("psql"))
        .args([
            "-X",
            "-tA",
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .arg(conninfo)
        .env("PGPASSWORD", pg.password())
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run psql")
}

#[test]
fn tls_cluster_is_verified_by_its_ca_only() {
    let pg = PgCluster::builder().tls().start();
    let tls = pg.tls().expect("started with tls");

    let ok = psql_tls(&pg, &tls.ca_cert);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "t");

    let wrong = psql_tls(&pg, &tls.other_ca_cert);
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("certificate verify failed"), "{stderr}");
}

#[tokio::test]
async fn stop_refuses_connections_and_deletes_the_directory() {
    let mut pg = PgCluster::start();
    let dir = pg.data_dir();
    assert!(dir.is_dir());
    let url = pg.url("postgres");
    pg.stop();
    pg.stop();
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .is_err());
}

/// Servers of a process that is killed (no destructor runs) still go away.
#[test]
fn servers_of_a_killed_process_are_reaped() {
    let (mut servers, vars) = start_servers();
    let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
    let pg_port = port_of(&vars["RAGSHIFT_TEST_PG_URL"]);
    let moto_port = port_of(&vars["RAGSHIFT_TEST_MOTO_URL"]);
    assert!(listening(pg_port) && listening(moto_port));

    servers.kill().expect("SIGKILL");
    servers.wait().expect("wait");

    let deadline = Instant::now() + Duration::from_secs(20);
    while (listening(pg_port) || listening(moto_port)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !listening(pg_port),
        "postgres still listening after its owner died"
    );
    assert!(
        !listening(moto_port),
        "moto still listening after its owner died"
    );
}

/// The orderly way out: closing stdin stops both servers before the process exits.
#[test]
fn servers_stop_when_stdin_closes() {
    let (mut servers, vars) = start_servers();
    let ports: Vec<u16> = vars.iter().map(|(_, url)| port_of(url)).collect();
    drop(servers.stdin.take());
    assert!(servers.wait().expect("wait").success());
    for port in ports {
        assert!(!listening(port), "port {port} still open after exit");
    }
}

/// Starts `ragshift-test-servers` and reads the `NAME=value` lines it prints until `ready`.
fn start_servers() -> (std::process::Child, Vec<(String, String)>) {
    let mut servers = Command::new(env!("CARGO_BIN_EXE_ragshift-test-servers"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start ragshift-test-servers");
    let stdout = servers.stdout.take().expect("stdout");
    let mut vars = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.expect("read");
        if line == "ready" {
            break;
        }
        let (k, v) = line.split_once('=').expect("NAME=value");
        vars.push((k.to_owned(), v.to_owned()));
    }
    (servers, vars)
}

fn port_of(url: &str) -> u16 {
    let after_host = url.rsplit_once(':').expect("host:port").1;
    after_host.trim_end_matches('/').parse().expect("port")
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
