//! Events a run reports as it goes. The CLI turns them into progress bars on a terminal, one log
//! line per event otherwise, or one JSON object per line with `--json`.

use std::time::Instant;

use ragshift_model::BotKey;
use serde::Serialize;

/// How one source of a bot ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceResult {
    /// `s3://bucket/key`, URL, file path or sitemap page.
    pub source: String,
    /// `loaded` or `failed`.
    pub status: &'static str,
    /// Chunks made from it.
    pub chunks: usize,
    /// Why it failed.
    pub error: Option<String>,
}

/// The result of one bot, as `bot_finished` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotFinished {
    /// The bot.
    pub bot_id: String,
    /// Its owner.
    pub user_id: String,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// Chunks written (or, in a dry run, that would be written).
    pub chunks: usize,
    /// Characters in those chunks (what embedding is paid for).
    pub chars: usize,
    /// Wall time of the bot.
    pub seconds: f64,
    /// Why it failed, or the warning of a partial success.
    pub error: Option<String>,
    /// Per-source results.
    pub sources: Vec<SourceResult>,
}

impl BotFinished {
    /// A bot's report, the one a worker in-process and a task watched on ECS both give:
    /// `Ok` with its chunk and character counts and the warning of a partial success, or `Err`
    /// with why it failed.
    pub fn new(
        key: &BotKey,
        outcome: Result<((usize, usize), Option<String>), String>,
        sources: Vec<SourceResult>,
        started: Instant,
    ) -> Self {
        let (status, (chunks, chars), error) = match outcome {
            Ok((counts, warning)) => ("succeeded", counts, warning),
            Err(reason) => ("failed", (0, 0), Some(reason)),
        };
        Self {
            bot_id: key.bot_id.clone(),
            user_id: key.user_id.clone(),
            status,
            chunks,
            chars,
            seconds: started.elapsed().as_secs_f64(),
            error,
            sources,
        }
    }

    /// Whether the bot succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }
}

/// One event of a run (`event` names the variant in JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began; `bots` jobs will run (resumed ones excluded).
    RunStarted {
        /// The run's id (give it to `--resume`).
        run_id: String,
        /// Jobs to run.
        bots: usize,
    },
    /// A bot's job started.
    BotStarted {
        /// The bot.
        bot_id: String,
        /// Its owner.
        user_id: String,
    },
    /// A bot's job ended.
    BotFinished(BotFinished),
    /// The run ended.
    RunFinished {
        /// The run's id.
        run_id: String,
        /// Bots that succeeded in this run (including earlier attempts of a resumed run).
        succeeded: usize,
        /// Bots that failed.
        failed: usize,
        /// Bots skipped (nothing to embed, or already done before a resume).
        skipped: usize,
    },
}

/// Receives a run's events and progress.
pub trait Observer: Send + Sync {
    /// A run event.
    fn event(&self, event: &Event);
    /// `n` more chunks were embedded (for a chunk progress bar).
    fn chunks_embedded(&self, _n: u64) {}
    /// `n` more chunks were found, so the expected total grew.
    fn chunks_found(&self, _n: u64) {}
}

/// An observer that ignores everything (for tests and the ECS worker).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _event: &Event) {}
}
