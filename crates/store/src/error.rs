//! One error type for the store, with a kind callers branch on (never on message text).

use std::fmt;

/// What went wrong, for deciding exit codes and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The connection settings can't be used (bad URL, unreadable CA file).
    Config,
    /// The server could not be reached, or TLS failed.
    Connect,
    /// The server refused the user or password.
    Auth,
    /// The user lacks a privilege the step needs.
    Permission,
    /// pgvector isn't installed on the server.
    MissingExtension,
    /// The table exists with another shape.
    ShapeMismatch,
    /// The table's vector dimension differs from the embedder's.
    DimensionMismatch,
    /// Another run holds the target lock, or a statement gave up waiting for a table lock.
    Locked,
    /// The run's target lock was lost (its connection or backend died): the run must stop.
    LockLost,
    /// The data given can't be written (wrong dimension, bad id).
    InvalidData,
    /// A statement failed.
    Query,
}

/// A store error: a kind, a message that names the server/table and says what to do, and the
/// underlying database error when there is one.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    source: Option<tokio_postgres::Error>,
}

impl StoreError {
    /// A new error without an underlying cause.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A failed statement, with context saying what was being done.
    pub fn query(context: impl fmt::Display, e: tokio_postgres::Error) -> Self {
        let kind = match e.code() {
            Some(c) if *c == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => {
                StoreErrorKind::Permission
            }
            _ => StoreErrorKind::Query,
        };
        Self {
            kind,
            message: format!("{context}: {}", db_message(&e)),
            source: Some(e),
        }
    }

    /// The database error inside, or the error itself when there is none (to look at a
    /// statement's failure again, e.g. to name who held a lock).
    pub fn into_source(self) -> Result<tokio_postgres::Error, Self> {
        match self.source {
            Some(e) => Ok(e),
            None => Err(self),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The SQLSTATE of the underlying database error, if any.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.source.as_ref().and_then(|e| e.code())
    }

    /// Whether retrying the same work could succeed (lost connection, serialization failure,
    /// deadlock, server shutting down).
    pub fn is_transient(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match &self.source {
            Some(e) if e.is_closed() => true,
            Some(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::CONNECTION_FAILURE
            ),
            None => self.kind == StoreErrorKind::Connect,
        }
    }

    /// What the one retry policy should do after this error: by the database error inside
    /// it, else by its kind (a connection that could not be opened is worth another try; a
    /// lost lock, bad settings or refused credentials are not).
    pub fn retry_verdict(&self) -> ragshift_retry::Verdict {
        use ragshift_retry::Verdict;
        match (self.kind, &self.source) {
            (StoreErrorKind::LockLost | StoreErrorKind::Auth | StoreErrorKind::Config, _) => {
                Verdict::Fail
            }
            (_, Some(pg)) => ragshift_retry::pg::classify(pg),
            (StoreErrorKind::Connect, None) => Verdict::Retry,
            _ => Verdict::Fail,
        }
    }

    pub(crate) fn with_source(mut self, e: tokio_postgres::Error) -> Self {
        self.source = Some(e);
        self
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The server's own message for a database error (with detail/hint), else the client error.
pub(crate) fn db_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = db.message().to_owned();
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(inner) = cur {
        s.push_str(&format!(": {inner}"));
        cur = inner.source();
    }
    s
}
