//! `ragshift embed-bot`: the worker for one bot, a drop-in for the platform's embedding task.
//! It takes the platform's keys (`{"PK":{"S":...},"SK":{"S":...}}`) as its last argument or in
//! the `EVENT` environment variable (both shapes the platform used), reads the bot from the
//! registry, runs load → split → embed → write, updates `SyncStatus` and the journal, and exits
//! 0 when the bot succeeded, 1 when it failed.

use clap::Args;
use ragshift_config::Layers;
use ragshift_print as print;
use ragshift_run::task::{task_keys, BotTask};
use serde_json::json;

use crate::args::{given, GlobalArgs, Overrides, WorkerArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `embed-bot`.
#[derive(Debug, Args)]
pub struct EmbedBotArgs {
    /// Run whose journal records the result (set by `rebuild --executor ecs`); without it the
    /// bot gets a run of its own
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// Id written to the bot's LastExecId [default: ragshift-RUN_ID]
    #[arg(long, value_name = "ID")]
    pub exec_id: Option<String>,
    /// Leave SyncStatus in the registry untouched
    #[arg(long)]
    pub no_status_updates: bool,
    /// Let the bot succeed (with a warning) when only some of its sources failed
    #[arg(long)]
    pub allow_partial: bool,
    /// Don't reuse or record vectors in the target's embedding cache
    #[arg(long)]
    pub no_cache: bool,
    /// The bot's keys: {"PK":{"S":"USER"},"SK":{"S":"USER#BOT#BOT_ID"}} [default: $EVENT]
    #[arg(value_name = "KEYS_JSON")]
    pub keys: Option<String>,
    /// Registry, documents, embedding, target, journal and AWS.
    #[command(flatten)]
    pub worker: WorkerArgs,
}

impl Overrides for EmbedBotArgs {
    fn apply(&self, l: Layers) -> Layers {
        given!(self.worker.apply(l), self, allow_partial => "ingest.allow_partial")
    }
}

pub async fn run(global: &GlobalArgs, args: &EmbedBotArgs) -> Result<Outcome, Failure> {
    let key = task_keys(args.keys.as_deref())?;
    let loaded = settings::load(global, &[args])?;
    let task = BotTask {
        key: key.clone(),
        run_id: args.run_id.clone(),
        exec_id: args.exec_id.clone(),
        status_updates: !args.no_status_updates,
        use_cache: !args.no_cache,
    };
    let report = task.run(&loaded.config).await.map_err(Failure::phased)?;
    let json = json!({ "run_id": report.run_id, "bot": report.finished });
    output::report(global, &json, |_| print::embed::bot_task(&key, &report))?;
    Ok(Outcome::from_passed(report.finished.succeeded()))
}
