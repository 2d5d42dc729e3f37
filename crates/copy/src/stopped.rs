//! A copy that stopped on an error: whether its work had started, which the journal says (a
//! run this process recorded and left `running`), and the run ended `failed` with the error
//! ([`copy_recording_stop`] does both around a copy).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ragshift_store::journal::Journal;
use ragshift_store::ConnectSpec;

use crate::progress::{Event, EventSink};
use crate::run::{CopyOptions, CopyReport, Endpoints, RUN_KIND};
use crate::CopyError;

/// How far a copy that stopped on an error had come: this decides whether the error is the
/// work's (exit 1) or a setup error (exit 2), and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The run was in the journal; it is now recorded as failed.
    Recorded {
        /// The run's id.
        run_id: String,
    },
    /// Not in the journal, but the plan was announced: the copy had started.
    Planned,
    /// Nothing was started.
    NotStarted,
}

impl Stopped {
    /// Whether the copy's work had started (something may have changed on the target).
    pub fn work_started(&self) -> bool {
        !matches!(self, Self::NotStarted)
    }

    /// What to do next, to go with the error, once work had started.
    pub fn advice(&self) -> Option<String> {
        match self {
            Self::Recorded { run_id } => Some(format!(
                "copy run {run_id} stopped (the journal records it as failed); fix the cause and run the same command with --resume"
            )),
            Self::Planned => Some(
                "the copy had started; see `ragshift status` and run the same command with --resume"
                    .to_owned(),
            ),
            Self::NotStarted => None,
        }
    }
}

/// Ends the copy runs this process left `running` in `target`'s journal (started within
/// `elapsed`) as failed with `error`, and says how far the copy had come. `planned`: the plan
/// was announced (also known without the journal, say when the target went away).
pub(crate) async fn record_stop(
    target: &ConnectSpec,
    journal: &Journal,
    elapsed: Duration,
    planned: bool,
    error: &str,
) -> Stopped {
    let runs = match ragshift_store::connect(target, "ragshift copy (journal)").await {
        Ok(c) => match journal
            .running_runs_of_this_process(&c, RUN_KIND, elapsed)
            .await
        {
            Ok(runs) => {
                for run_id in &runs {
                    if let Err(err) = journal.fail_run(&c, run_id, error).await {
                        tracing::error!("could not record the failure of copy run {run_id}: {err}");
                    }
                }
                runs
            }
            // No journal (or no access to it): nothing was recorded, so nothing started.
            Err(_) => Vec::new(),
        },
        Err(err) => {
            tracing::error!(
                "could not reach the target to record the failure in the journal: {err}"
            );
            Vec::new()
        }
    };
    match runs.into_iter().next() {
        Some(run_id) => Stopped::Recorded { run_id },
        None if planned => Stopped::Planned,
        None => Stopped::NotStarted,
    }
}

/// A copy that ended on an error, with how far it had come. It reads as the error, preceded
/// by what to do next once the work had started.
#[derive(Debug)]
pub struct CopyStopped {
    /// The error.
    pub error: CopyError,
    /// How far the copy had come; `None` when the error itself says the work had started.
    pub stopped: Option<Stopped>,
}

impl CopyStopped {
    /// Whether the copy's work had started (exit code 1 rather than 2).
    pub fn work_started(&self) -> bool {
        self.error.work_started() || self.stopped.as_ref().is_some_and(Stopped::work_started)
    }

    /// What to do next, when the journal or the announced plan says the copy had started.
    pub fn advice(&self) -> Option<String> {
        self.stopped.as_ref().and_then(Stopped::advice)
    }
}

impl std::fmt::Display for CopyStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.advice() {
            Some(advice) => f.write_str(&advice),
            None => std::fmt::Display::fmt(&self.error, f),
        }
    }
}

impl std::error::Error for CopyStopped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.advice() {
            Some(_) => Some(&self.error),
            None => std::error::Error::source(&self.error),
        }
    }
}

/// [`copy`](crate::copy), and when it stops on an error that doesn't itself say the work had
/// started, `record_stop`: the runs this process left `running` are ended as failed, and the
/// journal (or the announced plan) says whether the work had started.
pub async fn copy_recording_stop(
    ep: &Endpoints,
    opts: &CopyOptions,
    events: EventSink,
) -> Result<CopyReport, CopyStopped> {
    let began = Instant::now();
    // Also known without the journal (say the target went away): the plan was announced.
    let planned = Arc::new(AtomicBool::new(false));
    let seen = planned.clone();
    let sink: EventSink = Arc::new(move |e: Event| {
        if matches!(e, Event::Planned { .. }) {
            seen.store(true, Ordering::SeqCst);
        }
        events(e)
    });
    let error = match crate::copy(ep, opts, sink).await {
        Ok(report) => return Ok(report),
        Err(error) if error.work_started() => {
            return Err(CopyStopped {
                error,
                stopped: None,
            })
        }
        Err(error) => error,
    };
    let mut chain = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(c) = cause {
        chain.push_str(&format!(": {c}"));
        cause = std::error::Error::source(c);
    }
    let planned = planned.load(Ordering::SeqCst);
    let stopped = record_stop(&ep.target, &opts.journal, began.elapsed(), planned, &chain).await;
    Err(CopyStopped {
        error,
        stopped: Some(stopped),
    })
}
