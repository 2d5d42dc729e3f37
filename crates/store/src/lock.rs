//! One run per target at a time: a session-level PostgreSQL advisory lock, held on a dedicated
//! connection for the life of the run. If the process dies, the server drops the connection and
//! the lock with it, so a crash never leaves a stale lock behind.
//!
//! The other way round matters as much: if the lock's connection dies (a network cut, a
//! failover, `pg_terminate_backend`) another run may take the lock while this one still writes.
//! The connection has TCP keepalives, so a dead peer is noticed, and [`TargetLock::ensure_held`]
//! (called before each unit of work commits) checks on the server that this session still holds
//! the lock; a lost lock fails the unit and stops the run. Workers in other processes (ECS
//! tasks of a rebuild) check with [`ensure_run_holds`] that their run's coordinator still does.

use std::time::Duration;

use tokio_postgres::{Client, GenericClient};

use crate::connect::{connect, ConnectSpec};
use crate::ident::Layout;
use crate::{StoreError, StoreErrorKind};

/// Keepalive idle time of the lock's connection: a dead one is noticed within about a minute.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(20);

/// A held lock; dropping it closes the connection and releases the lock.
pub struct TargetLock {
    client: Client,
    key: i64,
    pid: i32,
    table: String,
}

/// PostgreSQL keeps at most this many bytes of an `application_name`.
const APP_NAME_MAX: usize = 63;

/// The `application_name` of the lock's session for `holder`, as the server stores it.
fn lock_app_name(holder: &str) -> String {
    let mut app = format!("ragshift {holder}");
    if app.len() > APP_NAME_MAX {
        let mut end = APP_NAME_MAX;
        while !app.is_char_boundary(end) {
            end -= 1;
        }
        app.truncate(end);
    }
    app
}

/// Checks, from any session (a worker's own transaction, in another process), that the lock on
/// `layout`'s table is held by the session of `holder` (e.g. `rebuild run 01J...`, as given to
/// [`TargetLock::acquire`]). A worker calls it right before it commits: if the run's
/// coordinator lost the lock, another run may be writing the table, and nothing is committed.
pub async fn ensure_run_holds(
    client: &impl GenericClient,
    layout: &Layout,
    holder: &str,
) -> Result<(), StoreError> {
    let held: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
                AND a.application_name = $2)",
            &[&lock_key(layout), &lock_app_name(holder)],
        )
        .await
        .map_err(|e| StoreError::query("checking that the run still holds the target lock", e))?
        .get(0);
    if held {
        return Ok(());
    }
    Err(StoreError::new(
        StoreErrorKind::LockLost,
        format!(
            "{holder} no longer holds its lock on target table {} (its coordinator died or lost its connection); nothing more is committed: another run may be writing the table. Check that no other run is active, then run the same command again",
            layout.display_name()
        ),
    ))
}

/// The lock key for a table: a stable 64-bit FNV-1a hash of `ragshift:schema.table`.
pub fn lock_key(layout: &Layout) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("ragshift:{}.{}", layout.schema, layout.table).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

impl TargetLock {
    /// Takes the lock for `layout`'s table or fails at once, naming the holder.
    /// `holder` describes this run (`rebuild run 01J...`) for whoever finds the lock taken.
    pub async fn acquire(
        spec: &ConnectSpec,
        layout: &Layout,
        holder: &str,
    ) -> Result<Self, StoreError> {
        let app = lock_app_name(holder);
        let client = connect(&spec.with_keepalives(KEEPALIVE_IDLE), &app).await?;
        let key = lock_key(layout);
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1), pg_backend_pid()", &[&key])
            .await
            .map_err(|e| StoreError::query("taking the target lock", e))?;
        if row.get(0) {
            return Ok(Self {
                client,
                key,
                pid: row.get(1),
                table: layout.display_name(),
            });
        }
        let holder_row = client
            .query_opt(
                "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'),
                        to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
                &[&key],
            )
            .await
            .map_err(|e| StoreError::query("finding the lock holder", e))?;
        let who = match holder_row {
            Some(r) => format!(
                "\"{}\" (pid {} from {}, since {} UTC)",
                r.get::<_, String>(1),
                r.get::<_, i32>(0),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            ),
            None => "another session".to_owned(),
        };
        Err(StoreError::new(
            StoreErrorKind::Locked,
            format!(
                "target table {} is locked by {who}; wait for that run to end or stop it (a run that died releases the lock by itself)",
                layout.display_name()
            ),
        ))
    }

    /// The backend pid of the lock's session (what `pg_locks` shows for it).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The lock's connection, idle between checks: a second session on the target for looking
    /// at `pg_locks` and `pg_stat_activity` while the run's own connections are busy.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Checks on the server that this session still holds the lock. Call it before committing
    /// a unit of work: a lost lock (`LockLost`) means another run may be writing the same
    /// table, so nothing more may be committed.
    pub async fn ensure_held(&self) -> Result<(), StoreError> {
        let lost = |why: String| {
            StoreError::new(
                StoreErrorKind::LockLost,
                format!(
                    "the run lost its lock on target table {} ({why}); nothing more is committed: another run may be writing the table. Check that no other run is active, then run the same command again (copy: with --resume)",
                    self.table
                ),
            )
        };
        if self.client.is_closed() {
            return Err(lost(format!(
                "the lock's connection (pid {}) is closed",
                self.pid
            )));
        }
        let held: bool = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks
                  WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND pid = pg_backend_pid()
                    AND ((classid::bigint << 32) | objid::bigint) = $1)",
                &[&self.key],
            )
            .await
            .map_err(|e| lost(format!("the lock's connection (pid {}) failed: {}", self.pid, crate::error::db_message(&e))))?
            .get(0);
        if held {
            Ok(())
        } else {
            Err(lost(format!("session pid {} no longer holds it", self.pid)))
        }
    }

    /// Releases the lock explicitly.
    pub async fn release(self) -> Result<(), StoreError> {
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
            .await
            .map_err(|e| StoreError::query("releasing the target lock", e))?;
        Ok(())
    }
}
