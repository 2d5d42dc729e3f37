//! One rebuild run: lock the target, journal every bot, run at most N jobs at once through the
//! executor, skip bots a resumed run already finished, build the vector index once at the end,
//! and report honestly.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use ragshift_embed::Throttled;
use ragshift_model::Bot;
use ragshift_store::budget::BudgetReport;
use ragshift_store::index::{ensure_vector_index_with, IndexOutcome, VectorIndex};
use ragshift_store::index_build::IndexBuildOptions;
use ragshift_store::journal::{Journal, ResumeCandidate, Status};
use ragshift_store::lock::TargetLock;
use ragshift_store::{connect, ConnectSpec, Layout, StoreError};
use serde::Serialize;

use crate::budget::JournalBudget;
use crate::events::{BotFinished, Event, Observer};
use crate::executor::Executor;
use crate::worker::BotJob;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Resume this run (its succeeded bots are skipped); `None` resumes an unfinished run with
    /// the same selection and settings younger than `resume_window` if there is one, else
    /// starts a new run.
    pub resume: Option<String>,
    /// Start a new run even when an unfinished one could be resumed.
    pub fresh: bool,
    /// How old an unfinished run may be and still be resumed without `resume`.
    pub resume_window: Duration,
    /// What the result depends on besides the selection (registry, documents, model): recorded
    /// with the run; a run is only resumed by one with equal settings.
    pub settings: serde_json::Value,
    /// Jobs at once.
    pub concurrency: usize,
    /// Load and split only: no lock, no journal, no writes.
    pub dry_run: bool,
    /// What was selected (`--bot`/`--user`), recorded with the run and used to find a run to
    /// resume.
    pub selection: serde_json::Value,
    /// The vector index built after the last bot if none exists (`None`: don't build).
    pub index: Option<VectorIndex>,
    /// Memory, parallel workers and progress reports for that build (`[index]`).
    pub index_build: IndexBuildOptions,
    /// The run journal in the target (`[run] journal_schema`); every worker records its bot
    /// there (ECS tasks are told its schema).
    pub journal: Journal,
    /// The embedder of this process's workers (a local run), which joins the run's budget in
    /// the journal once the run is there, so that every process embedding for the run id
    /// shares the configured limits. `None` when the workers are ECS tasks (they join the
    /// budget themselves) or for a dry run.
    pub embedder: Option<Arc<Throttled>>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// The run's embedding budget, all its workers together: calls, throttles and how much of
    /// the configured limit was used (`None`: no rate limit was configured, or a dry run).
    pub budget: Option<BudgetReport>,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Whether an earlier unfinished run was resumed.
    pub resumed: bool,
    /// The run resumed: its id, when it started and how old it is.
    pub resumed_from: Option<ResumedRun>,
    /// Why an unfinished run with the same selection was not resumed (a new run was started).
    pub fresh_reason: Option<String>,
    /// Bots that had succeeded in the resumed run and are redone because their knowledge or
    /// chunking changed since.
    pub changed: Vec<String>,
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

/// The run a rebuild continues.
#[derive(Debug, Clone, Serialize)]
pub struct ResumedRun {
    /// Its id.
    pub run_id: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Seconds since it started.
    pub age_seconds: f64,
}

/// How a rebuild run names itself as the target lock's holder; its workers (in this process or
/// in ECS tasks) check that this holder still has the lock before they commit a bot.
pub fn lock_holder(run_id: &str) -> String {
    format!("rebuild run {run_id}")
}

/// Why a run stopped: before it started (nothing was done), or during it (the journal records
/// the run `failed` with this error).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The target could not be prepared or locked, or the journal not written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--resume` named a run that doesn't exist, isn't a rebuild, or was made with other
    /// settings.
    #[error("{0}")]
    Resume(String),
    /// The run had started (bots may have been written) when this stopped it.
    #[error("run {run_id} stopped: {error}; the journal records it as failed, run the same command again to continue")]
    Run {
        /// The run.
        run_id: String,
        /// What stopped it.
        #[source]
        error: StoreError,
    },
    /// The run had started when it was told to stop (Ctrl-C, SIGTERM); the journal records it
    /// as failed and bots in progress keep their old rows.
    #[error("run {run_id} was interrupted: bots in progress keep their old rows; run the same command again (or --resume {run_id}) to continue")]
    Interrupted {
        /// The run.
        run_id: String,
    },
}

impl RebuildError {
    /// Whether the run had started (something may have been written) when this happened.
    pub fn work_started(&self) -> bool {
        matches!(self, Self::Run { .. } | Self::Interrupted { .. })
    }
}

/// The settings that differ between a recorded run and this one, as `key: was → now`.
fn settings_differences(was: Option<&serde_json::Value>, now: &serde_json::Value) -> Vec<String> {
    let Some(was) = was else {
        return vec!["the run recorded no settings (an older ragshift)".to_owned()];
    };
    let (Some(w), Some(n)) = (was.as_object(), now.as_object()) else {
        return (was != now)
            .then(|| format!("settings: {was} → {now}"))
            .into_iter()
            .collect();
    };
    let mut keys: Vec<&String> = w.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| w.get(*k) != n.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| {
                v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
            };
            format!("{k}: {} → {}", show(w.get(k)), show(n.get(k)))
        })
        .collect()
}

/// A duration for humans: `45s`, `12m`, `3h05m`, `2d4h`.
pub fn human_age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// What a bot's result depends on in the registry: its knowledge and chunking. A bot whose
/// fingerprint changed since it succeeded in a resumed run is redone.
pub fn bot_fingerprint(bot: &Bot) -> String {
    use sha2::Digest;
    let value = serde_json::json!({
        "knowledge": bot.knowledge,
        "embedding_params": bot.embedding_params,
    });
    let digest = sha2::Sha256::digest(value.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
        self.run_until(bots, skipped, options, observer, std::future::pending())
            .await
    }

    /// [`Rebuild::run`], stopped when `stop` completes (a signal): jobs in progress are
    /// aborted (their bots keep their old rows) and the journal records the run as failed, so
    /// it never stays `running` after its process is gone.
    pub async fn run_until(
        &self,
        bots: Vec<Bot>,
        skipped: usize,
        options: &RebuildOptions,
        observer: &dyn Observer,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<RunReport, RebuildError> {
        let started = Instant::now();
        if options.dry_run {
            let run_id = format!("dry-run-{}", ulid::Ulid::new());
            let results = self.run_jobs(&run_id, bots, options, observer).await;
            let failed = results.iter().filter(|b| !b.succeeded()).count();
            let report = RunReport {
                run_id: run_id.clone(),
                budget: None,
                dry_run: true,
                resumed: false,
                resumed_from: None,
                fresh_reason: None,
                changed: Vec::new(),
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
        options.journal.ensure_schema(&client).await?;
        let target = format!("{}/{}", self.target.label(), self.layout.display_name());
        let (run_id, resumed_from, fresh_reason) =
            self.choose_run(&client, &target, options).await?;
        let lock = TargetLock::acquire(&self.target, &self.layout, &lock_holder(&run_id)).await?;
        match (&resumed_from, &fresh_reason) {
            (Some(r), _) => tracing::info!(
                "resuming run {run_id}, started {} ago ({}): bots that succeeded in it with the same knowledge are skipped; --fresh starts a new run",
                human_age(r.age_seconds),
                r.started_at
            ),
            (None, Some(why)) => tracing::info!("starting a new run {run_id}: {why}"),
            (None, None) => tracing::info!("starting a new run {run_id}"),
        }
        let interrupted = options
            .journal
            .fail_interrupted_runs(&client, "rebuild", &target, &run_id)
            .await?;
        if interrupted > 0 {
            tracing::info!("{interrupted} earlier run(s) on this target had been interrupted; recorded as failed");
        }
        options
            .journal
            .start_run(&client, &run_id, "rebuild", &target, &options.selection)
            .await?;
        if let Some(embedder) = &options.embedder {
            let limit = embedder.rate_limit().clone();
            if limit.requests.is_some() || limit.tokens.is_some() {
                let budget =
                    JournalBudget::join(&self.target, &options.journal, &run_id, &limit).await?;
                embedder.join_budget(budget);
            }
        }
        // From here on the run has started: whatever stops it is recorded in the journal.
        let work = self.run_started(
            &client,
            &run_id,
            bots,
            skipped,
            options,
            observer,
            (started, resumed_from, fresh_reason),
        );
        let outcome = tokio::select! {
            outcome = work => outcome,
            () = stop => {
                self.executor.abort("ragshift rebuild was interrupted").await;
                if let Err(e) = options.journal.fail_run(&client, &run_id, "interrupted (Ctrl-C or SIGTERM)").await {
                    tracing::error!("could not record the interruption of run {run_id}: {e}");
                }
                return Err(RebuildError::Interrupted { run_id });
            }
        };
        match outcome {
            Ok(report) => {
                lock.release().await.map_err(|error| RebuildError::Run {
                    run_id: run_id.clone(),
                    error,
                })?;
                Ok(report)
            }
            Err(error) => {
                if let Err(e) = options
                    .journal
                    .fail_run(&client, &run_id, &error.to_string())
                    .await
                {
                    tracing::error!("could not record the failure of run {run_id}: {e}");
                }
                Err(RebuildError::Run { run_id, error })
            }
        }
    }

    /// The run to continue or start: `--resume`, else an unfinished run with the same
    /// selection and settings younger than the window, else a new one (with why, when an
    /// unfinished one was passed over).
    async fn choose_run(
        &self,
        client: &tokio_postgres::Client,
        target: &str,
        options: &RebuildOptions,
    ) -> Result<(String, Option<ResumedRun>, Option<String>), RebuildError> {
        let resumed = |c: &ResumeCandidate| ResumedRun {
            run_id: c.run_id.clone(),
            started_at: c.started_at.clone(),
            age_seconds: c.age_seconds,
        };
        if let Some(id) = &options.resume {
            let kind = options.journal.run_kind(client, id).await?;
            match kind.as_deref() {
                Some("rebuild") => {}
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
            }
            let Some(c) = options.journal.run_settings(client, id).await? else {
                return Err(RebuildError::Resume(format!("run {id} vanished")));
            };
            let diff = settings_differences(c.settings.as_ref(), &options.settings);
            if c.settings.is_some() && !diff.is_empty() {
                return Err(RebuildError::Resume(format!(
                    "run {id} was made with other settings ({}): its bots would mix with this run's; start a new run with --fresh",
                    diff.join("; ")
                )));
            }
            return Ok((id.clone(), Some(resumed(&c)), None));
        }
        let new_id = || ulid::Ulid::new().to_string();
        let same = options
            .journal
            .resumable_run(
                client,
                "rebuild",
                target,
                &options.selection,
                Some(&options.settings),
            )
            .await?;
        let Some(c) = same else {
            // An unfinished run with this selection but other settings is not resumed: say so.
            let other = options
                .journal
                .resumable_run(client, "rebuild", target, &options.selection, None)
                .await?;
            let why = other.map(|o| {
                format!(
                    "the unfinished run {} with the same selection was made with other settings ({}), so it is not resumed",
                    o.run_id,
                    settings_differences(o.settings.as_ref(), &options.settings).join("; ")
                )
            });
            return Ok((new_id(), None, why));
        };
        if options.fresh {
            return Ok((
                new_id(),
                None,
                Some(format!(
                    "--fresh: the unfinished run {} ({}, started {} ago) is not resumed",
                    c.run_id,
                    c.status,
                    human_age(c.age_seconds)
                )),
            ));
        }
        let window = options.resume_window.as_secs_f64();
        if c.age_seconds > window {
            return Ok((
                new_id(),
                None,
                Some(format!(
                    "the unfinished run {} started {} ago, longer than the resume window of {}; `--resume {}` continues it anyway",
                    c.run_id,
                    human_age(c.age_seconds),
                    human_age(window),
                    c.run_id
                )),
            ));
        }
        Ok((c.run_id.clone(), Some(resumed(&c)), None))
    }

    /// The run once it is recorded: queue, skip what is done, run the rest, build the index,
    /// record the end.
    #[allow(clippy::too_many_arguments)]
    async fn run_started(
        &self,
        client: &tokio_postgres::Client,
        run_id: &str,
        bots: Vec<Bot>,
        skipped: usize,
        options: &RebuildOptions,
        observer: &dyn Observer,
        (started, resumed_from, fresh_reason): (Instant, Option<ResumedRun>, Option<String>),
    ) -> Result<RunReport, StoreError> {
        options
            .journal
            .set_run_settings(client, run_id, &options.settings)
            .await?;
        let before = options.journal.units(client, run_id).await?;
        let units: Vec<(String, Option<String>, String)> = bots
            .iter()
            .map(|b| {
                (
                    b.key.bot_id.clone(),
                    Some(b.key.user_id.clone()),
                    bot_fingerprint(b),
                )
            })
            .collect();
        // Bots that succeeded earlier in this run but whose knowledge changed since: redone.
        let changed: Vec<String> = units
            .iter()
            .filter(|(id, _, print)| {
                before.iter().any(|u| {
                    &u.unit_id == id
                        && u.status == Status::Succeeded
                        && u.fingerprint.as_deref() != Some(print.as_str())
                })
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        for id in &changed {
            tracing::info!(
                "bot {id} changed in the registry since it succeeded in run {run_id}: it is redone"
            );
        }
        options
            .journal
            .queue_fingerprinted_units(client, run_id, "bot", &units)
            .await?;
        let wanted: HashSet<String> = bots.iter().map(|b| b.key.bot_id.clone()).collect();
        // Units of the run no longer selected (gone from the registry, no knowledge now).
        let gone: Vec<String> = before
            .iter()
            .filter(|u| !wanted.contains(&u.unit_id) && u.status != Status::Succeeded)
            .map(|u| u.unit_id.clone())
            .collect();
        if !gone.is_empty() {
            options
                .journal
                .skip_units(
                    client,
                    run_id,
                    &gone,
                    "no longer selected: gone from the registry or without knowledge",
                )
                .await?;
        }
        let done: HashSet<String> = options
            .journal
            .units(client, run_id)
            .await?
            .into_iter()
            .filter(|u| u.status == Status::Succeeded)
            .map(|u| u.unit_id)
            .collect();
        let already_done = done.iter().filter(|d| wanted.contains(*d)).count();
        let todo: Vec<Bot> = bots
            .into_iter()
            .filter(|b| !done.contains(&b.key.bot_id))
            .collect();

        let results = self.run_jobs(run_id, todo, options, observer).await;
        if let Some(embedder) = &options.embedder {
            embedder.flush_budget().await;
        }
        let budget = match options.journal.budget_report(client, run_id).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("could not read the run's embedding budget: {e}");
                None
            }
        };

        let mut index_built = None;
        if let Some(index) = options.index {
            let mut c = connect(&self.target, "ragshift rebuild index").await?;
            match ensure_vector_index_with(
                &mut c,
                Some(&self.target),
                &self.layout,
                index,
                &options.index_build,
            )
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

        let final_units = options.journal.units(client, run_id).await?;
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
            run_id: run_id.to_owned(),
            budget,
            dry_run: false,
            resumed: resumed_from.is_some(),
            resumed_from,
            fresh_reason,
            changed,
            succeeded,
            failed,
            skipped,
            already_done,
            bots: results,
            index_built,
            seconds: started.elapsed().as_secs_f64(),
        };
        // A run holding any unit that didn't succeed (failed, or never finished) has failed.
        let status = if final_units
            .iter()
            .all(|u| matches!(u.status, Status::Succeeded | Status::Skipped))
        {
            Status::Succeeded
        } else {
            Status::Failed
        };
        let summary = serde_json::to_value(&report).unwrap_or(serde_json::Value::Null);
        let why = (status == Status::Failed).then(|| {
            format!(
                "{} of {} bots failed (see the run's units)",
                in_run.len() - succeeded,
                in_run.len()
            )
        });
        options
            .journal
            .finish_run(client, run_id, status, &summary, why.as_deref())
            .await?;
        observer.event(&Event::RunFinished {
            run_id: run_id.to_owned(),
            succeeded,
            failed,
            skipped,
        });
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
                    journal: options.journal.clone(),
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
