//! A copy that stopped on an error: whether its work had started, which the journal says (a
//! run this process recorded and left `running`), and the run ended `failed` with the error.

use std::time::Duration;

use ragshift_store::journal::Journal;
use ragshift_store::ConnectSpec;

use crate::run::RUN_KIND;

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
pub async fn record_stop(
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
