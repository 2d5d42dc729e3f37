//! Sessions whose COMMIT's answer was lost. Until such a session is gone the server may still
//! be committing its transaction; once it is, the journal's word on that work is final and can
//! be read without racing it. Used by copy's partitions and rebuild's bots.

use std::time::{Duration, Instant};

use tokio_postgres::GenericClient;

use crate::{StoreError, StoreErrorKind};

/// How long a session with an unknown outcome may take to go away.
pub const END_DEADLINE: Duration = Duration::from_secs(60);

/// One backend, identified so that a new session reusing its pid (after a failover) is never
/// mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId {
    /// Backend pid.
    pub pid: i32,
    /// Backend start time as the server prints it.
    pub backend_start: String,
}

/// The session `client` is connected to.
pub async fn session_id(client: &impl GenericClient) -> Result<SessionId, StoreError> {
    let row = client
        .query_one(
            "SELECT pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("identifying the session", e))?;
    Ok(SessionId {
        pid: row.get(0),
        backend_start: row.get(1),
    })
}

/// Ends the session `old` (from another session, `client`) and waits until it is gone, for at
/// most [`END_DEADLINE`].
pub async fn end_session(client: &impl GenericClient, old: &SessionId) -> Result<(), StoreError> {
    let deadline = Instant::now() + END_DEADLINE;
    loop {
        let alive = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE pid = $1 AND backend_start::text = $2",
                &[&old.pid, &old.backend_start],
            )
            .await
            .map_err(|e| StoreError::query("ending the session of the failed attempt", e))?;
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(StoreError::new(
                StoreErrorKind::Query,
                format!(
                    "the session of the failed attempt (pid {}) is still running after {}s, so whether it committed is unknown; end it (pg_terminate_backend) and run the same command again",
                    old.pid,
                    END_DEADLINE.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
