//! One ECS task per bot: the platform's own way of re-embedding, made safe to run at 2 a.m.
//!
//! Each job starts one task of the embedding task definition (`RunTask`, FARGATE or a capacity
//! provider strategy, awsvpc networking) whose container runs `ragshift embed-bot --run-id R
//! --exec-id E KEYS` ([`run_task`]); one shared poller watches every task in flight with
//! batched `DescribeTasks` ([`watch`]); when a task stops, the bot's journal row, written by the
//! worker in the same transaction as the bot's rows, decides the result, and the task's stop
//! code, exit code and reason explain workers that died before writing it ([`verdict`]).
//!
//! Guarantees:
//! - never more than [`EcsOptions::max_in_flight`] tasks started and not yet seen STOPPED, even if
//!   the caller runs more jobs at once (a semaphore held until the task stopped; after a
//!   StopTask, for at most [`EcsOptions::stop_wait`], longer than the 2 minutes Fargate gives a
//!   container to exit);
//! - `failures` in the RunTask answer and retryable errors (throttling, 5xx, network) are retried
//!   under [`EcsOptions::retry`] (`[retry]`: backoff with jitter within a time budget; the SDK's
//!   own retries are off, so attempts are never multiplied), then the bot fails with the last
//!   reason; failed DescribeTasks rounds are paced by the same policy;
//! - a bot running longer than [`EcsOptions::timeout`] has its task stopped and fails with
//!   "timed out after Ns" (unless its journal row shows it committed in the meantime);
//! - a bot whose task died is recorded as failed in the journal by the executor, and, with status
//!   updates on, set to FAILED in the registry if this run still owns it (`LastExecId`), so no
//!   bot is left spinning in RUNNING.

mod run_task;
mod unit;
mod verdict;
mod watch;

use std::collections::HashSet;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ragshift_config::ExecutorConfig;
use ragshift_model::SyncStatus;
use ragshift_registry::{Registry, RegistryError, StatusUpdate};
use ragshift_retry::Policy;
use ragshift_store::{BotRows, ConnectSpec};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::events::{BotFinished, Observer};
use crate::executor::Executor;
use crate::worker::BotJob;

pub use run_task::worker_command;
use unit::JournalAccess;
use verdict::Verdict;
use watch::TaskWatch;

/// One item of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityProvider {
    /// `FARGATE`, `FARGATE_SPOT` or a cluster's own provider.
    pub name: String,
    /// Relative share of tasks.
    pub weight: i32,
    /// Tasks placed on this provider first.
    pub base: i32,
}

impl std::str::FromStr for CapacityProvider {
    type Err = String;

    /// Parses `NAME[:WEIGHT[:BASE]]` (weight 1 and base 0 by default).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.trim().split(':');
        let name = parts.next().unwrap_or_default().trim();
        if name.is_empty() {
            return Err(format!(
                "capacity provider `{s}` has no name; write NAME[:WEIGHT[:BASE]], e.g. FARGATE_SPOT:3"
            ));
        }
        let number = |what: &str, v: Option<&str>, default: i32| -> Result<i32, String> {
            match v {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        format!("capacity provider `{s}`: {what} `{v}` is not a whole number >= 0")
                    }),
            }
        };
        let weight = number("weight", parts.next(), 1)?;
        let base = number("base", parts.next(), 0)?;
        if parts.next().is_some() {
            return Err(format!(
                "capacity provider `{s}` has too many parts; write NAME[:WEIGHT[:BASE]]"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            weight,
            base,
        })
    }
}

/// How the ECS executor starts and watches tasks.
#[derive(Debug, Clone)]
pub struct EcsOptions {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Task definition (family, family:revision or ARN).
    pub task_definition: String,
    /// Container whose command is overridden.
    pub container: String,
    /// Subnets of the tasks (awsvpc).
    pub subnets: Vec<String>,
    /// Security groups of the tasks (awsvpc).
    pub security_groups: Vec<String>,
    /// `assignPublicIp: ENABLED` (needed in public subnets without NAT to reach AWS APIs).
    pub assign_public_ip: bool,
    /// Command starting the worker in the image (`["embed-bot"]` with ragshift's image).
    pub command_prefix: Vec<String>,
    /// Extra worker flags placed before the keys (`--no-status-updates`, `--allow-partial`).
    pub worker_args: Vec<String>,
    /// Capacity provider strategy; empty: launch type FARGATE.
    pub capacity_providers: Vec<CapacityProvider>,
    /// Most tasks started and not yet seen STOPPED.
    pub max_in_flight: usize,
    /// Wall time a bot may take, from its RunTask to its task stopping.
    pub timeout: Duration,
    /// Time between two DescribeTasks rounds.
    pub poll_interval: Duration,
    /// How RunTask is retried per bot, and how failed DescribeTasks rounds are paced and when
    /// the poller gives up on them (`[retry]`).
    pub retry: Policy,
    /// How long to wait for a task to reach STOPPED after StopTask.
    pub stop_wait: Duration,
}

/// The `[executor]` settings are incomplete or wrong for ECS.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EcsConfigError(pub String);

impl EcsOptions {
    /// Options from `[executor]` (after CloudFormation discovery filled what it could).
    pub fn from_config(c: &ExecutorConfig) -> Result<Self, EcsConfigError> {
        let missing = |key: &str, env: &str, what: &str| {
            EcsConfigError(format!(
                "the ECS executor needs [executor] {key} ({what}): set it in the config file or \
                 {env}, or name the platform's CloudFormation stack with --stack / [aws] stack so \
                 it is read from the stack's outputs"
            ))
        };
        let cluster = c
            .cluster
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing("cluster", "RAGSHIFT_EXECUTOR_CLUSTER", "the ECS cluster"))?;
        let task_definition = c
            .task_definition
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                missing(
                    "task_definition",
                    "RAGSHIFT_EXECUTOR_TASK_DEFINITION",
                    "the embedding task definition",
                )
            })?;
        if c.subnets.is_empty() {
            return Err(missing(
                "subnets",
                "RAGSHIFT_EXECUTOR_SUBNETS",
                "subnets for the tasks' network interfaces",
            ));
        }
        if c.container.trim().is_empty() {
            return Err(EcsConfigError(
                "[executor] container is empty: name the container of the task definition that \
                 runs ragshift (the platform's is `Container`)"
                    .to_owned(),
            ));
        }
        if c.command_prefix.is_empty() {
            return Err(EcsConfigError(
                "[executor] command_prefix is empty: use [\"embed-bot\"] with ragshift's image \
                 (ENTRYPOINT ragshift), or [\"ragshift\", \"embed-bot\"] with an image without it"
                    .to_owned(),
            ));
        }
        if c.timeout_secs == 0 {
            return Err(EcsConfigError(
                "[executor] timeout_secs is 0: give bots at least a few minutes".to_owned(),
            ));
        }
        let capacity_providers = c
            .capacity_providers
            .iter()
            .map(|s| s.parse::<CapacityProvider>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EcsConfigError(format!("[executor] capacity_providers: {e}")))?;
        Ok(Self {
            cluster,
            task_definition,
            container: c.container.clone(),
            subnets: c.subnets.clone(),
            security_groups: c.security_groups.clone(),
            assign_public_ip: c.assign_public_ip,
            command_prefix: c.command_prefix.clone(),
            worker_args: Vec::new(),
            capacity_providers,
            max_in_flight: c.concurrency.max(1),
            timeout: Duration::from_secs(c.timeout_secs),
            poll_interval: Duration::from_millis(c.poll_interval_ms.max(100)),
            retry: Policy::default(),
            stop_wait: Duration::from_secs(180),
        })
    }
}

/// Runs each bot's job as one ECS task and judges it by the journal row its worker writes.
pub struct EcsExecutor {
    ecs: aws_sdk_ecs::Client,
    options: Arc<EcsOptions>,
    journal: JournalAccess,
    registry: Option<Arc<dyn Registry>>,
    slots: Arc<Semaphore>,
    watch: TaskWatch,
    in_flight: StdMutex<HashSet<String>>,
}

impl EcsExecutor {
    /// An executor starting tasks with `sdk`'s credentials and region; `target` is the
    /// database whose journal the workers write (the same one the run uses), `rows` the chunk
    /// table they write and how it keeps bots.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        options: EcsOptions,
        target: ConnectSpec,
        rows: BotRows,
    ) -> Self {
        // Every RunTask/DescribeTasks attempt is one request: the SDK's own retries are off.
        let ecs = aws_sdk_ecs::Client::new(&ragshift_aws::retry::without_sdk_retries(sdk));
        let options = Arc::new(options);
        Self {
            watch: TaskWatch::new(ecs.clone(), options.clone()),
            slots: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            journal: JournalAccess::new(target, rows),
            registry: None,
            in_flight: StdMutex::new(HashSet::new()),
            ecs,
            options,
        }
    }

    /// Sets FAILED in `registry` for bots whose task died (only where this run still owns the
    /// bot); without it, such bots keep the RUNNING their worker set and `ragshift status`
    /// reports them as stale.
    pub fn with_status_updates(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The options in force.
    pub fn options(&self) -> &EcsOptions {
        &self.options
    }

    /// Tasks started and not yet seen STOPPED (their ARNs).
    pub fn tasks_in_flight(&self) -> Vec<String> {
        self.in_flight
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    async fn run_job(&self, job: &BotJob, observer: &dyn Observer) -> BotFinished {
        let started = Instant::now();
        let bot_id = &job.bot.key.bot_id;
        // The slot is held until the task is seen STOPPED (or given up on after StopTask).
        let Ok(_slot) = self.slots.acquire().await else {
            return BotFinished::new(
                &job.bot.key,
                Err("the ECS executor was shut down".to_owned()),
                Vec::new(),
                started,
            );
        };
        let before = match self.journal.unit(&job.journal, &job.run_id, bot_id).await {
            Ok(u) => u.map(|u| u.attempts).unwrap_or(0),
            Err(e) => {
                return BotFinished::new(
                    &job.bot.key,
                    Err(format!(
                        "cannot read the run journal before starting the task: {e}"
                    )),
                    Vec::new(),
                    started,
                )
            }
        };
        let arn = match run_task::start(&self.ecs, &self.options, job).await {
            Ok(arn) => arn,
            Err(reason) => {
                let v = Verdict::Failed {
                    reason,
                    record: true,
                    task: None,
                    sources: Vec::new(),
                };
                return self.conclude(job, v, before, observer, started).await;
            }
        };
        tracing::info!(bot = %bot_id, task = %arn, "started ECS task");
        self.track(&arn, true);
        let stopped = self.wait(&arn, bot_id).await;
        self.track(&arn, false);
        let unit = match self.journal.unit(&job.journal, &job.run_id, bot_id).await {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(bot = %bot_id, "cannot read the journal after the task: {e}");
                None
            }
        };
        let v = verdict::judge(unit.as_ref(), before, &arn, &stopped);
        self.conclude(job, v, before, observer, started).await
    }

    /// Waits for the task to stop, stopping it at the time-out.
    async fn wait(&self, arn: &str, bot_id: &str) -> verdict::Ending {
        let mut rx = self.watch.watch(arn.to_owned());
        match tokio::time::timeout(self.options.timeout, &mut rx).await {
            Ok(r) => {
                let ending = verdict::Ending::from_watch(r);
                if let verdict::Ending::Lost(why) = &ending {
                    // Unwatched, the task would run on outside the limit of tasks in flight.
                    let reason = format!("ragshift: bot {bot_id}: {why}");
                    if let Err(e) = run_task::stop(&self.ecs, &self.options, arn, &reason).await {
                        tracing::warn!(bot = %bot_id, "{e}");
                    }
                }
                ending
            }
            Err(_) => {
                let secs = self.options.timeout.as_secs();
                tracing::warn!(bot = %bot_id, task = %arn, "timed out after {secs}s: stopping the task");
                let reason = format!("ragshift: bot {bot_id} timed out after {secs}s");
                if let Err(e) = run_task::stop(&self.ecs, &self.options, arn, &reason).await {
                    tracing::error!(bot = %bot_id, "{e}");
                }
                let after = match tokio::time::timeout(self.options.stop_wait, &mut rx).await {
                    Ok(r) => Some(verdict::Ending::from_watch(r)),
                    Err(_) => None,
                };
                verdict::Ending::TimedOut {
                    after: self.options.timeout,
                    stopped: after.map(Box::new),
                }
            }
        }
    }

    fn track(&self, arn: &str, add: bool) {
        if let Ok(mut s) = self.in_flight.lock() {
            if add {
                s.insert(arn.to_owned());
            } else {
                s.remove(arn);
            }
        }
    }

    /// Records a failure the worker could not record, updates the registry, and reports.
    async fn conclude(
        &self,
        job: &BotJob,
        v: Verdict,
        attempts_before: i32,
        observer: &dyn Observer,
        started: Instant,
    ) -> BotFinished {
        let bot_id = &job.bot.key.bot_id;
        match v {
            Verdict::Succeeded {
                chunks,
                chars,
                warning,
                sources,
            } => {
                let chars = match chars {
                    Some(c) => c,
                    None => self.journal.bot_chars(bot_id).await.unwrap_or_else(|e| {
                        tracing::warn!(bot = %bot_id, "cannot count the bot's characters: {e}");
                        0
                    }),
                };
                if chunks > 0 {
                    observer.chunks_found(chunks as u64);
                    observer.chunks_embedded(chunks as u64);
                }
                if let Some(w) = &warning {
                    tracing::warn!(bot = %bot_id, "{w}");
                }
                BotFinished::new(
                    &job.bot.key,
                    Ok(((chunks, chars), warning)),
                    sources,
                    started,
                )
            }
            Verdict::Failed {
                reason,
                record,
                task,
                sources,
            } => {
                if record {
                    if let Err(e) = self
                        .journal
                        .record_failure(job, &reason, task.as_ref(), attempts_before)
                        .await
                    {
                        tracing::error!(bot = %bot_id, "cannot record the failure in the journal: {e}");
                    }
                    self.set_failed(job, &reason).await;
                }
                BotFinished::new(&job.bot.key, Err(reason), sources, started)
            }
        }
    }

    /// FAILED in the registry, only if this run still owns the bot.
    async fn set_failed(&self, job: &BotJob, reason: &str) {
        let Some(registry) = &self.registry else {
            return;
        };
        let update = StatusUpdate {
            status: SyncStatus::Failed,
            reason: reason.to_owned(),
            exec_id: job.exec_id.clone(),
            expected_exec_id: Some(job.exec_id.clone()),
        };
        match registry.set_status(&job.bot.key, &update).await {
            Ok(_) => {}
            // The worker never set RUNNING for this run, or a newer run owns the bot.
            Err(RegistryError::Stale { .. } | RegistryError::BotGone { .. }) => {}
            Err(e) => {
                tracing::error!(bot = %job.bot.key.bot_id, "cannot set FAILED in the registry: {e}")
            }
        }
    }
}

#[async_trait]
impl Executor for EcsExecutor {
    fn describe(&self) -> String {
        format!(
            "ECS cluster {} (task definition {})",
            self.options.cluster, self.options.task_definition
        )
    }

    async fn run(&self, job: BotJob, observer: &dyn Observer) -> BotFinished {
        let span = tracing::info_span!("bot", bot = %job.bot.key.bot_id);
        self.run_job(&job, observer).instrument(span).await
    }

    async fn abort(&self, reason: &str) {
        let arns = self.tasks_in_flight();
        for arn in &arns {
            if let Err(e) = run_task::stop(&self.ecs, &self.options, arn, reason).await {
                tracing::error!("{e}");
            }
        }
        if !arns.is_empty() {
            tracing::warn!("stopped {} ECS task(s): {reason}", arns.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_providers_parse_with_defaults_and_refuse_nonsense() {
        let p: CapacityProvider = "FARGATE_SPOT:3:1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.name.as_str(), p.weight, p.base), ("FARGATE_SPOT", 3, 1));
        let p: CapacityProvider = "FARGATE".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.weight, p.base), (1, 0));
        assert!("".parse::<CapacityProvider>().is_err());
        assert!("FARGATE:x".parse::<CapacityProvider>().is_err());
        assert!("FARGATE:-1".parse::<CapacityProvider>().is_err());
        assert!("A:1:2:3".parse::<CapacityProvider>().is_err());
    }

    #[test]
    fn options_say_which_key_is_missing_and_how_to_fill_it() {
        let mut c = ExecutorConfig::default();
        let e = EcsOptions::from_config(&c).err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(
            e.contains("[executor] cluster") && e.contains("--stack"),
            "{e}"
        );
        c.cluster = Some("c".into());
        c.task_definition = Some("td".into());
        let e = EcsOptions::from_config(&c).err().map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("subnets"));
        c.subnets = vec!["subnet-1".into()];
        c.capacity_providers = vec!["FARGATE_SPOT:x".into()];
        let e = EcsOptions::from_config(&c).err().map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("capacity_providers"));
        c.capacity_providers = vec!["FARGATE_SPOT:2".into()];
        c.concurrency = 7;
        let o = EcsOptions::from_config(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.max_in_flight, 7);
        assert_eq!(o.command_prefix, vec!["embed-bot"]);
        assert_eq!(o.capacity_providers[0].weight, 2);
    }
}
