//! The cutover's write fence on the source: a `BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE
//! ... FOR EACH STATEMENT` trigger on the replicated table whose function raises
//! "ragshift cutover: writes to <table> are fenced ..." with SQLSTATE 25006
//! (`read_only_sql_transaction`, what a client also sees from a read-only replica, so drivers
//! that reconnect on it do so).
//!
//! It is installed in one transaction that first takes `LOCK TABLE ... IN SHARE ROW EXCLUSIVE
//! MODE` (with a `lock_timeout`): the lock waits for every transaction already writing to the
//! table to end, and writers arriving later wait for the fence and then fail on it. So every
//! write that committed on the source did so before the fence, and `pg_current_wal_lsn()` read
//! after it is a position the target must reach to hold all of them. A table owner needs no
//! superuser for this: the `TRIGGER` privilege on the table and `CREATE` on its schema (where
//! the function goes).

use std::time::Duration;

use ragshift_store::ident::{quote_ident, quote_literal, Layout};
use ragshift_store::{StoreError, StoreErrorKind};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::names::Names;

/// The SQLSTATE a fenced write fails with (`read_only_sql_transaction`).
pub const SQLSTATE: &str = "25006";

/// The start of the message a fenced write fails with.
pub const MESSAGE_START: &str = "ragshift cutover: writes to";

/// The name of the fence's trigger and of its function (in the table's schema).
pub fn name(names: &Names) -> String {
    let suffix = names
        .run_id
        .strip_prefix("replicate-")
        .unwrap_or(&names.run_id);
    format!("{}fence_{suffix}", crate::names::PREFIX)
}

/// The statements that lift the fence by hand (run on the source).
pub fn removal_sql(layout: &Layout, name: &str) -> String {
    format!(
        "DROP TRIGGER IF EXISTS {n} ON {t}; DROP FUNCTION IF EXISTS {s}.{n}();",
        n = quote_ident(name),
        t = layout.qualified(),
        s = quote_ident(&layout.schema)
    )
}

/// Fences writes to the table: waits up to `lock_timeout` for the writers in flight, then
/// installs the trigger; idempotent (a fence left by an interrupted cutover is replaced).
pub async fn install(
    source: &Client,
    layout: &Layout,
    name: &str,
    lock_timeout: Duration,
) -> Result<(), StoreError> {
    let table = layout.qualified();
    let function = format!("{}.{}", quote_ident(&layout.schema), quote_ident(name));
    let hint = format!(
        "to accept writes here again (e.g. to roll back), run `ragshift replicate abort` or, on this cluster: {}",
        removal_sql(layout, name)
    );
    let sql = format!(
        "SET LOCAL lock_timeout = '{ms}ms';
         LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;
         CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $ragshift_fence$
         BEGIN
           RAISE EXCEPTION USING
             ERRCODE = '{SQLSTATE}',
             MESSAGE = format('{MESSAGE_START} %I.%I are fenced on this (old) cluster; the application must now use the new cluster',
                              TG_TABLE_SCHEMA, TG_TABLE_NAME),
             HINT = {hint};
         END
         $ragshift_fence$;
         DROP TRIGGER IF EXISTS {trigger} ON {table};
         CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION {function}();",
        ms = lock_timeout.as_millis().max(1),
        hint = quote_literal(&hint),
        trigger = quote_ident(name),
    );
    // One transaction: the lock, the function and the trigger commit together or not at all.
    if let Err(e) = source.batch_execute(&format!("BEGIN; {sql} COMMIT")).await {
        let _ = source.batch_execute("ROLLBACK").await;
        let what = layout.display_name();
        return Err(if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            StoreError::new(
                StoreErrorKind::Query,
                format!(
                    "could not fence writes to {what} within {lock_timeout:?}: a transaction kept it locked (see pg_stat_activity on the source); nothing was fenced"
                ),
            )
        } else {
            StoreError::query(format!("fencing writes to {what}"), e)
        });
    }
    Ok(())
}

/// Whether the fence's trigger is on the table.
pub async fn exists(source: &Client, layout: &Layout, name: &str) -> Result<bool, StoreError> {
    Ok(source
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
                              JOIN pg_namespace n ON n.oid = c.relnamespace
                             WHERE n.nspname = $1 AND c.relname = $2 AND g.tgname = $3)
                 OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                             WHERE n.nspname = $1 AND p.proname = $3)",
            &[&layout.schema, &layout.table, &name],
        )
        .await
        .map_err(|e| StoreError::query("looking for the write fence", e))?
        .get(0))
}

/// Lifts the fence (trigger and function); returns whether it was there.
pub async fn remove(source: &Client, layout: &Layout, name: &str) -> Result<bool, StoreError> {
    let existed = exists(source, layout, name).await?;
    if existed {
        let table_exists: bool = source
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&layout.qualified()])
            .await
            .map_err(|e| StoreError::query("looking for the fenced table", e))?
            .get(0);
        let sql = if table_exists {
            removal_sql(layout, name)
        } else {
            format!(
                "DROP FUNCTION IF EXISTS {}.{}()",
                quote_ident(&layout.schema),
                quote_ident(name)
            )
        };
        source
            .batch_execute(&sql)
            .await
            .map_err(|e| StoreError::query(format!("lifting the write fence {name}"), e))?;
    }
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_is_named_after_the_run() {
        let names = Names::with_suffix("abc123");
        assert_eq!(name(&names), "ragshift_fence_abc123");
        let sql = removal_sql(
            &Layout::default().with_table("my items"),
            "ragshift_fence_x",
        );
        assert!(sql.contains("ON \"public\".\"my items\""), "{sql}");
        assert!(sql.contains("DROP FUNCTION IF EXISTS \"public\".\"ragshift_fence_x\"()"));
    }
}
