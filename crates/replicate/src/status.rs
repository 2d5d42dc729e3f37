//! Where a replication stands: the initial sync of the table (`pg_subscription_rel`), how far
//! the target is behind measured in WAL bytes from the source's `pg_current_wal_lsn()` to the
//! slot's `confirmed_flush_lsn` (not `replay_lag`, which looks tiny while rows are still
//! missing), what the target's apply worker received (`pg_stat_subscription`), apply and sync
//! errors (`pg_stat_subscription_stats`), and row counts on both sides.

use ragshift_store::ident::Layout;
use ragshift_store::StoreError;
use serde::Serialize;
use tokio_postgres::Client;

use crate::record::Record;
use crate::slot::{self, SlotState};
use crate::subscription;

/// The initial-sync state of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSync {
    /// `schema.table`.
    pub table: String,
    /// `pg_subscription_rel.srsubstate`: i, d, f, s or r.
    pub state: String,
    /// The state in words.
    pub description: String,
}

fn describe(state: &str) -> &'static str {
    match state {
        "i" => "initializing",
        "d" => "copying the initial data",
        "f" => "initial copy done, finishing",
        "s" => "synchronized, handing over to the apply worker",
        "r" => "ready (streaming changes)",
        _ => "unknown",
    }
}

/// Everything `replicate status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicationStatus {
    /// The journal's run id.
    pub run_id: String,
    /// Publication on the source.
    pub publication: String,
    /// Subscription on the target.
    pub subscription: String,
    /// Whether rows travel in binary.
    pub binary: bool,
    /// The replicated table.
    pub table: String,
    /// The source's current WAL position.
    pub source_lsn: String,
    /// The subscription's slot on the source (`None`: gone).
    pub slot: Option<SlotState>,
    /// WAL bytes the target has yet to confirm (`None` when unknown).
    pub behind_bytes: Option<i64>,
    /// Whether the subscription exists on the target.
    pub subscription_exists: bool,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Whether its apply worker runs.
    pub apply_worker: bool,
    /// Last WAL position the apply worker received.
    pub received_lsn: Option<String>,
    /// Last position reported back to the source.
    pub latest_end_lsn: Option<String>,
    /// When the target last heard from the source (UTC).
    pub last_message_at: Option<String>,
    /// Initial sync per table.
    pub tables: Vec<TableSync>,
    /// Errors while applying changes (PostgreSQL 15+).
    pub apply_errors: Option<i64>,
    /// Errors during the initial copy (PostgreSQL 15+).
    pub sync_errors: Option<i64>,
    /// Rows on the source.
    pub source_rows: i64,
    /// Rows on the target.
    pub target_rows: i64,
    /// Every table is past its initial sync.
    pub synced: bool,
    /// Synced and nothing left to confirm.
    pub caught_up: bool,
    /// What needs attention, one line each.
    pub problems: Vec<String>,
}

/// Reads the status of the replication `record` describes.
pub async fn read(
    source: &Client,
    target: &Client,
    record: &Record,
    layout: &Layout,
) -> Result<ReplicationStatus, (&'static str, StoreError)> {
    let names = &record.names;
    let count_sql = format!("SELECT count(*) FROM {}", layout.qualified());
    let (src, tgt) = tokio::join!(
        async {
            let lsn = slot::current_lsn(source).await?;
            let state = slot::state(source, &names.slot).await?;
            let rows: i64 = source
                .query_one(&count_sql, &[])
                .await
                .map_err(|e| StoreError::query("counting source rows", e))?
                .get(0);
            Ok::<_, StoreError>((lsn, state, rows))
        },
        target_side(target, &names.subscription, &count_sql),
    );
    let (source_lsn, slot_state, source_rows) = src.map_err(|e| ("source", e))?;
    let t = tgt.map_err(|e| ("target", e))?;

    let synced = !t.tables.is_empty() && t.tables.iter().all(|s| s.state == "r");
    let behind_bytes = slot_state.as_ref().and_then(|s| s.behind_bytes);
    let mut problems = Vec::new();
    match &slot_state {
        None => problems.push(format!(
            "replication slot {} is missing on the source: the target can no longer catch up; run `ragshift replicate abort` and start again",
            names.slot
        )),
        Some(s) if s.wal_status.as_deref() == Some("lost") => problems.push(format!(
            "replication slot {} lost WAL it needed (max_slot_wal_keep_size): abort and start again",
            names.slot
        )),
        _ => {}
    }
    if t.oid.is_none() {
        problems.push(format!(
            "subscription {} is missing on the target",
            names.subscription
        ));
    } else if !t.enabled {
        problems.push(format!(
            "subscription {} is disabled (ALTER SUBSCRIPTION {} ENABLE)",
            names.subscription, names.subscription
        ));
    } else if !t.apply_worker {
        problems.push(
            "no apply worker is running on the target (it restarts after an error; see the target server's log)"
                .to_owned(),
        );
    }
    if t.apply_errors.unwrap_or(0) > 0 || t.sync_errors.unwrap_or(0) > 0 {
        problems.push(format!(
            "{} apply and {} sync errors so far: the messages are in the target server's log",
            t.apply_errors.unwrap_or(0),
            t.sync_errors.unwrap_or(0)
        ));
    }
    Ok(ReplicationStatus {
        run_id: names.run_id.clone(),
        publication: names.publication.clone(),
        subscription: names.subscription.clone(),
        binary: record.binary,
        table: layout.display_name(),
        source_lsn,
        caught_up: synced && behind_bytes.is_some_and(|b| b <= 0) && t.apply_worker,
        behind_bytes,
        slot: slot_state,
        subscription_exists: t.oid.is_some(),
        enabled: t.enabled,
        apply_worker: t.apply_worker,
        received_lsn: t.received_lsn,
        latest_end_lsn: t.latest_end_lsn,
        last_message_at: t.last_message_at,
        tables: t.tables,
        apply_errors: t.apply_errors,
        sync_errors: t.sync_errors,
        source_rows,
        target_rows: t.rows,
        synced,
        problems,
    })
}

struct TargetSide {
    oid: Option<u32>,
    enabled: bool,
    apply_worker: bool,
    received_lsn: Option<String>,
    latest_end_lsn: Option<String>,
    last_message_at: Option<String>,
    tables: Vec<TableSync>,
    apply_errors: Option<i64>,
    sync_errors: Option<i64>,
    rows: i64,
}

async fn target_side(
    target: &Client,
    name: &str,
    count_sql: &str,
) -> Result<TargetSide, StoreError> {
    let q = |what: &'static str| move |e| StoreError::query(what, e);
    let oid = subscription::oid(target, name).await?;
    let rows: i64 = target
        .query_one(count_sql, &[])
        .await
        .map_err(q("counting target rows"))?
        .get(0);
    let mut side = TargetSide {
        oid,
        enabled: false,
        apply_worker: false,
        received_lsn: None,
        latest_end_lsn: None,
        last_message_at: None,
        tables: Vec::new(),
        apply_errors: None,
        sync_errors: None,
        rows,
    };
    let Some(oid) = oid else {
        return Ok(side);
    };
    side.enabled = target
        .query_one(
            "SELECT subenabled FROM pg_subscription WHERE oid = $1",
            &[&oid],
        )
        .await
        .map_err(q("reading the subscription"))?
        .get(0);
    if let Some(r) = target
        .query_opt(
            "SELECT pid IS NOT NULL, received_lsn::text, latest_end_lsn::text,
                    to_char(last_msg_receipt_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
               FROM pg_stat_subscription WHERE subid = $1 AND relid IS NULL",
            &[&oid],
        )
        .await
        .map_err(q("reading pg_stat_subscription"))?
    {
        side.apply_worker = r.get(0);
        side.received_lsn = r.get(1);
        side.latest_end_lsn = r.get(2);
        side.last_message_at = r.get(3);
    }
    side.tables = target
        .query(
            "SELECT srrelid::regclass::text, srsubstate::text FROM pg_subscription_rel
              WHERE srsubid = $1 ORDER BY 1",
            &[&oid],
        )
        .await
        .map_err(q("reading pg_subscription_rel"))?
        .iter()
        .map(|r| {
            let state: String = r.get(1);
            TableSync {
                table: r.get(0),
                description: describe(&state).to_owned(),
                state,
            }
        })
        .collect();
    let version: i32 = target
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(q("reading the server version"))?
        .get(0);
    if version >= 150_000 {
        if let Some(r) = target
            .query_opt(
                "SELECT apply_error_count, sync_error_count FROM pg_stat_subscription_stats WHERE subid = $1",
                &[&oid],
            )
            .await
            .map_err(q("reading pg_stat_subscription_stats"))?
        {
            side.apply_errors = r.get(0);
            side.sync_errors = r.get(1);
        }
    }
    Ok(side)
}
