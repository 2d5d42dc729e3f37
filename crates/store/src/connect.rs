//! Opening connections: from a `postgres://` URL (or libpq key/value string) or from the parts of
//! a Secrets Manager secret, with libpq's `sslmode`/`sslrootcert` honoured even though
//! tokio-postgres itself only knows `disable`/`prefer`/`require`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ragshift_config::{Sensitive, SslMode};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::error::db_message;
use crate::{tls, StoreError, StoreErrorKind};

/// Connection parameters as held in the platform's database secret.
#[derive(Debug, Clone)]
pub struct DbSecretParts {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// Password (never printed).
    pub password: Sensitive,
    /// Database name.
    pub dbname: String,
}

/// Everything needed to open a connection, and a masked label for messages.
#[derive(Clone)]
pub struct ConnectSpec {
    config: tokio_postgres::Config,
    sslmode: SslMode,
    root_cert: Option<PathBuf>,
    label: String,
}

impl std::fmt::Debug for ConnectSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSpec")
            .field("server", &self.label)
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

impl ConnectSpec {
    /// Parses a `postgres://` URL or a libpq key/value string. `sslmode`/`sslrootcert` given
    /// here override those in the string.
    pub fn from_url(
        url: &str,
        sslmode: Option<SslMode>,
        root_cert: Option<&Path>,
    ) -> Result<Self, StoreError> {
        let (stripped, url_mode, url_root) = strip_tls_params(url)?;
        let config = tokio_postgres::Config::from_str(&stripped).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Config,
                format!(
                    "invalid connection string {}: {e}; expected postgres://user:password@host:port/dbname",
                    ragshift_config::mask_url(url)
                ),
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(StoreError::new(
                StoreErrorKind::Config,
                format!(
                    "connection string {} names no host",
                    ragshift_config::mask_url(url)
                ),
            ));
        }
        let root_cert = root_cert.map(Path::to_path_buf).or(url_root);
        let sslmode = sslmode
            .or(url_mode)
            .unwrap_or_else(|| default_sslmode(&config));
        Ok(Self::finish(config, sslmode, root_cert))
    }

    /// Builds a spec from a secret's parts (the platform's `host`/`port`/`username`/`password`/
    /// `dbname`).
    pub fn from_parts(
        parts: &DbSecretParts,
        sslmode: Option<SslMode>,
        root_cert: Option<&Path>,
    ) -> Self {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&parts.host)
            .port(parts.port)
            .user(&parts.username)
            .password(parts.password.expose())
            .dbname(&parts.dbname);
        let sslmode = sslmode.unwrap_or_else(|| default_sslmode(&config));
        Self::finish(config, sslmode, root_cert.map(Path::to_path_buf))
    }

    fn finish(mut config: tokio_postgres::Config, sslmode: SslMode, root: Option<PathBuf>) -> Self {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let label = label_of(&config);
        Self {
            config,
            sslmode,
            root_cert: root,
            label,
        }
    }

    /// The server as shown to users: `postgres://user:****@host:port/db`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("postgres")
    }

    /// The user name.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }

    /// The effective `sslmode`.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The same server with another database (for creating databases, or replication).
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut config = self.config.clone();
        config.dbname(dbname);
        Self::finish(config, self.sslmode, self.root_cert.clone())
    }

    /// The same server with TCP keepalives probing after `idle` of silence, every `idle / 3`,
    /// three times: a connection that must stay up for a long, mostly idle run (the target
    /// lock's) notices within about `2 × idle` that the network or the server is gone.
    pub fn with_keepalives(&self, idle: Duration) -> Self {
        let mut config = self.config.clone();
        config
            .keepalives(true)
            .keepalives_idle(idle)
            .keepalives_interval((idle / 3).max(Duration::from_secs(1)))
            .keepalives_retries(3);
        Self::finish(config, self.sslmode, self.root_cert.clone())
    }

    /// The same credentials, database and TLS settings at another address: how another machine
    /// (the target server, for a subscription) reaches this server when ragshift reaches it
    /// through a tunnel or another network. `port` `None` keeps this one's.
    pub fn with_address(&self, host: &str, port: Option<u16>) -> Self {
        let old = &self.config;
        let mut config = tokio_postgres::Config::new();
        config.host(host);
        if let Some(p) = port.or_else(|| old.get_ports().first().copied()) {
            config.port(p);
        }
        if let Some(u) = old.get_user() {
            config.user(u);
        }
        if let Some(pw) = old.get_password() {
            config.password(pw);
        }
        if let Some(d) = old.get_dbname() {
            config.dbname(d);
        }
        if let Some(t) = old.get_connect_timeout() {
            config.connect_timeout(*t);
        }
        Self::finish(config, self.sslmode, self.root_cert.clone())
    }

    /// A libpq connection string for this server, password included, for the rare place the
    /// server itself must connect (a subscription's `CONNECTION`). Never log it.
    pub fn libpq_conninfo(&self) -> Sensitive {
        let mut parts = Vec::new();
        if let Some(Host::Tcp(h)) = self.config.get_hosts().first() {
            parts.push(format!("host={}", conninfo_value(h)));
        }
        if let Some(p) = self.config.get_ports().first() {
            parts.push(format!("port={p}"));
        }
        parts.push(format!("user={}", conninfo_value(self.user())));
        if let Some(pw) = self.config.get_password() {
            parts.push(format!(
                "password={}",
                conninfo_value(&String::from_utf8_lossy(pw))
            ));
        }
        parts.push(format!("dbname={}", conninfo_value(self.dbname())));
        let mode = match self.sslmode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        };
        parts.push(format!("sslmode={mode}"));
        if let Some(root) = &self.root_cert {
            parts.push(format!(
                "sslrootcert={}",
                conninfo_value(&root.display().to_string())
            ));
        }
        Sensitive::new(parts.join(" "))
    }
}

/// Whether `host` is an Amazon RDS or Aurora endpoint (`*.rds.amazonaws.com`, and
/// `*.rds.amazonaws.com.cn` in the China regions).
pub fn is_rds_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host.ends_with(".rds.amazonaws.com") || host.ends_with(".rds.amazonaws.com.cn")
}

/// The `sslmode` when none is set: `require` for RDS/Aurora endpoints, which always offer TLS
/// (a `prefer` connection would silently go unencrypted if TLS failed), else libpq's `prefer`.
/// For RDS, `verify-full` with AWS's CA bundle is better still, and the log says so.
fn default_sslmode(config: &tokio_postgres::Config) -> SslMode {
    let rds = config.get_hosts().iter().find_map(|h| match h {
        Host::Tcp(name) if is_rds_host(name) => Some(name.clone()),
        _ => None,
    });
    match rds {
        Some(host) => {
            tracing::info!(
                "{host} is an RDS/Aurora endpoint and no sslmode is set: using sslmode=require; \
                 verify-full with AWS's RDS CA bundle is recommended (download global-bundle.pem \
                 from https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem and set \
                 ?sslmode=verify-full&sslrootcert=/path/global-bundle.pem or [target]/[source] \
                 sslmode and sslrootcert)"
            );
            SslMode::Require
        }
        None => SslMode::Prefer,
    }
}

fn conninfo_value(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn label_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let pw = if config.get_password().is_some() {
        ":****"
    } else {
        ""
    };
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}{pw}@{host}:{port}/{db}")
}

type TlsParams = (String, Option<SslMode>, Option<PathBuf>);

/// Removes `sslmode` and `sslrootcert` from a connection string, returning them parsed.
fn strip_tls_params(s: &str) -> Result<TlsParams, StoreError> {
    let bad_mode = |v: &str| {
        StoreError::new(
            StoreErrorKind::Config,
            format!(
                "unknown sslmode {v:?}: use disable, prefer, require, verify-ca or verify-full"
            ),
        )
    };
    let mut mode = None;
    let mut root = None;
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        // A password may hold unencoded `#?/@:`: encode it before a strict parser sees it.
        let encoded = ragshift_config::conninfo::encode_userinfo(s);
        let mut url = url::Url::parse(&encoded).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Config,
                format!("invalid URL {}: {e}", ragshift_config::mask_url(s)),
            )
        })?;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" => mode = Some(SslMode::parse(&v).ok_or_else(|| bad_mode(&v))?),
                "sslrootcert" => root = Some(PathBuf::from(v.as_ref())),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        return Ok((url.to_string(), mode, root));
    }
    let pairs = ragshift_config::conninfo::parse_keyvalue(s).ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Config,
            format!(
                "invalid connection string {}: expected postgres://user:password@host:port/dbname or key=value pairs (quote values with spaces: password='a b')",
                ragshift_config::mask_url(s)
            ),
        )
    })?;
    let mut kept = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "sslmode" => mode = Some(SslMode::parse(&v).ok_or_else(|| bad_mode(&v))?),
            "sslrootcert" => root = Some(PathBuf::from(v)),
            _ => kept.push(format!("{k}={}", conninfo_value(&v))),
        }
    }
    Ok((kept.join(" "), mode, root))
}

/// Opens a connection, naming it `application_name` in `pg_stat_activity`. Errors say which
/// server (password masked) and what to check.
pub async fn connect(spec: &ConnectSpec, application_name: &str) -> Result<Client, StoreError> {
    let mut config = spec.config.clone();
    config.application_name(application_name);
    config.ssl_mode(match spec.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let connector = tls::connector(spec.sslmode, spec.root_cert.as_deref())?;
    match config.connect(connector).await {
        Ok((client, connection)) => {
            let label = spec.label.clone();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(server = %label, error = %e, "connection closed with an error");
                }
            });
            Ok(client)
        }
        Err(e) => Err(connect_error(spec, e)),
    }
}

fn connect_error(spec: &ConnectSpec, e: tokio_postgres::Error) -> StoreError {
    let label = &spec.label;
    let (kind, message) = match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => (
            StoreErrorKind::Auth,
            format!(
                "{label}: the server refused user \"{}\" ({}); check the user name and password in the URL or secret",
                spec.user(),
                db_message(&e)
            ),
        ),
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => (
            StoreErrorKind::Config,
            format!(
                "{label}: database \"{}\" does not exist; create it or fix the database name",
                spec.dbname()
            ),
        ),
        Some(_) => (StoreErrorKind::Connect, format!("{label}: {}", db_message(&e))),
        None => (
            StoreErrorKind::Connect,
            format!(
                "cannot connect to {label}: {}; check the host and port, that the server is running and reachable, and sslmode/sslrootcert (sslmode is {:?})",
                db_message(&e),
                spec.sslmode
            ),
        ),
    };
    StoreError::new(kind, message).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_are_taken_out_of_urls_and_keyvalue_strings() {
        let s = ConnectSpec::from_url(
            "postgres://u:pw@db.example:6543/rag?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3",
            None,
            None,
        )
        .unwrap();
        assert_eq!(s.sslmode(), SslMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(s.label(), "postgres://u:****@db.example:6543/rag");

        let s = ConnectSpec::from_url(
            "host=h port=5433 user=u password=pw dbname=d sslmode=require",
            Some(SslMode::Disable),
            None,
        )
        .unwrap();
        assert_eq!(s.sslmode(), SslMode::Disable, "explicit setting wins");
        assert_eq!(s.label(), "postgres://u:****@h:5433/d");
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        let e = ConnectSpec::from_url("postgres://u:hunter2@h/d?sslmode=sometimes", None, None)
            .unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Config);
        assert!(e.to_string().contains("sometimes"));
        let e = ConnectSpec::from_url("postgres://u:hunter2@h:notaport/d", None, None).unwrap_err();
        assert_eq!(e.kind(), StoreErrorKind::Config);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn rds_and_aurora_endpoints_require_tls_unless_told_otherwise() {
        for host in [
            "mydb.abc123xyz.eu-west-1.rds.amazonaws.com",
            "cluster.cluster-abc.us-east-1.rds.amazonaws.com",
            "proxy.proxy-abc.cn-north-1.rds.amazonaws.com.cn",
            "MyDB.ABC.eu-west-1.RDS.amazonaws.com.",
        ] {
            assert!(is_rds_host(host), "{host}");
            let s =
                ConnectSpec::from_url(&format!("postgres://u:pw@{host}/db"), None, None).unwrap();
            assert_eq!(s.sslmode(), SslMode::Require, "{host}");
            let parts = DbSecretParts {
                host: host.into(),
                port: 5432,
                username: "u".into(),
                password: Sensitive::new("pw"),
                dbname: "db".into(),
            };
            assert_eq!(
                ConnectSpec::from_parts(&parts, None, None).sslmode(),
                SslMode::Require
            );
            // An explicit choice, in the URL or the configuration, is kept.
            let s = ConnectSpec::from_url(
                &format!("postgres://u:pw@{host}/db?sslmode=disable"),
                None,
                None,
            )
            .unwrap();
            assert_eq!(s.sslmode(), SslMode::Disable);
            let s = ConnectSpec::from_url(
                &format!("postgres://u:pw@{host}/db"),
                Some(SslMode::VerifyFull),
                None,
            )
            .unwrap();
            assert_eq!(s.sslmode(), SslMode::VerifyFull);
            assert_eq!(
                ConnectSpec::from_parts(&parts, Some(SslMode::Prefer), None).sslmode(),
                SslMode::Prefer
            );
        }
        for host in [
            "db.example.com",
            "rds.amazonaws.com.evil.example",
            "notrds.amazonaws.com",
            "127.0.0.1",
        ] {
            assert!(!is_rds_host(host), "{host}");
            let s =
                ConnectSpec::from_url(&format!("postgres://u:pw@{host}/db"), None, None).unwrap();
            assert_eq!(s.sslmode(), SslMode::Prefer, "{host}");
        }
    }

    #[test]
    fn unencoded_passwords_connect_as_written_and_stay_masked() {
        let s = ConnectSpec::from_url(
            "postgres://app:pa#ss?wo/r@d:x@db.example:5433/rag?sslmode=require",
            None,
            None,
        )
        .unwrap();
        assert_eq!(s.config.get_password(), Some("pa#ss?wo/r@d:x".as_bytes()));
        assert_eq!(s.sslmode(), SslMode::Require);
        assert_eq!(s.label(), "postgres://app:****@db.example:5433/rag");

        let s = ConnectSpec::from_url(
            "host=h port = 5433 user=u password='a b#?' dbname=d",
            None,
            None,
        )
        .unwrap();
        assert_eq!(s.config.get_password(), Some("a b#?".as_bytes()));
        assert_eq!(s.label(), "postgres://u:****@h:5433/d");

        for bad in [
            "postgres://app:Sup3rS3cretPw@127.0.0.1:99999/db?sslmode=disable",
            "postgres://app:Sup3rS3cretPw@h:port/db?sslmode=require",
            "host=h password='Sup3rS3cretPw",
            "host=h password=Sup3rS3cretPw nonsense",
        ] {
            let e = ConnectSpec::from_url(bad, None, None).unwrap_err();
            assert_eq!(e.kind(), StoreErrorKind::Config, "{bad}");
            assert!(!e.to_string().contains("Sup3rS3cretPw"), "{e}");
            assert!(!format!("{e:?}").contains("Sup3rS3cretPw"), "{e:?}");
        }
    }

    #[test]
    fn secret_parts_build_a_masked_spec() {
        let parts = DbSecretParts {
            host: "aurora.example".into(),
            port: 5432,
            username: "postgres".into(),
            password: Sensitive::new("hunter2"),
            dbname: "postgres".into(),
        };
        let s = ConnectSpec::from_parts(&parts, Some(SslMode::Require), None);
        assert_eq!(
            s.label(),
            "postgres://postgres:****@aurora.example:5432/postgres"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(s.libpq_conninfo().expose().contains("password='hunter2'"));
        assert!(!s.libpq_conninfo().to_string().contains("hunter2"));
    }
}
