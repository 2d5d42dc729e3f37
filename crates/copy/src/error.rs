//! Errors that stop a copy before or between its phases. A partition that fails is not one of
//! them: it is recorded in the journal and the report, and the other partitions go on.

use ragshift_store::compare::{ServerError, Side};
use ragshift_store::StoreError;

/// Why a copy could not run (or could not go on).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Connecting to the source or the target, or a statement on it, failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The copy can't start as asked: the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// The run had started (it is in the journal, now as `failed` with this reason) when this
    /// stopped it.
    #[error("copy run {run_id} failed: {error}; run the same command with --resume to continue")]
    RunFailed {
        /// The journal's run id.
        run_id: String,
        /// What stopped it.
        #[source]
        error: Box<CopyError>,
    },
}

impl CopyError {
    /// Whether the run had started changing the target (exit code 1 rather than 2).
    pub fn work_started(&self) -> bool {
        matches!(self, Self::RunFailed { .. })
    }

    pub(crate) fn source(server: &str) -> impl FnOnce(StoreError) -> Self + '_ {
        let on = ServerError::on(Side::Source, server);
        move |error| Self::Server(on(error))
    }

    pub(crate) fn target(server: &str) -> impl FnOnce(StoreError) -> Self + '_ {
        let on = ServerError::on(Side::Target, server);
        move |error| Self::Server(on(error))
    }
}
