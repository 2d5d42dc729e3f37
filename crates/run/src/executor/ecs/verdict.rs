//! Deciding how a bot ended from its journal row and its task's end.
//!
//! The journal row is the truth: the worker writes it in the transaction that replaces the bot's
//! rows, so a final row of this attempt means exactly what it says, whatever happened to the
//! task afterwards. Without one, the task's stop code, exit code and reasons say why the worker
//! died, and the bot fails with that reason.

use std::time::Duration;

use ragshift_store::journal::Status;
use tokio::sync::oneshot;

use super::unit::UnitView;
use super::watch::{StoppedTask, WatchResult};
use crate::events::SourceResult;

/// How waiting for a task ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ending {
    /// The task reached STOPPED.
    Stopped(StoppedTask),
    /// The task can't be watched any more (vanished, or DescribeTasks is refused).
    Lost(String),
    /// The bot's time-out passed; the task was asked to stop.
    TimedOut {
        /// The time-out.
        after: Duration,
        /// How waiting for the stop ended (`None`: not stopped within the wait).
        stopped: Option<Box<Ending>>,
    },
}

impl Ending {
    pub(super) fn from_watch(r: Result<WatchResult, oneshot::error::RecvError>) -> Self {
        match r {
            Ok(Ok(t)) => Self::Stopped(t),
            Ok(Err(e)) => Self::Lost(e),
            Err(_) => Self::Lost("the ECS task poller stopped".to_owned()),
        }
    }

    fn stopped(&self) -> Option<&StoppedTask> {
        match self {
            Self::Stopped(t) => Some(t),
            Self::Lost(_) => None,
            Self::TimedOut { stopped, .. } => stopped.as_deref().and_then(Ending::stopped),
        }
    }
}

/// The bot's result.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    /// The worker committed the bot.
    Succeeded {
        /// Rows written.
        chunks: usize,
        /// Characters embedded, when the journal says.
        chars: Option<usize>,
        /// The worker's warning, and anything odd about the task's end.
        warning: Option<String>,
        /// Per-source results.
        sources: Vec<SourceResult>,
    },
    /// The bot failed.
    Failed {
        /// Why.
        reason: String,
        /// Whether the executor must record it (the worker didn't).
        record: bool,
        /// The task, for the journal's detail.
        task: Option<StoppedTask>,
        /// Per-source results, when the worker recorded them.
        sources: Vec<SourceResult>,
    },
}

/// Judges a bot whose task `arn` ended with `ending`; `unit` is its journal row now and
/// `attempts_before` the attempts recorded before the task started.
pub(super) fn judge(
    unit: Option<&UnitView>,
    attempts_before: i32,
    arn: &str,
    ending: &Ending,
) -> Verdict {
    let id = arn.rsplit('/').next().unwrap_or(arn);
    let fresh = unit.filter(|u| {
        u.attempts > attempts_before && matches!(u.status, Status::Succeeded | Status::Failed)
    });
    if let Some(u) = fresh {
        let sources = sources(u.detail.as_ref());
        if u.status == Status::Failed {
            return Verdict::Failed {
                reason: u
                    .error
                    .clone()
                    .unwrap_or_else(|| "the worker recorded a failure without a reason".to_owned()),
                record: false,
                task: None,
                sources,
            };
        }
        let mut warnings: Vec<String> = u.error.iter().cloned().collect();
        match ending {
            Ending::TimedOut { after, .. } => warnings.push(format!(
                "ECS task {id} was stopped at the time-out ({}s) after the bot was written",
                after.as_secs()
            )),
            _ => {
                if let Some(a) = ending.stopped().and_then(abnormal) {
                    warnings.push(format!("ECS task {id} {a} after the bot was written"));
                }
            }
        }
        let chars = u
            .detail
            .as_ref()
            .and_then(|d| d.get("chars"))
            .and_then(|c| c.as_u64())
            .and_then(|c| usize::try_from(c).ok());
        return Verdict::Succeeded {
            chunks: u
                .row_count
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            chars,
            warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
            sources,
        };
    }
    let reason = match ending {
        Ending::TimedOut { after, stopped } => format!(
            "timed out after {}s (ECS task {id} {})",
            after.as_secs(),
            if stopped.as_deref().and_then(Ending::stopped).is_some() {
                "was stopped"
            } else {
                "was asked to stop but had not stopped yet"
            }
        ),
        Ending::Lost(e) => format!("lost track of ECS task {id}: {e}; no result was recorded"),
        Ending::Stopped(t) => match abnormal(t) {
            Some(a) => format!("ECS task {id} {a} before the worker recorded a result"),
            None => format!(
                "ECS task {id} ended without recording a result in the run journal: check the \
                 task's logs, and that its target settings (RAGSHIFT_TARGET_URL or \
                 RAGSHIFT_TARGET_SECRET_ARN) name the same database as this run"
            ),
        },
    };
    Verdict::Failed {
        reason,
        record: true,
        task: Some(ending.stopped().cloned().unwrap_or_else(|| StoppedTask {
            arn: arn.to_owned(),
            ..StoppedTask::default()
        })),
        sources: Vec::new(),
    }
}

/// What was wrong with how the task stopped, if anything: a non-zero exit code, or a stop other
/// than the worker container exiting by itself.
fn abnormal(t: &StoppedTask) -> Option<String> {
    let reason = t.stopped_reason.as_deref();
    if let Some(code) = t.exit_code.filter(|c| *c != 0) {
        return Some(match (&t.container_reason, reason) {
            (Some(r), _) => format!("exited with code {code} ({r})"),
            (None, Some(r)) => format!("exited with code {code} ({r})"),
            (None, None) => format!("exited with code {code}"),
        });
    }
    match t.stop_code.as_deref() {
        Some("EssentialContainerExited") | None => {
            if t.exit_code.is_none() {
                if let Some(r) = &t.container_reason {
                    return Some(format!("stopped: {r}"));
                }
            }
            match reason {
                Some(r) if t.stop_code.is_none() && !is_normal_exit(r) => {
                    Some(format!("stopped: {r}"))
                }
                _ => None,
            }
        }
        Some(code) => Some(format!(
            "stopped ({code}): {}",
            reason.unwrap_or("no reason given")
        )),
    }
}

/// ECS's reason when the essential container exited by itself.
fn is_normal_exit(reason: &str) -> bool {
    reason.starts_with("Essential container in task exited")
}

/// Per-source results from the worker's journal detail (`{"sources": [...]}`).
fn sources(detail: Option<&serde_json::Value>) -> Vec<SourceResult> {
    let Some(list) = detail
        .and_then(|d| d.get("sources"))
        .and_then(|s| s.as_array())
    else {
        return Vec::new();
    };
    list.iter()
        .map(|s| SourceResult {
            source: s
                .get("source")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            status: match s.get("status").and_then(|v| v.as_str()) {
                Some("loaded") => "loaded",
                _ => "failed",
            },
            chunks: s
                .get("chunks")
                .and_then(|v| v.as_u64())
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            error: s.get("error").and_then(|v| v.as_str()).map(str::to_owned),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:us-east-1:123:task/cluster/abc123";

    fn unit(status: Status, attempts: i32) -> UnitView {
        UnitView {
            status,
            attempts,
            row_count: Some(7),
            error: None,
            detail: Some(json!({"sources": [
                {"source": "s3://b/k", "status": "loaded", "chunks": 7, "error": null}
            ], "chars": 700})),
        }
    }

    fn normal_exit() -> Ending {
        Ending::Stopped(StoppedTask {
            arn: ARN.into(),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            exit_code: Some(0),
            container_reason: None,
        })
    }

    fn reason(v: &Verdict) -> &str {
        match v {
            Verdict::Failed { reason, .. } => reason,
            Verdict::Succeeded { .. } => panic!("expected a failure, got {v:?}"),
        }
    }

    #[test]
    fn a_fresh_success_is_believed_with_its_chunks_and_sources() {
        let v = judge(Some(&unit(Status::Succeeded, 2)), 1, ARN, &normal_exit());
        let Verdict::Succeeded { sources, .. } = &v else {
            panic!("{v:?}")
        };
        assert_eq!(sources[0].status, "loaded");
        assert_eq!(sources[0].chunks, 7);
        assert!(
            matches!(
                v,
                Verdict::Succeeded {
                    chunks: 7,
                    chars: Some(700),
                    warning: None,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn a_success_from_an_earlier_attempt_does_not_count() {
        let v = judge(Some(&unit(Status::Succeeded, 1)), 1, ARN, &normal_exit());
        let r = reason(&v);
        assert!(
            r.contains("abc123") && r.contains("without recording a result"),
            "{r}"
        );
        assert!(r.contains("RAGSHIFT_TARGET_URL"), "{r}");
        assert!(matches!(v, Verdict::Failed { record: true, .. }));
    }

    #[test]
    fn the_workers_own_failure_is_kept_and_not_rewritten() {
        let mut u = unit(Status::Failed, 1);
        u.error = Some("all 2 sources failed".into());
        let died = Ending::Stopped(StoppedTask {
            arn: ARN.into(),
            exit_code: Some(1),
            ..StoppedTask::default()
        });
        let v = judge(Some(&u), 0, ARN, &died);
        assert_eq!(reason(&v), "all 2 sources failed");
        assert!(matches!(v, Verdict::Failed { record: false, .. }));
    }

    #[test]
    fn a_worker_killed_mid_way_fails_with_the_kill_reason() {
        let oom = Ending::Stopped(StoppedTask {
            arn: ARN.into(),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            exit_code: Some(137),
            container_reason: Some("OutOfMemoryError: Container killed due to memory usage".into()),
        });
        let v = judge(Some(&unit(Status::Running, 1)), 0, ARN, &oom);
        let r = reason(&v);
        assert!(
            r.contains("exited with code 137") && r.contains("OutOfMemoryError"),
            "{r}"
        );
    }

    #[test]
    fn stop_codes_and_reasons_other_than_a_normal_exit_are_reported() {
        let pull = Ending::Stopped(StoppedTask {
            arn: ARN.into(),
            stop_code: Some("TaskFailedToStart".into()),
            stopped_reason: Some("CannotPullContainerError: pull access denied".into()),
            ..StoppedTask::default()
        });
        let r = judge(None, 0, ARN, &pull);
        assert!(reason(&r).contains("TaskFailedToStart") && reason(&r).contains("CannotPull"));
        let spot = Ending::Stopped(StoppedTask {
            arn: ARN.into(),
            stopped_reason: Some("Spot interruption".into()),
            exit_code: Some(0),
            ..StoppedTask::default()
        });
        let r = judge(Some(&unit(Status::Queued, 0)), 0, ARN, &spot);
        assert!(reason(&r).contains("stopped: Spot interruption"), "{r:?}");
    }

    #[test]
    fn time_outs_fail_unless_the_bot_was_written_first() {
        let t = Ending::TimedOut {
            after: Duration::from_secs(30),
            stopped: Some(Box::new(normal_exit())),
        };
        let v = judge(Some(&unit(Status::Running, 1)), 0, ARN, &t);
        assert!(reason(&v).starts_with("timed out after 30s"), "{v:?}");
        match judge(Some(&unit(Status::Succeeded, 1)), 0, ARN, &t) {
            Verdict::Succeeded { warning, .. } => {
                assert!(warning.unwrap_or_default().contains("time-out"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_abnormal_end_after_a_commit_is_a_warning() {
        let killed = Ending::Stopped(StoppedTask {
            arn: ARN.into(),
            exit_code: Some(143),
            ..StoppedTask::default()
        });
        match judge(Some(&unit(Status::Succeeded, 1)), 0, ARN, &killed) {
            Verdict::Succeeded { warning, .. } => {
                assert!(warning.unwrap_or_default().contains("exited with code 143"))
            }
            other => panic!("{other:?}"),
        }
    }
}
