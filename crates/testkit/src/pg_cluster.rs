//! Throwaway PostgreSQL clusters: `initdb` into a temporary directory, a server on a free
//! loopback port, torn down (and the directory removed) when dropped or when the test process
//! ends, whichever comes first.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::TcpListener;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use crate::block::block_on;
use crate::env;
use crate::pg_server::{connect, PgServer};
use crate::process::Supervised;
use crate::tls::{self, TlsFiles};
use crate::unix_user::RunAs;

/// The superuser's password in every cluster the testkit starts.
const PASSWORD: &str = "ragshift-test-password";
/// How long a starting server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a start is retried when another process took the free port first.
const PORT_ATTEMPTS: usize = 3;

/// How to start a [`PgCluster`]; from [`PgCluster::builder`].
#[derive(Debug, Clone, Default)]
#[must_use = "call .start() to start the cluster"]
pub struct PgOptions {
    logical: bool,
    tls: bool,
    settings: Vec<(String, String)>,
}

impl PgOptions {
    /// `wal_level = logical` with room for replication slots and WAL senders, so the cluster
    /// can publish (and subscribe) for logical replication.
    pub fn logical_replication(mut self) -> Self {
        self.logical = true;
        self
    }

    /// Serve TLS (`ssl = on`) with a certificate for `localhost` and `127.0.0.1` signed by a
    /// test CA; see [`PgCluster::tls`]. Clients may still connect without TLS.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Any other `postgresql.conf` setting; applied after (so overriding) the testkit's own.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Starts the cluster and waits until it accepts connections.
    ///
    /// # Panics
    /// When it cannot start; the message says why and what to run.
    pub fn start(self) -> PgCluster {
        self.try_start()
            .unwrap_or_else(|err| panic!("could not start a PostgreSQL test cluster: {err:#}"))
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn try_start(self) -> anyhow::Result<PgCluster> {
        PgCluster::launch(self)
    }
}

/// A PostgreSQL + pgvector cluster owned by this test: its own data directory and port,
/// superuser `postgres` with a password, `fsync` off. Stopped and deleted on drop.
///
/// It dereferences to [`PgServer`] for URLs and databases:
///
/// ```no_run
/// let pg = ragshift_testkit::PgCluster::builder().logical_replication().start();
/// let url = pg.fresh_database("publisher");
/// # drop(url);
/// ```
#[derive(Debug)]
pub struct PgCluster {
    server: PgServer,
    dir: PathBuf,
    tls: Option<TlsFiles>,
    process: Option<Supervised>,
}

impl PgCluster {
    /// Starts a cluster with the default options.
    ///
    /// # Panics
    /// When it cannot start; the message says why and what to run.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Options for a cluster with logical replication, TLS or other settings.
    pub fn builder() -> PgOptions {
        PgOptions::default()
    }

    /// The address and credentials of the server (also reachable through `Deref`).
    pub fn server(&self) -> &PgServer {
        &self.server
    }

    /// The certificates when started with [`PgOptions::tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Stops the server at once (immediate shutdown) and deletes its directory; later
    /// connections are refused. Idempotent; dropping the cluster does the same.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    fn launch(options: PgOptions) -> anyhow::Result<Self> {
        let bindir = pg_bindir()?;
        let run_as = RunAs::for_postgres()?;
        let tmp = tempfile::Builder::new()
            .prefix("ragshift-pg-")
            .tempdir()
            .context("creating a temporary directory for the cluster")?;
        let dir = tmp.path().to_path_buf();
        fs::create_dir(dir.join("sock"))?;
        let tls = if options.tls {
            Some(tls::generate(&dir.join("tls"))?)
        } else {
            None
        };
        fs::write(dir.join("pwfile"), PASSWORD)?;
        if let Some(run_as) = run_as {
            run_as.chown_tree(&dir)?;
        }

        initdb(&bindir, &dir, run_as)?;
        fs::remove_file(dir.join("pwfile"))?;
        write_config(&dir, &options, tls.as_ref())?;

        // From here on the reaper of the server owns the directory and deletes it.
        let dir = tmp.keep();
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let process = spawn_postgres(&bindir, &dir, port, run_as)?;
            let mut cluster = Self {
                server: PgServer::new("127.0.0.1", port, "postgres", PASSWORD),
                dir: dir.clone(),
                tls: tls.clone(),
                process: Some(process),
            };
            match cluster.wait_ready() {
                Ok(()) => return Ok(cluster),
                Err(Startup::PortTaken) => {
                    // Keep the directory for the next attempt.
                    if let Some(process) = cluster.process.take() {
                        process.discard_exited();
                    }
                    last_error = Some(anyhow!("port {port} was taken"));
                }
                Err(Startup::Failed(err)) => {
                    let log = log_tail(&cluster.log_file());
                    cluster.stop();
                    return Err(err.context(format!("server log ends with:\n{log}")));
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_error
            .unwrap_or_else(|| anyhow!("no attempt made"))
            .context("could not find a free port"))
    }

    /// Polls until the server accepts a password login, or fails, or time runs out.
    fn wait_ready(&mut self) -> Result<(), Startup> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.server.url("postgres");
        loop {
            if let Some(process) = self.process.as_mut() {
                if let Some(status) = process.try_wait() {
                    let log = fs::read_to_string(self.log_file()).unwrap_or_default();
                    if log.contains("could not bind") || log.contains("Address already in use") {
                        return Err(Startup::PortTaken);
                    }
                    return Err(Startup::Failed(anyhow!("postgres exited with {status}")));
                }
            }
            let probe = block_on(async {
                let client = connect(&url).await?;
                client
                    .query_opt(
                        "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'",
                        &[],
                    )
                    .await
            });
            match probe {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {
                    return Err(Startup::Failed(anyhow!(
                        "the pgvector extension is not installed for this PostgreSQL \
                         (no vector.control): run scripts/setup-postgres.sh"
                    )))
                }
                Err(err) if Instant::now() >= deadline => {
                    return Err(Startup::Failed(anyhow!(
                        "postgres did not accept connections within {READY_TIMEOUT:?}: {err}"
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Deref for PgCluster {
    type Target = PgServer;

    fn deref(&self) -> &PgServer {
        &self.server
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Startup {
    PortTaken,
    Failed(anyhow::Error),
}

/// Path of PostgreSQL program `name` (`psql`, `pg_dump`, …) from the same installation as the
/// servers the testkit starts.
///
/// # Panics
/// When PostgreSQL is not installed (the message says what to run).
pub fn pg_program(name: &str) -> PathBuf {
    pg_bindir()
        .unwrap_or_else(|err| panic!("{err:#}"))
        .join(name)
}

/// The PostgreSQL `bin` directory: `$RAGSHIFT_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir` from `PATH`.
pub(crate) fn pg_bindir() -> anyhow::Result<PathBuf> {
    let usable = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = env::var(env::PG_BINDIR) {
        let dir = PathBuf::from(dir);
        if !usable(&dir) {
            bail!(
                "{}={} has no postgres and initdb",
                env::PG_BINDIR,
                dir.display()
            );
        }
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| usable(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && usable(&dir) {
            return Ok(dir);
        }
    }
    bail!(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/<version>/bin): \
         run scripts/setup-postgres.sh, or set {} to a bin directory with postgres and initdb",
        env::PG_BINDIR
    )
}

fn initdb(bindir: &Path, dir: &Path, run_as: Option<RunAs>) -> anyhow::Result<()> {
    let mut command = Command::new(bindir.join("initdb"));
    command
        .arg("--pgdata")
        .arg(dir.join("data"))
        .args(["--username", "postgres", "--auth", "scram-sha-256"])
        .arg(format!("--pwfile={}", dir.join("pwfile").display()))
        .args([
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ])
        .current_dir(dir)
        .stdin(Stdio::null());
    if let Some(run_as) = run_as {
        run_as.apply(&mut command);
    }
    let out = command
        .output()
        .with_context(|| format!("could not run {}", bindir.join("initdb").display()))?;
    if !out.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Appends the testkit's settings, then the caller's, to `postgresql.conf`.
fn write_config(dir: &Path, options: &PgOptions, tls: Option<&TlsFiles>) -> anyhow::Result<()> {
    let path = |p: &Path| p.display().to_string();
    let mut settings: Vec<(String, String)> = [
        ("listen_addresses", "127.0.0.1".to_owned()),
        ("unix_socket_directories", path(&dir.join("sock"))),
        ("max_connections", "200".to_owned()),
        ("fsync", "off".to_owned()),
        ("synchronous_commit", "off".to_owned()),
        ("full_page_writes", "off".to_owned()),
        ("logging_collector", "off".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if options.logical {
        for (k, v) in [
            ("wal_level", "logical"),
            ("max_replication_slots", "20"),
            ("max_wal_senders", "20"),
        ] {
            settings.push((k.to_owned(), v.to_owned()));
        }
    }
    if let Some(tls) = tls {
        settings.push(("ssl".to_owned(), "on".to_owned()));
        settings.push(("ssl_cert_file".to_owned(), path(&tls.server_cert)));
        settings.push(("ssl_key_file".to_owned(), path(&tls.server_key)));
    }
    settings.extend(options.settings.iter().cloned());

    let mut text = String::from("\n# Added by ragshift-testkit\n");
    for (name, value) in settings {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    let conf = dir.join("data").join("postgresql.conf");
    OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", conf.display()))
}

fn spawn_postgres(
    bindir: &Path,
    dir: &Path,
    port: u16,
    run_as: Option<RunAs>,
) -> anyhow::Result<Supervised> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("postgres.log"))
        .context("opening the server log")?;
    let mut command = Command::new(bindir.join("postgres"));
    command
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-c")
        .arg(format!("port={port}"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(run_as) = run_as {
        run_as.apply(&mut command);
    }
    // SIGQUIT is PostgreSQL's immediate shutdown.
    Supervised::spawn(command, "QUIT", Some(dir.to_path_buf()))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = File::open(path)
        .ok()
        .and_then(|f| std::io::read_to_string(f).ok())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
