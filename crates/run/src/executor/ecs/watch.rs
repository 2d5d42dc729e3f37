//! `DescribeTasks`: one poller watches every task in flight, asking about up to 100 tasks per
//! call once per poll interval, instead of one call per task per tick (which would hit the API's
//! rate limit with a few hundred tasks). Each job registers its task and is told when the task
//! reached STOPPED, with the stop code, reason and the worker container's exit code.
//!
//! Failed rounds (throttling, 5xx, network) are paced by the executor's retry policy, never
//! faster than the poll interval; when they keep failing past the policy's budget (or attempt
//! cap), the jobs are told the tasks can't be watched, and stop them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use aws_sdk_ecs::types::Task;
use ragshift_aws::classify;
use ragshift_retry::{Attempts, Next, Verdict};
use tokio::sync::{mpsc, oneshot};

use super::EcsOptions;

/// Most tasks one DescribeTasks call may name.
const BATCH: usize = 100;
/// Rounds a task may be unknown to ECS (just started: eventual consistency) before it is given
/// up as vanished.
const MISSING_ROUNDS: u32 = 10;

/// How a stopped task ended, as ECS tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoppedTask {
    /// The task.
    pub arn: String,
    /// `EssentialContainerExited`, `TaskFailedToStart`, `UserInitiated`, `SpotInterruption`, …
    pub stop_code: Option<String>,
    /// ECS's explanation ("Essential container in task exited", "CannotPullContainerError: …").
    pub stopped_reason: Option<String>,
    /// Exit code of the worker container, if it ran.
    pub exit_code: Option<i32>,
    /// Why the worker container stopped ("OutOfMemoryError: Container killed …").
    pub container_reason: Option<String>,
}

impl StoppedTask {
    /// Reads the stop details of `task`; `container` names the worker container (else the first).
    pub fn from_task(task: &Task, container: &str) -> Self {
        let c = task
            .containers()
            .iter()
            .find(|c| c.name() == Some(container))
            .or_else(|| task.containers().first());
        Self {
            arn: task.task_arn().unwrap_or_default().to_owned(),
            stop_code: task.stop_code().map(|c| c.as_str().to_owned()),
            stopped_reason: task
                .stopped_reason()
                .map(str::to_owned)
                .filter(|s| !s.is_empty()),
            exit_code: c.and_then(|c| c.exit_code()),
            container_reason: c
                .and_then(|c| c.reason())
                .map(str::to_owned)
                .filter(|s| !s.is_empty()),
        }
    }
}

/// What a job waiting for its task learns: the task stopped, or it can't be watched any more.
pub type WatchResult = Result<StoppedTask, String>;

struct Registration {
    arn: String,
    tx: oneshot::Sender<WatchResult>,
}

struct Watched {
    tx: oneshot::Sender<WatchResult>,
    missing: u32,
}

/// The shared poller; started on first use, it ends when the executor is dropped and nothing
/// is left to watch.
pub(super) struct TaskWatch {
    ecs: aws_sdk_ecs::Client,
    options: Arc<EcsOptions>,
    tx: OnceLock<mpsc::UnboundedSender<Registration>>,
}

impl TaskWatch {
    pub(super) fn new(ecs: aws_sdk_ecs::Client, options: Arc<EcsOptions>) -> Self {
        Self {
            ecs,
            options,
            tx: OnceLock::new(),
        }
    }

    /// Watches `arn`; the receiver resolves when the task stopped (or watching failed).
    pub(super) fn watch(&self, arn: String) -> oneshot::Receiver<WatchResult> {
        let (tx, rx) = oneshot::channel();
        let sender = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(poll(self.ecs.clone(), self.options.clone(), rx));
            tx
        });
        if let Err(mpsc::error::SendError(r)) = sender.send(Registration { arn, tx }) {
            let _ = r.tx.send(Err("the ECS task poller has stopped".to_owned()));
        }
        rx
    }
}

async fn poll(
    ecs: aws_sdk_ecs::Client,
    options: Arc<EcsOptions>,
    mut rx: mpsc::UnboundedReceiver<Registration>,
) {
    let mut watched: HashMap<String, Watched> = HashMap::new();
    // Consecutive failed rounds, counted under the retry policy; reset by a round that worked.
    let mut outage: Option<Attempts> = None;
    loop {
        if watched.is_empty() {
            match rx.recv().await {
                Some(r) => add(&mut watched, r),
                None => return,
            }
        }
        while let Ok(r) = rx.try_recv() {
            add(&mut watched, r);
        }
        // Jobs that were cancelled no longer listen.
        watched.retain(|_, w| !w.tx.is_closed());
        let arns: Vec<String> = watched.keys().cloned().collect();
        // The last retryable error of this round, and the tasks it left unasked about.
        let mut failed: Option<(String, Vec<String>)> = None;
        for batch in arns.chunks(BATCH) {
            let answer = ecs
                .describe_tasks()
                .cluster(&options.cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await;
            match answer {
                Ok(out) => {
                    for task in out.tasks() {
                        let Some(arn) = task.task_arn() else { continue };
                        if let Some(w) = watched.get_mut(arn) {
                            w.missing = 0;
                        }
                        if task.last_status() == Some("STOPPED") {
                            if let Some(w) = watched.remove(arn) {
                                let _ =
                                    w.tx.send(Ok(StoppedTask::from_task(task, &options.container)));
                            }
                        }
                    }
                    for f in out.failures() {
                        let Some(arn) = f.arn() else { continue };
                        let Some(w) = watched.get_mut(arn) else {
                            continue;
                        };
                        w.missing += 1;
                        if w.missing >= MISSING_ROUNDS {
                            let reason = f.reason().unwrap_or("MISSING");
                            if let Some(w) = watched.remove(arn) {
                                let _ = w.tx.send(Err(format!(
                                    "ECS no longer knows the task ({reason}) on cluster {}",
                                    options.cluster
                                )));
                            }
                        }
                    }
                }
                Err(e) => {
                    let err = classify(format!("DescribeTasks on cluster {}", options.cluster), &e);
                    if ragshift_aws::retry::verdict(&err) == Verdict::Retry {
                        let (last, arns) = failed.get_or_insert_with(Default::default);
                        *last = err.message;
                        arns.extend_from_slice(batch);
                    } else {
                        // Nothing will change by asking again: tell the jobs, which fall back
                        // on the journal.
                        for arn in batch {
                            if let Some(w) = watched.remove(arn) {
                                let _ = w.tx.send(Err(format!(
                                    "cannot watch the task: {err} (the caller needs ecs:DescribeTasks)"
                                )));
                            }
                        }
                    }
                }
            }
        }
        let pause = match failed {
            None => {
                outage = None;
                options.poll_interval
            }
            Some((err, unasked)) => {
                if let Some(t) = &mut outage {
                    t.record_attempt();
                }
                let tries = outage.get_or_insert_with(|| options.retry.attempts());
                match tries.after_failure(Verdict::Retry) {
                    // Never faster than the poll interval: the API may be throttling us.
                    Next::Wait(delay) => {
                        let pause = delay.max(options.poll_interval);
                        tracing::warn!(
                            "{err}; trying again in {:.1}s (round {})",
                            pause.as_secs_f64(),
                            tries.made()
                        );
                        pause
                    }
                    Next::Stop(reason) => {
                        let why = format!(
                            "cannot watch the task: DescribeTasks failed {} times in a row over \
                             {}s ({reason}): {err}",
                            tries.made(),
                            tries.elapsed().as_secs()
                        );
                        for arn in &unasked {
                            if let Some(w) = watched.remove(arn) {
                                let _ = w.tx.send(Err(why.clone()));
                            }
                        }
                        outage = None;
                        options.poll_interval
                    }
                }
            }
        };
        if watched.is_empty() {
            continue;
        }
        // Wake early only to take new registrations; polling stays at the interval.
        let deadline = tokio::time::Instant::now() + pause;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => add(&mut watched, r),
                Ok(None) => {
                    // The executor is gone; keep the pace for the jobs still waiting.
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

fn add(watched: &mut HashMap<String, Watched>, r: Registration) {
    watched.insert(
        r.arn,
        Watched {
            tx: r.tx,
            missing: 0,
        },
    );
}
