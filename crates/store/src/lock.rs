//! One run per target at a time: a session-level PostgreSQL advisory lock, held on a dedicated
//! connection for the life of the run. If the process dies, the server drops the connection and
//! the lock with it, so a crash never leaves a stale lock behind.

use tokio_postgres::Client;

use crate::connect::{connect, ConnectSpec};
use crate::ident::Layout;
use crate::{StoreError, StoreErrorKind};

/// A held lock; dropping it closes the connection and releases the lock.
pub struct TargetLock {
    client: Client,
    key: i64,
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
        let app = format!("ragshift {holder}");
        let client = connect(spec, &app).await?;
        let key = lock_key(layout);
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| StoreError::query("taking the target lock", e))?
            .get(0);
        if got {
            return Ok(Self { client, key });
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

    /// Releases the lock explicitly.
    pub async fn release(self) -> Result<(), StoreError> {
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
            .await
            .map_err(|e| StoreError::query("releasing the target lock", e))?;
        Ok(())
    }
}
