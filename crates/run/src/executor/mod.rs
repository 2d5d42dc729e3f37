//! Where a bot's job runs. The run only sees this trait: in-process workers and ECS tasks are
//! interchangeable, and the journal row the worker writes is the source of truth either way.

mod ecs;
mod local;

pub use ecs::{worker_command, CapacityProvider, EcsConfigError, EcsExecutor, EcsOptions};
pub use local::LocalExecutor;

use async_trait::async_trait;

use crate::events::{BotFinished, Observer};
use crate::worker::BotJob;

/// Runs one bot's job and reports how it ended.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Names the executor for messages (`local workers`, `ECS cluster X`).
    fn describe(&self) -> String;

    /// Runs the job to its end; failures are reported in the result, never as panics.
    async fn run(&self, job: BotJob, observer: &dyn Observer) -> BotFinished;

    /// Stops work started elsewhere (ECS tasks) when the run is interrupted, so no worker keeps
    /// writing after its run is gone; in-process workers stop with the process.
    async fn abort(&self, _reason: &str) {}
}
