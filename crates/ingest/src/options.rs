//! The knobs of ingestion, as one plain struct the CLI fills from its configuration.
//!
//! No parsing here: the CLI maps its config file and flags onto [`IngestOptions`], whose
//! [`Default`] is safe for a worker running next to a cloud metadata service.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

pub use ipnet::IpNet;

/// Limits and policies for loading sources. Every field has a safe default.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Addresses and host names that may be fetched even though they are loopback, private,
    /// link-local, unique-local or unspecified. Empty by default: only public addresses.
    pub allow: AllowList,
    /// Fixed answers for host names, consulted before the system resolver and still subject to
    /// the address rules (tests use it for "a name that resolves to a private address";
    /// operators can pin names). Keys are lower-case host names.
    pub dns_overrides: HashMap<String, Vec<IpAddr>>,
    /// Time allowed to establish a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub request_timeout: Duration,
    /// Largest response body or in-memory document accepted, in bytes (after decompression).
    pub max_body_bytes: u64,
    /// Largest local file or stream accepted for formats that must be read whole (PDF, Office,
    /// HTML, JSON). Plain text, Markdown and CSV are streamed and have no cap.
    pub max_document_bytes: u64,
    /// Redirects followed per request; each hop is checked against the address rules again.
    pub max_redirects: usize,
    /// Pages taken from one sitemap (index included) per bot; the rest are reported as skipped.
    pub sitemap_page_cap: usize,
    /// Child sitemaps fetched from one sitemap index.
    pub sitemap_max_children: usize,
    /// Pages fetched at the same time while expanding a sitemap.
    pub fetch_concurrency: usize,
    /// Chunks per batch handed to the next stage.
    pub batch_size: usize,
    /// The `User-Agent` header of every request.
    pub user_agent: String,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            allow: AllowList::default(),
            dns_overrides: HashMap::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 64 * 1024 * 1024,
            max_document_bytes: 512 * 1024 * 1024,
            max_redirects: 5,
            sitemap_page_cap: 1000,
            sitemap_max_children: 100,
            fetch_concurrency: 4,
            batch_size: 64,
            user_agent: default_user_agent(),
        }
    }
}

/// `ragshift/<version>`, so site owners can tell who is crawling them.
pub fn default_user_agent() -> String {
    format!("ragshift/{}", env!("CARGO_PKG_VERSION"))
}

/// Exceptions to the address rules: networks and host names that may be fetched although they
/// are not public. Meant for tests on loopback and for deliberate intranet crawling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Networks whose addresses are allowed (`127.0.0.0/8`, `10.1.0.0/16`, a single `/32`).
    pub nets: Vec<IpNet>,
    /// Host names allowed whatever they resolve to (compared case-insensitively).
    pub hosts: Vec<String>,
}

impl AllowList {
    /// An allow-list that opens the loopback networks only (what tests need).
    pub fn loopback() -> Self {
        Self {
            nets: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            hosts: Vec::new(),
        }
    }

    /// Whether `ip` is inside one of the allowed networks.
    pub fn allows_addr(&self, ip: IpAddr) -> bool {
        let ip = crate::ssrf::canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether `host` is one of the allowed host names.
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}
