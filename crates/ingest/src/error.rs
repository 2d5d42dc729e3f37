//! Why a source could not become chunks.
//!
//! One error type per source, [`SourceError`], carrying the source it is about and an
//! [`ErrorKind`] callers branch on (never on message text). Every message says what the owner
//! of the bot can do about it, because these messages end up in the bot's `SyncStatusReason`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// A source (file, object, URL, sitemap or sitemap page) that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {kind}")]
pub struct SourceError {
    /// The source as the bot names it (`s3://bucket/key`, the URL, or the file path).
    pub origin: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl SourceError {
    /// Pairs a failure with the source it happened to.
    pub fn new(origin: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            origin: origin.into(),
            kind,
        }
    }

    /// Whether trying the same source again later may succeed (network trouble, a busy server),
    /// as opposed to a property of the source itself (corrupt file, blocked address).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

/// The ways a source can fail, each with a message that says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The source is of a kind ragshift does not load (YouTube, images, legacy Office files).
    #[error("unsupported source: {what}")]
    Unsupported {
        /// What the source is and what to do instead.
        what: String,
    },
    /// The file or response has no bytes at all.
    #[error("the document is empty (0 bytes); upload it again or remove it from the bot")]
    Empty,
    /// The document was read but holds no text (a scanned PDF without a text layer, say).
    #[error("no text found in this {format} document{hint}")]
    NoText {
        /// The loader that found nothing.
        format: String,
        /// A hint such as "(a scanned PDF needs OCR first)".
        hint: String,
    },
    /// The bytes are not a valid document of the detected format.
    #[error("cannot read this {format} document: {detail}; re-save or re-export the file and upload it again")]
    Corrupt {
        /// The format the bytes claimed to be.
        format: String,
        /// What the parser reported.
        detail: String,
    },
    /// The source is larger than the configured cap.
    #[error("larger than the limit of {limit} bytes; raise the size limit or split the document")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The address is not one ragshift may fetch (SSRF protection).
    #[error("refused to fetch {host} ({addr}): {reason}; add it to the fetch allow-list if it is meant to be reachable")]
    Blocked {
        /// The host name or literal address of the URL.
        host: String,
        /// The address it resolved to, or the literal one.
        addr: String,
        /// Which rule refused it.
        reason: String,
    },
    /// The URL is malformed or uses a scheme other than http/https.
    #[error("invalid URL: {detail}")]
    InvalidUrl {
        /// What is wrong with it.
        detail: String,
    },
    /// The request did not finish in time.
    #[error("timed out after {}s; the server is slow or unreachable, try again later or raise the timeout", .after.as_secs_f64())]
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// The server answered with a status other than 2xx.
    #[error("the server answered HTTP {status}; check that the URL is public and still exists")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// More redirects than allowed.
    #[error("more than {max} redirects; point the bot at the final URL")]
    TooManyRedirects {
        /// The configured limit.
        max: usize,
    },
    /// Connecting, resolving or reading failed.
    #[error("network error: {detail}")]
    Network {
        /// What the HTTP client reported.
        detail: String,
    },
    /// Reading a local file or stream failed.
    #[error("read error: {detail}")]
    Io {
        /// What the operating system reported.
        detail: String,
    },
    /// A sitemap could not be parsed or listed no page.
    #[error("invalid sitemap: {detail}")]
    Sitemap {
        /// What is wrong with it.
        detail: String,
    },
    /// The bot's chunking parameters cannot be used.
    #[error("invalid chunking parameters: {detail}")]
    InvalidParams {
        /// Which parameter is wrong.
        detail: String,
    },
    /// Chunks could not be handed on because the receiver went away (the job was cancelled).
    #[error("the chunk receiver was closed before this source was finished")]
    SinkClosed,
}

impl ErrorKind {
    /// See [`SourceError::is_transient`].
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Network { .. } | Self::Io { .. } => true,
            Self::HttpStatus { status } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// A corrupt-document error for `format`.
    pub(crate) fn corrupt(format: &str, detail: impl fmt::Display) -> Self {
        Self::Corrupt {
            format: format.to_owned(),
            detail: detail.to_string(),
        }
    }

    /// An I/O error, keeping only its message (so the error stays `Clone`).
    pub(crate) fn io(err: &std::io::Error) -> Self {
        Self::Io {
            detail: err.to_string(),
        }
    }
}

/// Raised by the address check; travels through the HTTP client's error chain so that a
/// refused connection is reported as [`ErrorKind::Blocked`] and not as a network error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused to connect to {host} ({addr}): {reason}")]
pub(crate) struct BlockedAddress {
    pub(crate) host: String,
    pub(crate) addr: IpAddr,
    pub(crate) reason: &'static str,
}

/// Raised by the redirect policy when a hop leaves http/https or exceeds the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RedirectRefused {
    #[error("more than {0} redirects")]
    TooMany(usize),
    #[error("redirect to a non-http(s) URL: {0}")]
    Scheme(String),
}
