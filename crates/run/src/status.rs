//! The state of a run from the journal, and the bots stuck in RUNNING whose job is gone.
//!
//! A run is alive while its process holds the target lock (its lock connection is named
//! `ragshift rebuild run RUN_ID`); a worker is alive while its connection (`ragshift worker
//! BOT_ID`) is open. A unit still `running` with neither is stale: its process died (or its ECS
//! task stopped) before it could record a result; resuming the run redoes it.

use std::collections::BTreeMap;

use ragshift_store::journal::{Journal, RunRow, Status, UnitRow};
use ragshift_store::StoreError;
use serde::Serialize;
use tokio_postgres::GenericClient;

/// A run and its units.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// The run.
    pub run: RunRow,
    /// Whether its process is still running.
    pub alive: bool,
    /// Units per status.
    pub counts: BTreeMap<&'static str, usize>,
    /// Every unit.
    pub units: Vec<UnitRow>,
    /// Units `running` whose job is gone.
    pub stale: Vec<String>,
}

impl RunStatus {
    /// Whether something needs attention: failed or stale units, or unfinished ones in a dead
    /// run.
    pub fn needs_attention(&self) -> bool {
        !self.stale.is_empty()
            || self.units.iter().any(|u| u.status == Status::Failed)
            || (!self.alive
                && self
                    .units
                    .iter()
                    .any(|u| matches!(u.status, Status::Queued | Status::Running)))
    }

    /// Whether the run ended badly (what `status` exits 1 for): something needs attention, or
    /// the journal records the run itself as failed.
    pub fn ended_badly(&self) -> bool {
        self.needs_attention() || self.run.status == "failed"
    }

    /// Whether running the command again would do more: its process is gone and some unit
    /// neither succeeded nor was skipped.
    pub fn resumable(&self) -> bool {
        !self.alive
            && self
                .units
                .iter()
                .any(|u| u.status != Status::Succeeded && u.status != Status::Skipped)
    }
}

/// The status of `run_id`, or of the latest run when `None`; `None` if there is no such run.
pub async fn run_status(
    client: &impl GenericClient,
    journal: &Journal,
    run_id: Option<&str>,
) -> Result<Option<RunStatus>, StoreError> {
    // A target no run has written to has no journal: reading it creates nothing.
    if !journal.exists(client).await? {
        return Ok(None);
    }
    journal.ensure_schema(client).await?;
    let run = match run_id {
        Some(id) => journal.run(client, id).await?,
        None => journal.latest_run(client, None).await?,
    };
    let Some(run) = run else {
        return Ok(None);
    };
    let units = journal.units(client, &run.run_id).await?;
    let apps: Vec<String> = client
        .query(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE application_name LIKE 'ragshift %'",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading active sessions", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let alive = run.status == "running"
        && apps
            .iter()
            .any(|a| a == &format!("ragshift {} run {}", run.kind, run.run_id));
    let stale = units
        .iter()
        .filter(|u| u.status == Status::Running)
        .filter(|u| !alive && !apps.contains(&format!("ragshift worker {}", u.unit_id)))
        .map(|u| u.unit_id.clone())
        .collect();
    let mut counts = BTreeMap::new();
    for u in &units {
        *counts.entry(u.status.as_str()).or_insert(0) += 1;
    }
    Ok(Some(RunStatus {
        run,
        alive,
        counts,
        units,
        stale,
    }))
}

/// The status `ragshift status` shows, read from the journal on `[target]`: `run_id`'s, or the
/// latest run's when `None`; a missing run is an error naming the target.
pub async fn load(
    config: &ragshift_config::Config,
    run_id: Option<&str>,
) -> anyhow::Result<RunStatus> {
    use crate::components::{connect_spec, Side};
    let spec = connect_spec(Side::Target, &config.target, &config.aws).await?;
    let client = ragshift_store::connect(&spec, "ragshift status").await?;
    let journal = Journal::from_config(&config.run);
    let Some(status) = run_status(&client, &journal, run_id).await? else {
        let what = match run_id {
            Some(id) => format!("no run {id}"),
            None => "no runs yet".to_owned(),
        };
        anyhow::bail!("{what} in the journal of {}", spec.label());
    };
    Ok(status)
}
