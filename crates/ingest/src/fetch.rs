//! Fetching URL sources over HTTP(S): rustls only, a `ragshift/<version>` User-Agent, connect
//! and whole-request timeouts, a cap on the body size (checked while streaming, after
//! decompression), a redirect limit, no proxies from the environment (they would bypass the
//! address rules), and the address rules of [`crate::ssrf`] on the first request and on every
//! redirect hop.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::redirect::{Attempt, Policy};
use url::Url;

use crate::error::{BlockedAddress, ErrorKind, RedirectRefused};
use crate::options::IngestOptions;
use crate::ssrf::{check_url, AddressPolicy, SsrfResolver, UrlRefused};

/// A fetched response body with what the loaders need to know about it.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL after redirects.
    pub final_url: String,
    /// The response's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body, decompressed, at most `max_body_bytes` long.
    pub bytes: Bytes,
}

/// An HTTP client that only reaches addresses the policy allows.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    max_body_bytes: u64,
    request_timeout: Duration,
    max_redirects: usize,
}

impl Fetcher {
    /// Builds the client from the options.
    pub fn new(opts: &IngestOptions) -> Result<Self, ErrorKind> {
        let policy = Arc::new(AddressPolicy::new(
            opts.allow.clone(),
            opts.dns_overrides.clone(),
        ));
        let redirect_policy = {
            let policy = Arc::clone(&policy);
            let max = opts.max_redirects;
            Policy::custom(move |attempt: Attempt<'_>| {
                if attempt.previous().len() > max {
                    return attempt.error(RedirectRefused::TooMany(max));
                }
                match check_url(&policy, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(UrlRefused::Blocked(b)) => attempt.error(b),
                    Err(_) => {
                        let url = attempt.url().to_string();
                        attempt.error(RedirectRefused::Scheme(url))
                    }
                }
            })
        };
        let client = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .redirect(redirect_policy)
            .dns_resolver(SsrfResolver::new(Arc::clone(&policy)))
            .no_proxy()
            .build()
            .map_err(|e| ErrorKind::Network {
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            policy,
            max_body_bytes: opts.max_body_bytes,
            request_timeout: opts.request_timeout,
            max_redirects: opts.max_redirects,
        })
    }

    /// GETs `url` and returns its body, or the reason it could not.
    pub async fn get(&self, url: &str) -> Result<Fetched, ErrorKind> {
        let parsed = Url::parse(url).map_err(|e| ErrorKind::InvalidUrl {
            detail: format!("{url:?}: {e}"),
        })?;
        match check_url(&self.policy, &parsed) {
            Ok(()) => {}
            Err(UrlRefused::Blocked(b)) => return Err(blocked(&b)),
            Err(other) => {
                return Err(ErrorKind::InvalidUrl {
                    detail: other.to_string(),
                })
            }
        }
        let mut response = self
            .client
            .get(parsed)
            .header(
                reqwest::header::ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .send()
            .await
            .map_err(|e| self.classify(&e))?;
        let status = response.status();
        if status.is_redirection() {
            // reqwest hands back redirects it will not follow (to file:, ftp: ...).
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere");
            return Err(ErrorKind::InvalidUrl {
                detail: format!("redirected to {location:?}, which cannot be followed"),
            });
        }
        if !status.is_success() {
            return Err(ErrorKind::HttpStatus {
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body_bytes)
        {
            return Err(ErrorKind::TooLarge {
                limit: self.max_body_bytes,
            });
        }
        let final_url = response.url().to_string();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = BytesMut::new();
        while let Some(piece) = response.chunk().await.map_err(|e| self.classify(&e))? {
            if (body.len() + piece.len()) as u64 > self.max_body_bytes {
                return Err(ErrorKind::TooLarge {
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&piece);
        }
        Ok(Fetched {
            final_url,
            content_type,
            bytes: body.freeze(),
        })
    }

    /// Maps a client error to a kind, looking through its causes for the address check's and
    /// the redirect policy's own errors (typed, not by message).
    fn classify(&self, err: &reqwest::Error) -> ErrorKind {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cause {
            if let Some(b) = e.downcast_ref::<BlockedAddress>() {
                return blocked(b);
            }
            if let Some(r) = e.downcast_ref::<RedirectRefused>() {
                return match r {
                    RedirectRefused::TooMany(_) => ErrorKind::TooManyRedirects {
                        max: self.max_redirects,
                    },
                    RedirectRefused::Scheme(url) => ErrorKind::InvalidUrl {
                        detail: format!("redirected to a non-http(s) URL {url}"),
                    },
                };
            }
            cause = e.source();
        }
        if err.is_timeout() {
            return ErrorKind::Timeout {
                after: self.request_timeout,
            };
        }
        let mut detail = err.to_string();
        let mut cause = err.source();
        while let Some(e) = cause {
            detail.push_str(": ");
            detail.push_str(&e.to_string());
            cause = e.source();
        }
        ErrorKind::Network { detail }
    }
}

fn blocked(b: &BlockedAddress) -> ErrorKind {
    ErrorKind::Blocked {
        host: b.host.clone(),
        addr: b.addr.to_string(),
        reason: b.reason.to_owned(),
    }
}

/// Whether `url` points at YouTube, whose transcripts the platform used but which cannot be
/// fetched from here.
pub fn is_youtube(url: &str) -> bool {
    let Ok(u) = Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    matches!(
        host,
        "youtube.com" | "m.youtube.com" | "music.youtube.com" | "youtu.be" | "youtube-nocookie.com"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_youtube_urls() {
        assert!(is_youtube("https://www.youtube.com/watch?v=dQw4w9WgXcQ"));
        assert!(is_youtube("https://youtu.be/dQw4w9WgXcQ"));
        assert!(is_youtube("https://M.YouTube.com/watch?v=x"));
        assert!(!is_youtube("https://notyoutube.com/watch"));
        assert!(!is_youtube("not a url"));
    }
}
