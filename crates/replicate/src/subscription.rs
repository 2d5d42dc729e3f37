//! The subscription on the target: it connects to the source with a connection string that
//! holds the source's password, so that string is never logged or printed: the statement is
//! kept out of the server log where the server lets us ([`quiet_log`]; what it can't keep out
//! is reported, naming the setting), and errors are scrubbed of the password. The server keeps
//! the string in `pg_subscription.subconninfo` (readable by superusers only) until cutover or
//! abort drops the subscription.

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

/// Where the source's password stays while replication runs, for the user.
pub const PASSWORD_STORED: &str = "the source's password is stored on the target in pg_subscription.subconninfo (readable by superusers only) until `ragshift replicate cutover` or `ragshift replicate abort` drops the subscription";

/// The settings that write a statement's text to the server log, the value that keeps it out,
/// and whether the current value would log a statement that succeeds (else only one that fails).
const LOGGING: [(&str, &str); 4] = [
    ("log_statement", "none"),
    ("log_min_duration_statement", "-1"),
    ("log_min_error_statement", "panic"),
    ("pgaudit.log", "none"),
];

fn would_log(setting: &str, value: &str) -> bool {
    match setting {
        "log_statement" => matches!(value, "ddl" | "all"),
        "log_min_duration_statement" => value != "-1",
        // A failing statement is logged at this level or below it.
        "log_min_error_statement" => !matches!(value, "log" | "fatal" | "panic"),
        "pgaudit.log" => {
            let v = value.to_ascii_lowercase();
            !v.is_empty() && v != "none"
        }
        _ => false,
    }
}

/// A setting that may still write the statement to the server log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeak {
    /// The setting (`log_statement`).
    pub setting: &'static str,
    /// Its value (`ddl`).
    pub value: String,
    /// Whether it logs only a statement that fails.
    pub on_error_only: bool,
    /// Why it couldn't be changed.
    pub why: String,
}

impl std::fmt::Display for LogLeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} = {}: {}the target server writes the statement to its log, and this user may not change that for its session ({})",
            self.setting,
            self.value,
            if self.on_error_only { "if it fails, " } else { "" },
            self.why
        )
    }
}

/// Keeps the statements this session runs next out of the target's server log, as far as the
/// server lets this user (`SET` of these settings needs superuser or a `GRANT SET`); undone by
/// [`loud_log`]. Returns the settings that may still log the statement, for a warning.
pub async fn quiet_log(target: &Client) -> Vec<LogLeak> {
    let mut leaks = Vec::new();
    for (setting, quiet) in LOGGING {
        let current: Option<String> = match target
            .query_one("SELECT current_setting($1, true)", &[&setting])
            .await
        {
            Ok(row) => row.get(0),
            Err(_) => None,
        };
        let Some(current) = current else {
            continue; // not a setting of this server (pgaudit not loaded)
        };
        if !would_log(setting, &current) {
            continue;
        }
        let sql = format!("SET {setting} = {}", quote_literal(quiet));
        if let Err(e) = target.batch_execute(&sql).await {
            let why = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            leaks.push(LogLeak {
                setting,
                value: current,
                on_error_only: setting == "log_min_error_statement",
                why,
            });
        }
    }
    leaks
}

/// Undoes [`quiet_log`].
pub async fn loud_log(target: &Client) {
    for (setting, _) in LOGGING {
        let _ = target.batch_execute(&format!("RESET {setting}")).await;
    }
}

/// The warning for what [`quiet_log`] couldn't keep out of the log, or `None`.
pub fn leak_warning(leaks: &[LogLeak]) -> Option<String> {
    (!leaks.is_empty()).then(|| {
        format!(
            "the CREATE SUBSCRIPTION statement carries the source's password, and the target server may write it to its log (on RDS/Aurora also to CloudWatch): {}; to avoid it, have a superuser (rds_superuser on RDS/Aurora) GRANT SET ON PARAMETER for these settings to this user, turn them off in the parameter group for the duration, or use a dedicated replication user whose password you change after cutover",
            leaks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

/// Creates the subscription (and, through it, the slot on the source), starting the initial
/// copy. `source_label` names the source in errors. Returns what may have written the
/// statement to the server log (see [`quiet_log`]).
pub async fn create(
    target: &Client,
    names: &Names,
    conninfo: &str,
    binary: bool,
    source_label: &str,
) -> Result<Vec<LogLeak>, StoreError> {
    let leaks = quiet_log(target).await;
    let sql = format!(
        "CREATE SUBSCRIPTION {sub} CONNECTION {conn} PUBLICATION {publication}
           WITH (slot_name = {slot}, binary = {binary}, copy_data = true, create_slot = true, enabled = true)",
        sub = quote_ident(&names.subscription),
        conn = quote_literal(conninfo),
        publication = quote_ident(&names.publication),
        slot = quote_ident(&names.slot),
    );
    let result = target.batch_execute(&sql).await;
    loud_log(target).await;
    result.map(|()| leaks).map_err(|e| {
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
/// `Err` when the probe itself couldn't run, or wasn't tried because the server would log
/// the statement (see [`quiet_log`]).
pub async fn probe(target: &Client, conninfo: &str) -> Result<Result<(), String>, StoreError> {
    // Session settings, before the transaction: a failing SET would abort it.
    let leaks = quiet_log(target).await;
    if leaks.iter().any(|l| !l.on_error_only) {
        // Even a working route would log the password: don't send it just to try the route.
        // (A failing statement is logged either way: by the probe or by `start` itself.)
        loud_log(target).await;
        return Err(StoreError::new(
            StoreErrorKind::Permission,
            "not tried, so that the source's password doesn't reach the target's server log (see the server log check); it is tried when the subscription is created".to_owned(),
        ));
    }
    let result = probe_quietly(target, conninfo).await;
    loud_log(target).await;
    result
}

async fn probe_quietly(target: &Client, conninfo: &str) -> Result<Result<(), String>, StoreError> {
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
    target
        .batch_execute("BEGIN")
        .await
        .map_err(|e| StoreError::query("probing the route to the source", e))?;
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
