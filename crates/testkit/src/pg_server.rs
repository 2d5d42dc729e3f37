//! A PostgreSQL server that tests talk to — one this process started ([`PgCluster`]) or one
//! shared by the whole test run — and the per-test databases they create on it.
//!
//! [`PgCluster`]: crate::PgCluster

use std::fmt;

use anyhow::{bail, Context as _};
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use crate::block::block_on;
use crate::names::unique_name;

/// Where a PostgreSQL server listens and how to log in to it as superuser.
///
/// Its `Debug` output hides the password.
#[derive(Clone)]
pub struct PgServer {
    host: String,
    port: u16,
    user: String,
    password: String,
}

impl PgServer {
    pub(crate) fn new(host: &str, port: u16, user: &str, password: &str) -> Self {
        Self {
            host: host.to_owned(),
            port,
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// A server described by a URL such as `postgres://postgres:secret@127.0.0.1:5432/`
    /// (the database part is ignored), as found in `RAGSHIFT_TEST_PG_URL`.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .with_context(|| format!("not a PostgreSQL URL: {}", redact(url)))?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            _ => bail!("{} must name a TCP host", redact(url)),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        Ok(Self {
            host,
            port,
            user,
            password,
        })
    }

    /// URL of database `db`: `postgres://postgres:PASSWORD@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}",
            encode(&self.user),
            encode(&self.password),
            self.host,
            self.port,
            encode(db)
        )
    }

    /// The host the server listens on (`127.0.0.1` for clusters the testkit starts).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name (`postgres`).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The superuser's password (authentication is `scram-sha-256`, so a wrong one fails).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Creates database `name` and returns its URL.
    ///
    /// # Panics
    /// When the database cannot be created (it exists already, the server is down…).
    pub fn create_database(&self, name: &str) -> String {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        let admin_url = self.url("postgres");
        block_on(async {
            let client = connect(&admin_url).await?;
            client.batch_execute(&sql).await?;
            anyhow::Ok(())
        })
        .unwrap_or_else(|err| {
            panic!(
                "could not create database {name} on {}: {err:#}",
                self.endpoint()
            )
        });
        self.url(name)
    }

    /// Creates a database with a new unique name starting with `prefix` (see
    /// [`unique_name`]) and returns its URL; each test should use its own.
    ///
    /// # Panics
    /// When the database cannot be created.
    pub fn fresh_database(&self, prefix: &str) -> String {
        self.create_database(&unique_name(prefix))
    }

    /// Connects to `url` (one of this server's database URLs, e.g. from
    /// [`fresh_database`](Self::fresh_database)), driving the connection on the current tokio
    /// runtime; for tests' own setup and assertions.
    ///
    /// # Panics
    /// When the connection fails, or when not called inside a tokio runtime.
    pub async fn connect(&self, url: &str) -> tokio_postgres::Client {
        connect(url)
            .await
            .unwrap_or_else(|err| panic!("could not connect to {}: {err:#}", redact(url)))
    }

    /// A [fresh database](Self::fresh_database) holding what `sql` creates (a test's
    /// fixture): its URL and a client connected to it.
    ///
    /// # Panics
    /// When the database cannot be created or `sql` fails.
    pub async fn seeded_database(
        &self,
        prefix: &str,
        sql: &str,
    ) -> (String, tokio_postgres::Client) {
        let url = self.fresh_database(prefix);
        let client = self.connect(&url).await;
        if let Err(err) = client.batch_execute(sql).await {
            panic!("could not seed database {prefix}: {err}");
        }
        (url, client)
    }

    /// Runs `sql` (one or more statements) in the database at `url` on a connection of its
    /// own: a fixture's setup or a change behind the back of the code under test.
    ///
    /// # Panics
    /// When the connection or `sql` fails.
    pub async fn execute(&self, url: &str, sql: &str) {
        if let Err(err) = self.connect(url).await.batch_execute(sql).await {
            panic!("{sql}: {err}");
        }
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `s` with every byte but ASCII letters and digits percent-encoded: a password as a URL's
/// user information must carry it, and a form tests look for in output as well as the plain one.
pub fn percent_encoded(s: &str) -> String {
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

/// Connects without TLS and drives the connection on the current runtime.
pub(crate) async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // The connection ends with an error when the server goes away: nothing to do then.
        let _ = connection.await;
    });
    Ok(client)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for URL user info and path.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `url` with the password (between the scheme's `user:` and `@`) replaced by `***`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_round_trips_and_encodes() {
        let server = PgServer::new("127.0.0.1", 5433, "postgres", "p@ss:w/rd");
        let url = server.url("my db");
        assert_eq!(
            url,
            "postgres://postgres:p%40ss%3Aw%2Frd@127.0.0.1:5433/my%20db"
        );
        let parsed = PgServer::from_url(&url).expect("parse");
        assert_eq!(parsed.password(), "p@ss:w/rd");
        assert_eq!(parsed.port(), 5433);
        assert_eq!(parsed.host(), "127.0.0.1");
    }

    #[test]
    fn debug_and_errors_hide_the_password() {
        let server = PgServer::new("127.0.0.1", 1, "postgres", "hunter2");
        assert!(!format!("{server:?}").contains("hunter2"));
        assert_eq!(
            redact("postgres://postgres:hunter2@/tmp/x"),
            "postgres://postgres:***@/tmp/x"
        );
        let err = PgServer::from_url("postgres://postgres:hunter2@/var/run/x").expect_err("unix");
        assert!(!format!("{err:#}").contains("hunter2"));
    }
}
