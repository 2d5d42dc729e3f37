//! DDL and TRUNCATE that never hang silently: each runs under a `lock_timeout`, says in the log
//! whom it waits for when it waits (from `pg_blocking_pids`, asked on another connection), and
//! when it gives up its error names the sessions holding locks on the table (pid,
//! `application_name`, state and since when), so the operator knows what to end.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};

use crate::{StoreError, StoreErrorKind};

/// The default `lock_timeout` for ragshift's DDL and TRUNCATE.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a statement waits before the log says whom it waits for, and how often it looks.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// `SET lock_timeout` for a session: every later statement on it gives up waiting for a lock
/// after `timeout` (SQLSTATE 55P03) instead of hanging.
pub async fn set_lock_timeout(
    client: &impl GenericClient,
    timeout: Duration,
) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "SET lock_timeout = {}",
            timeout.as_millis().max(1)
        ))
        .await
        .map_err(|e| StoreError::query("setting lock_timeout", e))
}

/// Runs `sql` (DDL, TRUNCATE, a DELETE) on `client` under `timeout`. While it waits for a
/// lock, whom it waits for is logged (asked on `observer`, another connection to the same
/// database); if the timeout passes, the error says `what` could not be done and names the
/// sessions holding locks on `table` (`schema.table`, quoted as in SQL).
pub async fn run(
    client: &Client,
    observer: &Client,
    sql: &str,
    what: &str,
    table: &str,
    timeout: Duration,
) -> Result<(), StoreError> {
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| StoreError::query(what, e))?
        .get(0);
    set_lock_timeout(client, timeout).await?;
    let statement = client.batch_execute(sql);
    tokio::pin!(statement);
    let mut told = false;
    let result = loop {
        tokio::select! {
            r = &mut statement => break r,
            () = tokio::time::sleep(WATCH_EVERY), if !told => {
                if let Ok(who) = blockers(observer, pid).await {
                    if !who.is_empty() {
                        tracing::warn!(
                            "{what}: waiting for a lock held by {} (gives up after {}s, --lock-timeout)",
                            who.join("; "),
                            timeout.as_secs_f64()
                        );
                        told = true;
                    }
                }
            }
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            Err(lock_timeout_error(observer, what, table, timeout, e).await)
        }
        Err(e) => Err(StoreError::query(what, e)),
    }
}

/// The error for a statement that gave up waiting for a lock on `table`: it names the
/// sessions holding locks on it (asked on `observer`).
pub async fn lock_timeout_error(
    observer: &Client,
    what: &str,
    table: &str,
    timeout: Duration,
    e: tokio_postgres::Error,
) -> StoreError {
    let holders = holders(observer, table).await.unwrap_or_default();
    let who = if holders.is_empty() {
        "another session (it let go before it could be named)".to_owned()
    } else {
        holders.join("; ")
    };
    StoreError::new(
        StoreErrorKind::Locked,
        format!(
            "{what}: gave up after waiting {}s for a lock on {table} held by {who}; end that session (pg_terminate_backend(pid)) or wait until it is done, or raise --lock-timeout",
            timeout.as_secs_f64()
        ),
    )
    .with_source(e)
}

const SESSION_SQL: &str = "coalesce(nullif(a.application_name, ''), 'no application_name'),
        coalesce(a.state, '?'), coalesce(host(a.client_addr), 'local'),
        coalesce(to_char(coalesce(a.xact_start, a.query_start) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '?'),
        left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 100)";

fn describe(r: &tokio_postgres::Row) -> String {
    format!(
        "pid {} \"{}\" from {} ({} since {} UTC, last query: {})",
        r.get::<_, i32>(0),
        r.get::<_, String>(1),
        r.get::<_, String>(3),
        r.get::<_, String>(2),
        r.get::<_, String>(4),
        r.get::<_, String>(5)
    )
}

/// The sessions `pid` waits for.
pub async fn blockers(observer: &Client, pid: i32) -> Result<Vec<String>, StoreError> {
    let rows = observer
        .query(
            &format!(
                "SELECT a.pid, {SESSION_SQL} FROM pg_stat_activity a
                  WHERE a.pid = ANY(pg_blocking_pids($1)) ORDER BY a.pid"
            ),
            &[&pid],
        )
        .await
        .map_err(|e| StoreError::query("finding blocking sessions", e))?;
    Ok(rows.iter().map(describe).collect())
}

/// The other sessions holding (granted) locks on `table`.
pub async fn holders(observer: &Client, table: &str) -> Result<Vec<String>, StoreError> {
    let rows = observer
        .query(
            &format!(
                "SELECT DISTINCT a.pid, {SESSION_SQL} FROM pg_locks l
                   JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.granted AND l.relation = to_regclass($1) AND a.pid <> pg_backend_pid()
                  ORDER BY a.pid"
            ),
            &[&table],
        )
        .await
        .map_err(|e| StoreError::query("finding sessions holding locks", e))?;
    Ok(rows.iter().map(describe).collect())
}
