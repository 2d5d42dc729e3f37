//! Errors of the replication commands, with a kind that decides the exit code and messages that
//! name the server (password masked) and say what to do.

use std::fmt;

use ragshift_store::StoreError;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicateErrorKind {
    /// A prerequisite is missing; nothing was created.
    Prerequisites,
    /// The settings can't work (e.g. source and target tables named differently).
    Config,
    /// No replication is recorded on the target.
    NotStarted,
    /// A replication is already running on the target.
    AlreadyStarted,
    /// Waiting (for the initial sync, for catch-up) ran out of time.
    Timeout,
    /// A statement or connection failed on one side.
    Store,
}

/// An error of `replicate start|status|cutover|abort`.
#[derive(Debug)]
pub struct ReplicateError {
    kind: ReplicateErrorKind,
    message: String,
    source: Option<StoreError>,
    /// The command had changed something (the journal, an object, the fence) when it failed.
    after_work: bool,
}

impl ReplicateError {
    /// A new error.
    pub fn new(kind: ReplicateErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            after_work: false,
        }
    }

    /// A store error on one side (`source`/`target` and its masked label).
    pub fn store(side: &str, server: &str, e: StoreError) -> Self {
        Self {
            kind: ReplicateErrorKind::Store,
            message: format!("{side} {server}: {e}"),
            source: Some(e),
            after_work: false,
        }
    }

    /// The same error with `more` (what happened since, what to do next) appended.
    pub fn context(mut self, more: &str) -> Self {
        self.message = format!("{}; {more}", self.message);
        self
    }

    /// The same error, marked as happening once the command had changed something: whatever
    /// its kind (a lost connection included), it is not "nothing started".
    pub fn after_work(mut self) -> Self {
        self.after_work = true;
        self
    }

    /// Whether the command had changed something when it failed (see
    /// [`after_work`](Self::after_work)).
    pub fn work_started(&self) -> bool {
        self.after_work
    }

    /// The kind.
    pub fn kind(&self) -> ReplicateErrorKind {
        self.kind
    }

    /// The underlying store error, if any.
    pub fn store_error(&self) -> Option<&StoreError> {
        self.source.as_ref()
    }
}

impl fmt::Display for ReplicateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReplicateError {}

/// Maps a store error on one side into a [`ReplicateError`].
pub(crate) trait OnSide<T> {
    fn on(self, side: &crate::Sides, which: Which) -> Result<T, ReplicateError>;
}

/// Which side a statement ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Source,
    Target,
}

impl<T> OnSide<T> for Result<T, StoreError> {
    fn on(self, sides: &crate::Sides, which: Which) -> Result<T, ReplicateError> {
        self.map_err(|e| match which {
            Which::Source => ReplicateError::store("source", sides.source.label(), e),
            Which::Target => ReplicateError::store("target", sides.target.label(), e),
        })
    }
}
