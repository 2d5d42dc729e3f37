//! PostgreSQL errors classified for [`Policy`](crate::Policy): by SQLSTATE when the server sent
//! one, by the error's kind (closed connection, I/O) when it didn't.

use crate::Verdict;

/// SQLSTATEs that a new attempt (on a new connection where needed) can get past: the server shut
/// down or restarted (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now: an
/// Aurora failover), too many connections (53300), serialization failure (40001) and deadlock
/// (40P01). Class 08 (connection exceptions) is added by [`classify`].
pub const RETRYABLE_SQLSTATES: [&str; 5] = ["57P01", "57P02", "57P03", "53300", "40001"];

/// Deadlock detected: the victim may simply run again.
const DEADLOCK: &str = "40P01";

/// Whether retrying an operation that failed with `e` can succeed.
pub fn classify(e: &tokio_postgres::Error) -> Verdict {
    if let Some(code) = e.code() {
        let code = code.code();
        return if code.starts_with("08") || code == DEADLOCK || RETRYABLE_SQLSTATES.contains(&code)
        {
            Verdict::Retry
        } else {
            Verdict::Fail
        };
    }
    if e.is_closed() || has_io_source(e) {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

/// Whether the connection broke under the operation, so that a COMMIT sent on it may or may not
/// have taken effect: the caller must look (e.g. at the journal) before doing the work again.
pub fn outcome_unknown(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => code.code().starts_with("08") || code.code().starts_with("57P"),
        None => e.is_closed() || has_io_source(e),
    }
}

fn has_io_source(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real I/O failure: connecting to a port nobody listens on.
    #[tokio::test]
    async fn a_refused_connection_is_retryable_with_an_unknown_outcome() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let err = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=x connect_timeout=5"),
            tokio_postgres::NoTls,
        )
        .await
        .err()
        .expect("nobody listens there");
        assert_eq!(classify(&err), Verdict::Retry, "{err:?}");
        assert!(outcome_unknown(&err));
    }
}
