//! One bot as a process of its own: what an ECS task of a rebuild runs (`ragshift embed-bot`),
//! a drop-in for the platform's embedding task.
//!
//! It reads the bot the platform's keys name, records it in the run journal (a run of its own
//! unless it belongs to a rebuild run), joins that run's embedding budget and runs the same
//! worker an in-process rebuild does ([`crate::components::BotSources::worker`]).

use std::sync::Arc;

use anyhow::{anyhow, Context};
use ragshift_config::Config;
use ragshift_model::{Bot, BotKey};
use ragshift_registry::{BotSelector, Registry, Selection};
use ragshift_store::journal::{Journal, Status};
use serde_json::json;

use crate::components::{self, BotSources, ChunkTable};
use crate::{BotFinished, BotJob, WorkerOptions};

/// What the task is asked to do besides what the configuration says (`embed-bot`'s flags).
#[derive(Debug, Clone)]
pub struct BotTask {
    /// The bot.
    pub key: BotKey,
    /// The rebuild run whose journal records the result; `None`: a run of its own.
    pub run_id: Option<String>,
    /// The id written to the bot's `LastExecId` (default `ragshift-RUN_ID`).
    pub exec_id: Option<String>,
    /// Write `SyncStatus` to the registry.
    pub status_updates: bool,
    /// Reuse and record vectors in the target's embedding cache (when `[embedding] cache`).
    pub use_cache: bool,
}

/// How the task ended.
#[derive(Debug)]
pub struct BotTaskReport {
    /// The run that records it.
    pub run_id: String,
    /// The bot's result.
    pub finished: BotFinished,
}

/// Why a task stopped before its bot could finish.
#[derive(Debug, thiserror::Error)]
pub enum BotTaskError {
    /// Settings, the registry, the target or the journal: nothing of the bot was touched.
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
    /// The bot the task was started for is gone from the registry or can't be read there:
    /// the task's work failed.
    #[error(transparent)]
    Bot(anyhow::Error),
}

impl BotTaskError {
    /// Whether the bot's work had started (it was the bot that failed, not the set-up).
    pub fn work_started(&self) -> bool {
        matches!(self, Self::Bot(_))
    }
}

/// The environment variable later platform versions pass a bot's keys in.
pub const EVENT_ENV: &str = "EVENT";

/// The keys of the bot a task runs: `given` (the platform passed them as the last argument),
/// else [`EVENT_ENV`] (later versions), both shapes the platform used.
pub fn task_keys(given: Option<&str>) -> anyhow::Result<BotKey> {
    let text = match given {
        Some(k) => k.to_owned(),
        None => std::env::var(EVENT_ENV).map_err(|_| {
            anyhow!("no bot keys: pass them as the last argument or in the {EVENT_ENV} environment variable")
        })?,
    };
    parse_keys(&text)
}

/// Parses the platform's keys: `{"PK":{"S":u},"SK":{"S":"u#BOT#b"}}`, also accepting plain
/// strings (`{"PK":u,"SK":...}`) and the whole event wrapped as `{"Keys": {...}}`.
pub fn parse_keys(text: &str) -> anyhow::Result<BotKey> {
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .context("the bot keys are not JSON; expected {\"PK\":{\"S\":\"USER\"},\"SK\":{\"S\":\"USER#BOT#BOT_ID\"}}")?;
    let v = v.get("Keys").cloned().unwrap_or(v);
    let field = |name: &str| -> anyhow::Result<String> {
        let f = v
            .get(name)
            .ok_or_else(|| anyhow!("the bot keys have no {name}"))?;
        f.get("S")
            .and_then(|s| s.as_str())
            .or_else(|| f.as_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{name} in the bot keys is not a string"))
    };
    let (pk, sk) = (field("PK")?, field("SK")?);
    BotKey::from_registry_keys(&pk, &sk).map_err(|e| anyhow!("{e}"))
}

impl BotTask {
    /// Runs the bot to its end; a bot that fails is a report, not an error.
    pub async fn run(&self, config: &Config) -> Result<BotTaskReport, BotTaskError> {
        let sources = BotSources::open(config).await?;
        let bot = find_bot(&*sources.registry, &self.key).await?;
        Ok(self.run_bot(config, &sources, bot).await?)
    }

    async fn run_bot(
        &self,
        config: &Config,
        sources: &BotSources,
        bot: Bot,
    ) -> anyhow::Result<BotTaskReport> {
        let key = &self.key;
        let target = ChunkTable::open(config).await?;
        let mut client = ragshift_store::connect(&target.spec, "ragshift embed-bot").await?;
        let cache = if config.embedding.cache && self.use_cache {
            Some(ragshift_store::connect(&target.spec, "ragshift embedding cache").await?)
        } else {
            None
        };
        let embedder = components::embedder(config, cache).await?;
        target
            .rows
            .init(&mut client, ragshift_embed::Embedder::dimension(&embedder))
            .await?;
        let journal = Journal::from_config(&config.run);
        journal.ensure_schema(&client).await?;
        let run_id = match &self.run_id {
            Some(id) => id.clone(),
            None => {
                let id = ulid::Ulid::new().to_string();
                let label = format!("{}/{}", target.spec.label(), target.layout.display_name());
                journal
                    .start_run(
                        &client,
                        &id,
                        "embed-bot",
                        &label,
                        &json!({"bot": key.to_string()}),
                    )
                    .await?;
                id
            }
        };
        journal
            .queue_units(
                &client,
                &run_id,
                "bot",
                &[(key.bot_id.clone(), Some(key.user_id.clone()))],
            )
            .await?;
        // Every worker of the run spends the run's one budget.
        let embedder =
            Arc::new(components::join_budget(embedder, &target.spec, &journal, &run_id).await?);
        let worker = sources.worker(
            config,
            embedder.clone(),
            &target,
            WorkerOptions {
                status_updates: self.status_updates,
                // A task of a rebuild run commits only while that run holds the target lock.
                check_run_lock: self.run_id.is_some(),
                ..WorkerOptions::default()
            },
        )?;
        let job = BotJob {
            exec_id: self
                .exec_id
                .clone()
                .unwrap_or_else(|| format!("ragshift-{run_id}")),
            run_id: run_id.clone(),
            journal: journal.clone(),
            bot,
        };
        let finished = worker.run(&job, &crate::events::Silent).await;
        embedder.flush_budget().await;
        if self.run_id.is_none() {
            let status = if finished.succeeded() {
                Status::Succeeded
            } else {
                Status::Failed
            };
            journal
                .finish_run(
                    &client,
                    &run_id,
                    status,
                    &serde_json::to_value(&finished).unwrap_or_default(),
                    finished.error.as_deref(),
                )
                .await?;
        }
        Ok(BotTaskReport { run_id, finished })
    }
}

/// The bot `key` names, read directly; gone or unreadable is the task's failure.
async fn find_bot(registry: &dyn Registry, key: &BotKey) -> Result<Bot, BotTaskError> {
    let selector: BotSelector = format!("{}/{}", key.user_id, key.bot_id)
        .parse()
        .map_err(|e: String| anyhow!(e))?;
    let scan = registry
        .bots(&Selection {
            users: Vec::new(),
            bots: vec![selector],
        })
        .await
        .map_err(anyhow::Error::from)?;
    let Some(bot) = scan.bots.into_iter().next() else {
        if let Some(bad) = scan.invalid.first() {
            return Err(BotTaskError::Bot(anyhow!(
                "bot {key} is invalid in {}: {}",
                registry.describe(),
                bad.error
            )));
        }
        return Err(BotTaskError::Bot(anyhow!(
            "bot {key} is not in {} (deleted?)",
            registry.describe()
        )));
    };
    Ok(bot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_every_shape_the_platform_used() {
        let k = parse_keys(r#"{"PK":{"S":"u1"},"SK":{"S":"u1#BOT#01ABC"}}"#).unwrap();
        assert_eq!((k.user_id.as_str(), k.bot_id.as_str()), ("u1", "01ABC"));
        let k = parse_keys(r#"{"Keys":{"PK":{"S":"u1"},"SK":{"S":"u1#BOT#01ABC"}}}"#).unwrap();
        assert_eq!(k.bot_id, "01ABC");
        let k = parse_keys(r#"{"PK":"u1","SK":"u1#BOT#01ABC"}"#).unwrap();
        assert_eq!(k.bot_id, "01ABC");
        assert!(parse_keys(r#"{"PK":{"S":"u1"},"SK":{"S":"u1#BOT_ALIAS#01ABC"}}"#).is_err());
        assert!(parse_keys("not json").is_err());
        assert!(parse_keys(r#"{"PK":{"S":"u1"}}"#).is_err());
    }
}
