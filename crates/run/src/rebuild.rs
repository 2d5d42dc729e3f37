//! One rebuild run: lock the target, journal every bot, run at most N jobs at once through the
//! executor, skip bots a resumed run already finished, build the vector index once at the end,
//! and report honestly.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use ragshift_model::Bot;
use ragshift_store::index::{ensure_vector_index, IndexOutcome, VectorIndex};
use ragshift_store::journal::{self, Status};
use ragshift_store::lock::TargetLock;
use ragshift_store::{connect, ConnectSpec, Layout, StoreError};
use serde::Serialize;

use crate::events::{BotFinished, Event, Observer};
use crate::executor::Executor;
use crate::worker::BotJob;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Resume this run (its succeeded bots are skipped); `None` resumes an unfinished run with
    /// the same selection if there is one, else starts a new run.
    pub resume: Option<String>,
    /// Jobs at once.
    pub concurrency: usize,
    /// Load and split only: no lock, no journal, no writes.
    pub dry_run: bool,
    /// What was selected (`--bot`/`--user`), recorded with the run and used to find a run to
    /// resume.
    pub selection: serde_json::Value,
    /// The vector index built after the last bot if none exists (`None`: don't build).
    pub index: Option<VectorIndex>,
    /// `maintenance_work_mem` for that build.
    pub maintenance_work_mem: String,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Whether an earlier unfinished run was resumed.
    pub resumed: bool,
    /// Bots in the run that have succeeded (now or in an earlier attempt of the run).
    pub succeeded: usize,
    /// Bots that failed.
    pub failed: usize,
    /// Bots skipped: nothing to embed.
    pub skipped: usize,
    /// Bots not run again because an earlier attempt of this run succeeded.
    pub already_done: usize,
    /// Results of the bots run now.
    pub bots: Vec<BotFinished>,
    /// The vector index built at the end, if one was.
    pub index_built: Option<String>,
    /// Wall time.
    pub seconds: f64,
}

/// Why a run could not start (nothing was done).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The target could not be prepared or locked, or the journal not written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--resume` named a run that doesn't exist or isn't a rebuild.
    #[error("{0}")]
    Resume(String),
}

/// A rebuild over one target.
pub struct Rebuild {
    target: ConnectSpec,
    layout: Layout,
    executor: Arc<dyn Executor>,
}

impl Rebuild {
    /// A rebuild writing `layout` on `target` through `executor`.
    pub fn new(target: ConnectSpec, layout: Layout, executor: Arc<dyn Executor>) -> Self {
        Self {
            target,
            layout,
            executor,
        }
    }

    /// Runs the jobs for `bots` (all with knowledge; `skipped` counts those without).
    pub async fn run(
        &self,
        bots: Vec<Bot>,
        skipped: usize,
        options: &RebuildOptions,
        observer: &dyn Observer,
    ) -> Result<RunReport, RebuildError> {
        let started = Instant::now();
        if options.dry_run {
            let run_id = format!("dry-run-{}", ulid::Ulid::new());
            let results = self.run_jobs(&run_id, bots, options, observer).await;
            let failed = results.iter().filter(|b| !b.succeeded()).count();
            let report = RunReport {
                run_id: run_id.clone(),
                dry_run: true,
                resumed: false,
                succeeded: results.len() - failed,
                failed,
                skipped,
                already_done: 0,
                bots: results,
                index_built: None,
                seconds: started.elapsed().as_secs_f64(),
            };
            observer.event(&Event::RunFinished {
                run_id,
                succeeded: report.succeeded,
                failed,
                skipped,
            });
            return Ok(report);
        }

        let client = connect(&self.target, "ragshift rebuild").await?;
        journal::ensure_schema(&client).await?;
        let target = format!("{}/{}", self.target.label(), self.layout.display_name());
        let (run_id, resumed) = match &options.resume {
            Some(id) => match journal::run_kind(&client, id).await? {
                Some(kind) if kind == "rebuild" => (id.clone(), true),
                Some(kind) => {
                    return Err(RebuildError::Resume(format!(
                        "run {id} is a {kind} run, not a rebuild"
                    )))
                }
                None => {
                    return Err(RebuildError::Resume(format!(
                        "no run {id} in the journal of {target}; see `ragshift status`"
                    )))
                }
            },
            None => match journal::resumable_run(&client, "rebuild", &target, &options.selection)
                .await?
            {
                Some(id) => (id, true),
                None => (ulid::Ulid::new().to_string(), false),
            },
        };
        let lock =
            TargetLock::acquire(&self.target, &self.layout, &format!("rebuild run {run_id}"))
                .await?;
        if resumed {
            tracing::info!("resuming run {run_id}: bots that succeeded are skipped");
        }
        journal::start_run(&client, &run_id, "rebuild", &target, &options.selection).await?;
        let units: Vec<(String, Option<String>)> = bots
            .iter()
            .map(|b| (b.key.bot_id.clone(), Some(b.key.user_id.clone())))
            .collect();
        journal::queue_units(&client, &run_id, "bot", &units).await?;
        let done: HashSet<String> = journal::units(&client, &run_id)
            .await?
            .into_iter()
            .filter(|u| u.status == Status::Succeeded)
            .map(|u| u.unit_id)
            .collect();
        let wanted: HashSet<String> = bots.iter().map(|b| b.key.bot_id.clone()).collect();
        let already_done = done.iter().filter(|d| wanted.contains(*d)).count();
        let todo: Vec<Bot> = bots
            .into_iter()
            .filter(|b| !done.contains(&b.key.bot_id))
            .collect();

        let results = self.run_jobs(&run_id, todo, options, observer).await;

        let mut index_built = None;
        if let Some(index) = options.index {
            let mut c = connect(&self.target, "ragshift rebuild index").await?;
            match ensure_vector_index(&mut c, &self.layout, index, &options.maintenance_work_mem)
                .await
            {
                Ok(IndexOutcome::Built {
                    definition,
                    elapsed,
                }) => {
                    tracing::info!("built the vector index in {:.1}s", elapsed.as_secs_f64());
                    index_built = Some(definition);
                }
                Ok(IndexOutcome::Present(_)) => {}
                Err(e) => tracing::error!(
                    "could not build the vector index: {e}; run `ragshift build-index` later"
                ),
            }
        }

        let final_units = journal::units(&client, &run_id).await?;
        let in_run: Vec<_> = final_units
            .iter()
            .filter(|u| wanted.contains(&u.unit_id))
            .collect();
        let succeeded = in_run
            .iter()
            .filter(|u| u.status == Status::Succeeded)
            .count();
        let failed = in_run.len() - succeeded;
        let report = RunReport {
            run_id: run_id.clone(),
            dry_run: false,
            resumed,
            succeeded,
            failed,
            skipped,
            already_done,
            bots: results,
            index_built,
            seconds: started.elapsed().as_secs_f64(),
        };
        let status = if failed == 0 {
            Status::Succeeded
        } else {
            Status::Failed
        };
        let summary = serde_json::to_value(&report).unwrap_or(serde_json::Value::Null);
        journal::finish_run(&client, &run_id, status, &summary).await?;
        observer.event(&Event::RunFinished {
            run_id,
            succeeded,
            failed,
            skipped,
        });
        lock.release().await?;
        Ok(report)
    }

    async fn run_jobs(
        &self,
        run_id: &str,
        bots: Vec<Bot>,
        options: &RebuildOptions,
        observer: &dyn Observer,
    ) -> Vec<BotFinished> {
        observer.event(&Event::RunStarted {
            run_id: run_id.to_owned(),
            bots: bots.len(),
        });
        let exec_id = format!("ragshift-{run_id}");
        stream::iter(bots)
            .map(|bot| {
                let job = BotJob {
                    run_id: run_id.to_owned(),
                    exec_id: exec_id.clone(),
                    bot,
                };
                async move {
                    observer.event(&Event::BotStarted {
                        bot_id: job.bot.key.bot_id.clone(),
                        user_id: job.bot.key.user_id.clone(),
                    });
                    let finished = self.executor.run(job, observer).await;
                    observer.event(&Event::BotFinished(finished.clone()));
                    finished
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await
    }
}
