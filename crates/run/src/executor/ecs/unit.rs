//! The bot's row in the run journal (`units` in the target's journal schema), as the ECS executor reads
//! it: the worker in the task writes it in the same transaction as the bot's rows, so it is the
//! source of truth for the bot's result. The executor completes it only when the worker could
//! not (its task died, timed out or never started).
//!
//! The per-unit read lives here rather than in `ragshift_store::journal` (which only reads whole
//! runs) because only this executor needs it, once per bot.

use std::sync::Mutex as StdMutex;

use tokio::sync::{Semaphore, SemaphorePermit};

use ragshift_store::journal::{Journal, Status, UnitResult};
use ragshift_store::{connect, BotRows, ConnectSpec, StoreError};
use serde_json::json;
use tokio_postgres::Client;

use super::watch::StoppedTask;
use crate::worker::BotJob;

/// A unit's state as this executor needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitView {
    /// Current status.
    pub status: Status,
    /// Attempts recorded so far (the worker adds one when it starts).
    pub attempts: i32,
    /// Rows written by the last successful attempt.
    pub row_count: Option<i64>,
    /// Why it failed, or the warning of a partial success.
    pub error: Option<String>,
    /// Per-source results and more, as the worker recorded them.
    pub detail: Option<serde_json::Value>,
}

/// Most connections the executor holds to the journal: hundreds of jobs share them (each
/// needs a connection for milliseconds before and after its task), so a run with a high
/// concurrency can't exhaust the target's `max_connections`.
const CONNECTIONS: usize = 4;

/// Connections to the journal, opened on demand and reused (the executor reads a unit before
/// and after each task, from many jobs at once).
pub(super) struct JournalAccess {
    target: ConnectSpec,
    rows: BotRows,
    idle: StdMutex<Vec<Client>>,
    permits: Semaphore,
}

impl JournalAccess {
    pub(super) fn new(target: ConnectSpec, rows: BotRows) -> Self {
        Self {
            target,
            rows,
            idle: StdMutex::new(Vec::new()),
            permits: Semaphore::new(CONNECTIONS),
        }
    }

    /// A connection and the permit to use it; give both back with [`Self::give`].
    async fn take(&self) -> Result<(Client, SemaphorePermit<'_>), StoreError> {
        let permit = self.permits.acquire().await.map_err(|_| {
            StoreError::new(
                ragshift_store::StoreErrorKind::Connect,
                "the journal connections were shut down",
            )
        })?;
        loop {
            let c = self.idle.lock().ok().and_then(|mut v| v.pop());
            match c {
                Some(c) if !c.is_closed() => return Ok((c, permit)),
                Some(_) => continue,
                None => {
                    let c = connect(&self.target, "ragshift ecs executor").await?;
                    return Ok((c, permit));
                }
            }
        }
    }

    fn give(&self, c: Client, _permit: SemaphorePermit<'_>) {
        if c.is_closed() {
            return;
        }
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < CONNECTIONS {
                v.push(c);
            }
        }
    }

    /// The unit of `bot_id` in run `run_id`, if it was queued.
    pub(super) async fn unit(
        &self,
        journal: &Journal,
        run_id: &str,
        bot_id: &str,
    ) -> Result<Option<UnitView>, StoreError> {
        let (c, permit) = self.take().await?;
        let row = c
            .query_opt(
                &*format!(
                    "SELECT status, attempts, row_count, error, detail
                       FROM {} WHERE run_id = $1 AND unit_id = $2",
                    journal.units_table()
                ),
                &[&run_id, &bot_id],
            )
            .await
            .map_err(|e| StoreError::query(format!("reading the journal row of bot {bot_id}"), e));
        self.give(c, permit);
        Ok(row?.map(|r| UnitView {
            status: Status::parse(r.get(0)).unwrap_or(Status::Queued),
            attempts: r.get(1),
            row_count: r.get(2),
            error: r.get(3),
            detail: r.get(4),
        }))
    }

    /// Records that the bot failed for `reason`, counting the attempt if the worker never did.
    pub(super) async fn record_failure(
        &self,
        job: &BotJob,
        reason: &str,
        task: Option<&StoppedTask>,
        attempts_before: i32,
    ) -> Result<(), StoreError> {
        let bot_id = &job.bot.key.bot_id;
        let (mut c, permit) = self.take().await?;
        let result = async {
            let tx = c.transaction().await.map_err(|e| {
                StoreError::query(format!("recording the failure of bot {bot_id}"), e)
            })?;
            let attempts: Option<i32> = tx
                .query_opt(
                    &*format!(
                        "SELECT attempts FROM {} WHERE run_id = $1 AND unit_id = $2 FOR UPDATE",
                        job.journal.units_table()
                    ),
                    &[&job.run_id, bot_id],
                )
                .await
                .map_err(|e| {
                    StoreError::query(format!("reading the journal row of bot {bot_id}"), e)
                })?
                .map(|r| r.get(0));
            if attempts.is_some_and(|a| a <= attempts_before) {
                job.journal
                    .mark_running(&tx, &job.run_id, bot_id, Some(&job.exec_id))
                    .await?;
            }
            let detail = task.map(|t| {
                json!({ "ecs_task": {
                    "arn": t.arn, "stop_code": t.stop_code, "stopped_reason": t.stopped_reason,
                    "exit_code": t.exit_code, "container_reason": t.container_reason,
                }})
            });
            let result = UnitResult {
                error: Some(reason.to_owned()),
                detail,
                ..UnitResult::default()
            };
            job.journal
                .mark_finished(&tx, &job.run_id, bot_id, Status::Failed, &result)
                .await?;
            tx.commit()
                .await
                .map_err(|e| StoreError::query(format!("recording the failure of bot {bot_id}"), e))
        }
        .await;
        self.give(c, permit);
        result
    }

    /// Characters stored for the bot (what its embedding was paid for), when the worker's
    /// journal row doesn't say.
    pub(super) async fn bot_chars(&self, bot_id: &str) -> Result<usize, StoreError> {
        let (c, permit) = self.take().await?;
        let row = self.rows.bot_chars(&c, bot_id).await;
        self.give(c, permit);
        let n: i64 = row?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
