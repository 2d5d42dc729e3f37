//! One consistent view of the source for every worker: a coordinator session opens a
//! `REPEATABLE READ READ ONLY` transaction and exports its snapshot (`pg_export_snapshot()`);
//! each worker opens its own read-only transaction and adopts it with `SET TRANSACTION
//! SNAPSHOT`. Rows written to the source after the snapshot are invisible to all of them, so the
//! copy is the source as of one instant even while the application keeps writing. Nothing here
//! can write: every source transaction is `READ ONLY`.

use ragshift_store::ident::quote_literal;
use ragshift_store::{connect, ConnectSpec, StoreError};
use tokio_postgres::Client;

/// The coordinator's transaction, which keeps the exported snapshot alive for as long as it is
/// open (workers can only adopt it while it is).
pub struct SourceSnapshot {
    client: Client,
    spec: ConnectSpec,
    id: String,
}

/// Session settings for every source connection: no time-outs cutting a long copy short, and a
/// read-only default as a second fence.
const SESSION_SQL: &str = "SET idle_in_transaction_session_timeout = 0; \
     SET statement_timeout = 0; SET default_transaction_read_only = on;";

impl SourceSnapshot {
    /// Opens the coordinator transaction and exports its snapshot.
    pub async fn open(spec: &ConnectSpec, application_name: &str) -> Result<Self, StoreError> {
        let client = connect(spec, application_name).await?;
        client
            .batch_execute(&format!(
                "{SESSION_SQL} BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            ))
            .await
            .map_err(|e| StoreError::query("opening the source snapshot transaction", e))?;
        let id: String = client
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(|e| StoreError::query("exporting the source snapshot", e))?
            .get(0);
        Ok(Self {
            client,
            spec: spec.clone(),
            id,
        })
    }

    /// The coordinator's connection, inside the snapshot (for planning and verification).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The exported snapshot's id (`00000003-0000001B-1`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A new connection whose open transaction sees exactly the coordinator's snapshot.
    pub async fn reader(&self, application_name: &str) -> Result<Client, StoreError> {
        let client = connect(&self.spec, application_name).await?;
        client
            .batch_execute(&format!(
                "{SESSION_SQL} BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                quote_literal(&self.id)
            ))
            .await
            .map_err(|e| StoreError::query(format!("adopting source snapshot {}", self.id), e))?;
        Ok(client)
    }
}
