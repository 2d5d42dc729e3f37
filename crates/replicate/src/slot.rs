//! Replication slots on the source: the subscription's own slot (which holds WAL until the
//! target confirms it, so a forgotten slot fills the source's disk) and the temporary
//! `pg_<subscription oid>_sync_*` slots of the initial table copy.

use std::time::{Duration, Instant};

use ragshift_store::StoreError;
use serde::Serialize;
use tokio_postgres::Client;

/// How long a slot may stay active (its WAL sender shutting down) before it is dropped anyway.
const INACTIVE_WAIT: Duration = Duration::from_secs(30);

/// A slot as the source reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotState {
    /// Slot name.
    pub name: String,
    /// Whether a WAL sender is streaming from it now.
    pub active: bool,
    /// The last position the subscriber confirmed as applied and flushed.
    pub confirmed_flush_lsn: Option<String>,
    /// `reserved`, `extended`, `unreserved` or `lost` (WAL retention health).
    pub wal_status: Option<String>,
    /// Bytes of WAL between the source's current position and the confirmed position.
    pub behind_bytes: Option<i64>,
}

/// The source's current WAL position.
pub async fn current_lsn(source: &Client) -> Result<String, StoreError> {
    Ok(source
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(|e| StoreError::query("reading the current WAL position", e))?
        .get(0))
}

/// The slot's state, or `None` when it doesn't exist.
pub async fn state(source: &Client, name: &str) -> Result<Option<SlotState>, StoreError> {
    let row = source
        .query_opt(
            "SELECT slot_name::text, active, confirmed_flush_lsn::text, wal_status,
                    pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
               FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| StoreError::query(format!("reading replication slot {name}"), e))?;
    Ok(row.map(|r| SlotState {
        name: r.get(0),
        active: r.get(1),
        confirmed_flush_lsn: r.get(2),
        wal_status: r.get(3),
        behind_bytes: r.get(4),
    }))
}

/// Whether the slot has confirmed everything up to `lsn`.
pub async fn confirmed_past(source: &Client, name: &str, lsn: &str) -> Result<bool, StoreError> {
    let row = source
        .query_opt(
            "SELECT confirmed_flush_lsn >= $2::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
            &[&name, &lsn],
        )
        .await
        .map_err(|e| StoreError::query(format!("reading replication slot {name}"), e))?;
    Ok(row
        .and_then(|r| r.get::<_, Option<bool>>(0))
        .unwrap_or(false))
}

/// Drops the subscription's slot and its table-copy slots if they are still there (after a
/// subscription was dropped without reaching the source); returns the names dropped.
pub async fn drop_leftovers(
    source: &Client,
    slot: &str,
    subscription_oid: Option<u32>,
) -> Result<Vec<String>, StoreError> {
    let sync_prefix = subscription_oid.map(|oid| format!("pg_{oid}_sync_"));
    let names: Vec<String> = source
        .query(
            "SELECT slot_name::text FROM pg_replication_slots
              WHERE slot_name = $1 OR ($2::text IS NOT NULL AND starts_with(slot_name::text, $2))",
            &[&slot, &sync_prefix],
        )
        .await
        .map_err(|e| StoreError::query("reading replication slots", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut dropped = Vec::new();
    for name in names {
        let deadline = Instant::now() + INACTIVE_WAIT;
        loop {
            let active: Option<i32> = source
                .query_opt(
                    "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
                    &[&name],
                )
                .await
                .map_err(|e| StoreError::query("reading replication slots", e))?
                .and_then(|r| r.get(0));
            match active {
                Some(pid) if Instant::now() >= deadline => {
                    // A WAL sender that outlived its subscriber: end it so the slot can go.
                    source
                        .execute("SELECT pg_terminate_backend($1)", &[&pid])
                        .await
                        .map_err(|e| StoreError::query("ending a WAL sender", e))?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                None => break,
            }
        }
        source
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                &[&name],
            )
            .await
            .map_err(|e| StoreError::query(format!("dropping replication slot {name}"), e))?;
        dropped.push(name);
    }
    Ok(dropped)
}
