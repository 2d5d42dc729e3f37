//! moto's AWS server (DynamoDB, S3, ECS, Secrets Manager, CloudFormation…) on a loopback port,
//! from the venv that `scripts/setup-python.sh` makes.
//!
//! One server can serve many tests at once: tests keep apart by creating resources with
//! [`unique_name`](crate::unique_name)s.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use crate::env;
use crate::pg_cluster::log_tail;
use crate::process::Supervised;

/// How long a starting moto server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The region tests use against moto.
const REGION: &str = "us-east-1";

/// Where a moto server answers, and the dummy credentials and region to use with it.
#[derive(Debug, Clone)]
pub struct MotoEndpoint {
    url: String,
}

impl MotoEndpoint {
    /// An endpoint at `url`, e.g. `http://127.0.0.1:5000` (as in `RAGSHIFT_TEST_MOTO_URL`).
    pub fn from_url(url: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
        }
    }

    /// The endpoint URL to give AWS clients, e.g. `http://127.0.0.1:43117`.
    pub fn endpoint_url(&self) -> &str {
        &self.url
    }

    /// The region to use (`us-east-1`).
    pub fn region(&self) -> &'static str {
        REGION
    }

    /// Environment for an AWS SDK or the ragshift binary to talk to this server: endpoint,
    /// dummy credentials and region (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …).
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_SESSION_TOKEN", "testing".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ]
    }

    /// Environment for the ragshift binary to talk to this server: [`aws_env`](Self::aws_env)
    /// with the endpoint given as ragshift's own setting (`RAGSHIFT_AWS_ENDPOINT_URL`), so the
    /// test proves ragshift passes it on.
    pub fn ragshift_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .aws_env()
            .into_iter()
            .filter(|(k, _)| *k != "AWS_ENDPOINT_URL")
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        env.push(("RAGSHIFT_AWS_ENDPOINT_URL".into(), self.url.clone()));
        env
    }

    /// An AWS SDK configuration for this server: its endpoint, region and dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.url).await
    }
}

/// An AWS SDK configuration for the AWS-API server at `endpoint_url` (moto, or a test's own
/// loopback server): region `us-east-1` and dummy credentials.
pub async fn sdk_config(endpoint_url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

/// A moto server owned by this test process, on its own loopback port; stopped on drop.
#[derive(Debug)]
pub struct MotoServer {
    endpoint: MotoEndpoint,
    port: u16,
    log_file: PathBuf,
    process: Option<Supervised>,
}

impl MotoServer {
    /// Starts a moto server and waits until it answers HTTP.
    ///
    /// # Panics
    /// When it cannot start; the message says why and what to run.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|err| panic!("could not start moto_server: {err:#}"))
    }

    /// Starts a moto server and waits until it answers HTTP.
    pub fn try_start() -> anyhow::Result<Self> {
        let program = moto_server_path();
        if !program.is_file() {
            bail!(
                "{} not found: run scripts/setup-python.sh (or set {} to a moto_server)",
                program.display(),
                env::MOTO_SERVER
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("ragshift-moto-")
            .tempdir()
            .context("creating a temporary directory for moto")?
            .keep();
        let log_file = dir.join("moto.log");
        let log = std::fs::File::create(&log_file).context("creating the moto log")?;
        // Port 0: the server binds a port the kernel picks and logs it. A port picked here and
        // bound later could be taken in between by another test's server, which would then
        // answer for this one until it stopped.
        let mut command = Command::new(&program);
        command
            .args(["-H", "127.0.0.1", "-p", "0"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let process = match Supervised::spawn(command, "TERM", Some(dir.clone())) {
            Ok(process) => process,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(err);
            }
        };
        let mut server = Self {
            endpoint: MotoEndpoint::from_url("http://127.0.0.1:0"),
            port: 0,
            log_file,
            process: Some(process),
        };
        if let Err(err) = server.wait_ready() {
            let log = log_tail(&server.log_file);
            server.stop();
            return Err(err.context(format!("moto log ends with:\n{log}")));
        }
        Ok(server)
    }

    /// The endpoint (also reachable through `Deref`).
    pub fn endpoint(&self) -> &MotoEndpoint {
        &self.endpoint
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server; idempotent, and dropping it does the same.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.process.as_mut().and_then(Supervised::try_wait) {
                bail!("moto_server exited with {status}");
            }
            if self.port == 0 {
                match bound_port(&self.log_file) {
                    Some(port) => {
                        self.port = port;
                        self.endpoint = MotoEndpoint::from_url(&format!("http://127.0.0.1:{port}"));
                    }
                    None if Instant::now() >= deadline => {
                        bail!("moto did not say which port it bound within {READY_TIMEOUT:?}")
                    }
                    None => {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
            }
            match http_status(self.port, "/moto-api/") {
                Ok(_) => return Ok(()),
                Err(err) if Instant::now() >= deadline => {
                    return Err(err.context(format!("moto did not answer within {READY_TIMEOUT:?}")))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// The port in the server's "Running on http://127.0.0.1:PORT" line, once it is logged.
fn bound_port(log_file: &std::path::Path) -> Option<u16> {
    let log = std::fs::read_to_string(log_file).ok()?;
    let line = log.lines().find(|l| l.contains("Running on http://"))?;
    let port = line.trim().rsplit(':').next()?;
    port.trim_end_matches('/').parse().ok().filter(|p| *p != 0)
}

impl Deref for MotoServer {
    type Target = MotoEndpoint;

    fn deref(&self) -> &MotoEndpoint {
        &self.endpoint
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$RAGSHIFT_MOTO_SERVER`, or `moto_server` in the venv under `$RAGSHIFT_HOME`.
fn moto_server_path() -> PathBuf {
    env::var(env::MOTO_SERVER)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            env::ragshift_home()
                .join("venv")
                .join("bin")
                .join("moto_server")
        })
}

/// The status code of a plain `GET path` on 127.0.0.1:`port`.
fn http_status(port: u16, path: &str) -> anyhow::Result<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head)?;
    let head = String::from_utf8_lossy(&head);
    head.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP response: {head:?}"))
}
