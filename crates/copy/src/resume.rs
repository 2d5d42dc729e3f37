//! Finding the copy run to resume: the newest copy run into the same target table, its plan
//! (kept in the run's `selection` in the journal) and which of its partitions committed.

use std::collections::HashSet;

use tokio_postgres::GenericClient;

use ragshift_store::journal::{Journal, Status};
use ragshift_store::{Layout, StoreError};

use crate::plan::Partition;
use crate::run::RUN_KIND;

/// An earlier copy run into this table.
#[derive(Debug, Clone)]
pub struct PreviousRun {
    /// Its id.
    pub run_id: String,
    /// Its status (`running` after a crash).
    pub status: String,
    /// Its plan.
    pub partitions: Vec<Partition>,
    /// The bots it was limited to.
    pub bots: Option<Vec<String>>,
    /// Partitions that committed.
    pub done: HashSet<String>,
    /// Partitions that were started and did not commit (their rows are deleted before the
    /// retry, in case).
    pub attempted: HashSet<String>,
}

/// The newest copy run into `layout`'s table, if `journal` has one.
pub async fn previous_run(
    client: &impl GenericClient,
    journal: &Journal,
    layout: &Layout,
) -> Result<Option<PreviousRun>, StoreError> {
    if !journal.exists(client).await? {
        return Ok(None);
    }
    let Some(row) = client
        .query_opt(
            &*format!(
                "SELECT run_id, status, selection FROM {}
                  WHERE kind = $1 AND selection->>'target_table' = $2
                  ORDER BY started_at DESC LIMIT 1",
                journal.runs_table()
            ),
            &[&RUN_KIND, &layout.display_name()],
        )
        .await
        .map_err(|e| StoreError::query("reading earlier copy runs", e))?
    else {
        return Ok(None);
    };
    let run_id: String = row.get(0);
    let selection: serde_json::Value = row.get(2);
    let partitions: Vec<Partition> =
        serde_json::from_value(selection["partitions"].clone()).map_err(|e| {
            StoreError::new(
                ragshift_store::StoreErrorKind::InvalidData,
                format!("the journal's plan of copy run {run_id} is unreadable ({e}); run without --resume and with --replace"),
            )
        })?;
    let bots: Option<Vec<String>> =
        serde_json::from_value(selection["bots"].clone()).unwrap_or(None);
    let units = journal.units(client, &run_id).await?;
    let done = units
        .iter()
        .filter(|u| u.status == Status::Succeeded)
        .map(|u| u.unit_id.clone())
        .collect();
    let attempted = units
        .iter()
        .filter(|u| u.status != Status::Succeeded && u.attempts > 0)
        .map(|u| u.unit_id.clone())
        .collect();
    Ok(Some(PreviousRun {
        run_id,
        status: row.get(1),
        partitions,
        bots,
        done,
        attempted,
    }))
}
