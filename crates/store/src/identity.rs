//! Which database a connection really reached, whatever its URL says (`localhost` and
//! `127.0.0.1`, a DNS alias, a tunnel): the cluster's `system_identifier` from
//! `pg_control_system()`, the database's oid, and the postmaster's start time and port. Two
//! connections with equal identities are the same database, and a copy, replication or import
//! from a database into itself must be refused before anything is touched.
//!
//! The start time and port are part of the identity because a restored snapshot keeps its
//! origin's `system_identifier` and database oids: without them a copy from a restored snapshot
//! back into the cluster it came from would look like a copy into itself.

use std::fmt;

use tokio_postgres::GenericClient;

use crate::StoreError;

/// What makes a database itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseIdentity {
    /// `pg_control_system().system_identifier`, or `None` where the function is not allowed
    /// (managed services may hide it); the other fields still tell servers apart.
    pub system_identifier: Option<i64>,
    /// The database's oid in `pg_database`.
    pub database_oid: u32,
    /// The database's name, for messages.
    pub database: String,
    /// `pg_postmaster_start_time()` as text (microseconds).
    pub started: String,
    /// The server's `port` setting.
    pub port: String,
}

impl fmt::Display for DatabaseIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database \"{}\" (oid {}",
            self.database, self.database_oid
        )?;
        if let Some(id) = self.system_identifier {
            write!(f, " in cluster {id}")?;
        }
        write!(f, ", server up since {})", self.started)
    }
}

/// Reads the identity of the database `client` is connected to.
pub async fn identify(client: &impl GenericClient) -> Result<DatabaseIdentity, StoreError> {
    let row = client
        .query_one(
            "SELECT d.oid, d.datname::text,
                    to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
                    current_setting('port')
               FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("identifying the database", e))?;
    // Not every role may call it (and some managed services refuse it): the rest still
    // identifies the server.
    let system_identifier = match client
        .query_one("SELECT system_identifier FROM pg_control_system()", &[])
        .await
    {
        Ok(r) => Some(r.get(0)),
        Err(e) => {
            tracing::debug!("pg_control_system() is not available ({e}); telling databases apart by oid, start time and port");
            None
        }
    };
    Ok(DatabaseIdentity {
        system_identifier,
        database_oid: row.get(0),
        database: row.get(1),
        started: row.get(2),
        port: row.get(3),
    })
}

/// Whether two identities are the same database (a missing `system_identifier` on either side
/// is not a difference).
pub fn same_database(a: &DatabaseIdentity, b: &DatabaseIdentity) -> bool {
    let cluster_differs = matches!(
        (a.system_identifier, b.system_identifier),
        (Some(x), Some(y)) if x != y
    );
    !cluster_differs
        && a.database_oid == b.database_oid
        && a.started == b.started
        && a.port == b.port
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sys: Option<i64>, oid: u32, started: &str) -> DatabaseIdentity {
        DatabaseIdentity {
            system_identifier: sys,
            database_oid: oid,
            database: "rag".into(),
            started: started.into(),
            port: "5432".into(),
        }
    }

    #[test]
    fn the_same_database_is_recognised_and_a_restored_copy_is_not_it() {
        let a = id(Some(7), 16384, "2026-11-30 10:00:00.000000");
        assert!(same_database(&a, &a.clone()));
        assert!(same_database(
            &a,
            &id(None, 16384, "2026-11-30 10:00:00.000000")
        ));
        // Another database of the same server.
        assert!(!same_database(
            &a,
            &id(Some(7), 16385, "2026-11-30 10:00:00.000000")
        ));
        // A restored snapshot: same system identifier and oid, another server.
        assert!(!same_database(
            &a,
            &id(Some(7), 16384, "2026-11-30 11:00:00.000000")
        ));
        assert!(!same_database(
            &a,
            &id(Some(8), 16384, "2026-11-30 10:00:00.000000")
        ));
    }
}
