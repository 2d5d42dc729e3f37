//! In-process workers: the job runs on this machine's async runtime (model inference on its own
//! blocking threads inside the embedder).

use std::sync::Arc;

use async_trait::async_trait;
use tracing::Instrument;

use crate::events::{BotFinished, Observer};
use crate::executor::Executor;
use crate::worker::{BotJob, Worker};

/// Runs jobs with a shared [`Worker`] in this process.
pub struct LocalExecutor {
    worker: Arc<Worker>,
}

impl LocalExecutor {
    /// An executor around `worker`.
    pub fn new(worker: Arc<Worker>) -> Self {
        Self { worker }
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    fn describe(&self) -> String {
        "local workers".to_owned()
    }

    async fn run(&self, job: BotJob, observer: &dyn Observer) -> BotFinished {
        let span = tracing::info_span!("bot", bot = %job.bot.key.bot_id);
        self.worker.run(&job, observer).instrument(span).await
    }
}
