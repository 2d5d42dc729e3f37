//! The one place that decides exit codes.

use std::process::ExitCode;

/// How a command ended when it didn't fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Success,
    /// The work ran and some of it failed (reported already).
    PartialFailure,
}

/// An error that ends a command, with the exit code it implies.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// The work started and failed (exit 1).
    pub fn work(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }
}

/// Anything that goes wrong before work starts is a usage/configuration/connection error.
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self {
            code: 2,
            error: e.into(),
        }
    }
}

/// Maps a command's result to the process exit code, printing the error chain on one line.
pub fn exit_code(result: Result<Outcome, Failure>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::PartialFailure) => ExitCode::from(1),
        Err(f) => {
            let chain: Vec<String> = f.error.chain().map(|c| c.to_string()).collect();
            let mut msg = String::new();
            for part in chain {
                // anyhow contexts often repeat their cause's text; keep each piece once.
                if !msg.contains(&part) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&part);
                }
            }
            eprintln!("error: {msg}");
            ExitCode::from(f.code)
        }
    }
}
