//! The one place that decides exit codes: 0 success, 1 the work started and something failed,
//! 2 nothing started (usage, configuration, connection). Every error is mapped by the phase it
//! happened in, which the libraries report ([`Phased`]); nothing decides by message text.

use std::process::ExitCode;

/// How a command ended when it didn't fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Success,
    /// The work ran and some of it failed (reported already).
    PartialFailure,
}

impl Outcome {
    /// `Success` when the work passed its own check, else `PartialFailure`: the exit code
    /// follows each report's verdict the same way in every command.
    pub fn from_passed(passed: bool) -> Self {
        if passed {
            Self::Success
        } else {
            Self::PartialFailure
        }
    }
}

/// When an error happened, which alone decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before any work started: nothing was changed (exit 2).
    Setup,
    /// The work had started (something may have changed, the journal says what): exit 1.
    Work,
}

impl Phase {
    fn code(self) -> u8 {
        match self {
            Self::Setup => 2,
            Self::Work => 1,
        }
    }

    /// The phase of an error that knows whether its work had started.
    fn of(work_started: bool) -> Self {
        if work_started {
            Self::Work
        } else {
            Self::Setup
        }
    }
}

/// Library errors that know whether their work had started when they happened.
pub trait Phased {
    /// The phase the error happened in.
    fn phase(&self) -> Phase;
}

/// Library errors that say themselves whether their work had started.
macro_rules! phased_by_work_started {
    ($($error:ty),+) => {$(
        impl Phased for $error {
            fn phase(&self) -> Phase {
                Phase::of(self.work_started())
            }
        }
    )+};
}

phased_by_work_started!(
    ragshift_run::rebuild::RebuildError,
    ragshift_run::task::BotTaskError,
    ragshift_export::ExportError,
    ragshift_copy::CopyStopped
);

/// Whatever the kind, once the command had changed something the error is the work's.
impl Phased for ragshift_replicate::ReplicateError {
    fn phase(&self) -> Phase {
        Phase::of(!self.before_work())
    }
}

/// An error that ends a command, with the exit code it implies.
#[derive(Debug)]
pub struct Failure {
    phase: Phase,
    error: anyhow::Error,
}

impl Failure {
    /// An error in the given phase.
    pub fn new(phase: Phase, error: impl Into<anyhow::Error>) -> Self {
        Self {
            phase,
            error: error.into(),
        }
    }

    /// The work started and failed (exit 1).
    pub fn work(error: impl Into<anyhow::Error>) -> Self {
        Self::new(Phase::Work, error)
    }

    /// A library error, in the phase it reports.
    pub fn phased<E: Phased + Into<anyhow::Error>>(error: E) -> Self {
        Self::new(error.phase(), error)
    }
}

/// Anything that goes wrong before work starts is a usage/configuration/connection error; errors
/// that may come after it are mapped with [`Failure::phased`] or [`Failure::work`].
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::new(Phase::Setup, e)
    }
}

/// Maps a command's result to the process exit code, printing the error chain on one line.
pub fn exit_code(result: Result<Outcome, Failure>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::PartialFailure) => ExitCode::from(1),
        Err(f) => {
            crate::output::error(f.error.chain());
            ExitCode::from(f.phase.code())
        }
    }
}
