//! The subscription on the target: it connects to the source with a connection string that
//! holds the source's password, so that string is never logged or printed: the statement is
//! kept out of the server log where we may, and errors are scrubbed of the password.

use ragshift_store::ident::{quote_ident, quote_literal};
use ragshift_store::{StoreError, StoreErrorKind};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::names::Names;

/// Removes the password of `conninfo` (libpq `password='...'`) from `message`.
pub fn scrub(message: &str, conninfo: &str) -> String {
    let mut out = message.replace(conninfo, "<connection string>");
    if let Some(start) = conninfo.find("password='") {
        let rest = &conninfo[start + "password='".len()..];
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => password.extend(chars.next()),
                '\'' => break,
                c => password.push(c),
            }
        }
        if !password.is_empty() {
            out = out.replace(&password, "****");
        }
    }
    out
}

/// Creates the subscription (and, through it, the slot on the source), starting the initial
/// copy. `source_label` names the source in errors.
pub async fn create(
    target: &Client,
    names: &Names,
    conninfo: &str,
    binary: bool,
    source_label: &str,
) -> Result<(), StoreError> {
    // Superusers may keep the statement (with its password) out of the server log; others
    // can't, and the server then logs a failing statement as it always does.
    let _ = target
        .batch_execute("SET log_statement = 'none'; SET log_min_error_statement = 'panic'")
        .await;
    let sql = format!(
        "CREATE SUBSCRIPTION {sub} CONNECTION {conn} PUBLICATION {publication}
           WITH (slot_name = {slot}, binary = {binary}, copy_data = true, create_slot = true, enabled = true)",
        sub = quote_ident(&names.subscription),
        conn = quote_literal(conninfo),
        publication = quote_ident(&names.publication),
        slot = quote_ident(&names.slot),
    );
    let result = target.batch_execute(&sql).await;
    let _ = target
        .batch_execute("RESET log_statement; RESET log_min_error_statement")
        .await;
    result.map_err(|e| {
        let text = scrub(&db_text(&e), conninfo);
        match e.code() {
            Some(c) if *c == SqlState::CONNECTION_FAILURE
                || *c == SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION =>
            {
                StoreError::new(
                    StoreErrorKind::Connect,
                    format!(
                        "the target server could not connect to the source {source_label} ({text}); the subscription connects FROM the target's network: give the source's address as the target sees it, and allow the target in the source's pg_hba.conf / security group"
                    ),
                )
            }
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => StoreError::new(
                StoreErrorKind::Permission,
                format!("creating subscription {}: {text}", names.subscription),
            ),
            _ => StoreError::new(
                StoreErrorKind::Query,
                format!("creating subscription {}: {text}", names.subscription),
            ),
        }
    })
}

/// Whether the target server can open the subscription's connection to the source, found by
/// creating a disabled subscription without a slot inside a transaction that is rolled back:
/// the target connects to the source once, and nothing remains on either side.
///
/// `Ok(Err(reason))` when the connection failed (the reason scrubbed of the password);
/// `Err` when the probe itself couldn't run.
pub async fn probe(target: &Client, conninfo: &str) -> Result<Result<(), String>, StoreError> {
    let name = format!(
        "ragshift_probe_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    );
    // A firewall that drops packets would otherwise hold the probe for the TCP time-out.
    let conninfo_timed = format!("{conninfo} connect_timeout=15");
    let sql = format!(
        "CREATE SUBSCRIPTION {sub} CONNECTION {conn} PUBLICATION {sub}
           WITH (connect = true, enabled = false, create_slot = false, slot_name = NONE, copy_data = false)",
        sub = quote_ident(&name),
        conn = quote_literal(&conninfo_timed),
    );
    let begin =
        "BEGIN; SET LOCAL log_statement = 'none'; SET LOCAL log_min_error_statement = 'panic'";
    if target.batch_execute(begin).await.is_err() {
        // Only superusers may keep the statement out of the log; others start plainly.
        let _ = target.batch_execute("ROLLBACK").await;
        target
            .batch_execute("BEGIN")
            .await
            .map_err(|e| StoreError::query("probing the route to the source", e))?;
    }
    let result = target.batch_execute(&sql).await;
    let _ = target.batch_execute("ROLLBACK").await;
    match result {
        Ok(()) => Ok(Ok(())),
        Err(e) => {
            let text = scrub(&scrub(&db_text(&e), &conninfo_timed), conninfo);
            match e.code() {
                Some(c)
                    if *c == SqlState::CONNECTION_FAILURE
                        || *c == SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION =>
                {
                    Ok(Err(text))
                }
                _ => Err(StoreError::new(
                    StoreErrorKind::Query,
                    format!("probing the route to the source: {text}"),
                )),
            }
        }
    }
}

fn db_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_owned(),
        },
        None => e.to_string(),
    }
}

/// The subscription's oid in this database, or `None` when it doesn't exist.
pub async fn oid(target: &Client, name: &str) -> Result<Option<u32>, StoreError> {
    Ok(target
        .query_opt(
            "SELECT s.oid FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
              WHERE d.datname = current_database() AND s.subname = $1",
            &[&name],
        )
        .await
        .map_err(|e| StoreError::query("reading subscriptions", e))?
        .map(|r| r.get(0)))
}

/// What dropping a subscription did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// It wasn't there.
    Absent,
    /// Dropped, with its slot on the source.
    WithSlot,
    /// Dropped, but the source couldn't be reached: its slot is still there.
    SlotLeft,
}

/// Drops the subscription and (through it) its slot on the source; if the source can't be
/// reached, detaches the slot first so that the subscription still goes.
pub async fn drop(target: &Client, name: &str) -> Result<Dropped, StoreError> {
    if oid(target, name).await?.is_none() {
        return Ok(Dropped::Absent);
    }
    let sub = quote_ident(name);
    target
        .batch_execute(&format!("ALTER SUBSCRIPTION {sub} DISABLE"))
        .await
        .map_err(|e| StoreError::query(format!("disabling subscription {name}"), e))?;
    match target
        .batch_execute(&format!("DROP SUBSCRIPTION {sub}"))
        .await
    {
        Ok(()) => Ok(Dropped::WithSlot),
        Err(e) => {
            tracing::warn!(subscription = name, error = %db_text(&e), "dropping the slot through the subscription failed; detaching it");
            target
                .batch_execute(&format!("ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)"))
                .await
                .map_err(|e| StoreError::query(format!("detaching subscription {name}"), e))?;
            target
                .batch_execute(&format!("DROP SUBSCRIPTION {sub}"))
                .await
                .map_err(|e| StoreError::query(format!("dropping subscription {name}"), e))?;
            Ok(Dropped::SlotLeft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_scrubbed_from_messages() {
        let conn = r"host='h' port=5432 user='u' password='s3cr\'et' dbname='d'";
        let msg = "could not connect: password authentication failed for s3cr'et";
        let out = scrub(msg, conn);
        assert!(!out.contains("s3cr'et"), "{out}");
        assert!(out.contains("****"));
        assert_eq!(
            scrub(&format!("bad {conn}"), conn),
            "bad <connection string>"
        );
    }
}
