//! `ragshift embed-bot`: the worker for one bot, a drop-in for the platform's embedding task.
//! It takes the platform's keys (`{"PK":{"S":...},"SK":{"S":...}}`) as its last argument or in
//! the `EVENT` environment variable (both shapes the platform used), reads the bot from the
//! registry, runs load → split → embed → write, updates `SyncStatus` and the journal, and exits
//! 0 when the bot succeeded, 1 when it failed.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use clap::Args;
use ragshift_config::Layers;
use ragshift_ingest::Ingestor;
use ragshift_model::BotKey;
use ragshift_registry::{BotSelector, Registry, Selection};
use ragshift_run::{BotJob, Worker, WorkerOptions};
use ragshift_store::journal::{Journal, Status};
use serde_json::json;

use crate::args::{
    AwsArgs, DocumentsArgs, EmbeddingArgs, GlobalArgs, JournalArgs, Overrides, RegistryArgs,
    TargetArgs,
};
use crate::db::{self, Side};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use ragshift_run::components;

/// The environment variable later platform versions pass the keys in.
pub const EVENT_ENV: &str = "EVENT";

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
    /// Registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Documents.
    #[command(flatten)]
    pub documents: DocumentsArgs,
    /// Embedding.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// AWS.
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl Overrides for EmbedBotArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.registry.apply(l);
        let l = self.documents.apply(l);
        let l = self.embedding.apply(l);
        let l = self.target.apply(l);
        let l = self.journal.apply(l);
        let l = self.aws.apply(l);
        if self.allow_partial {
            l.flag("--allow-partial", "ingest.allow_partial", true)
        } else {
            l
        }
    }
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

pub async fn run(global: &GlobalArgs, args: &EmbedBotArgs) -> Result<Outcome, Failure> {
    let keys_text = match &args.keys {
        Some(k) => k.clone(),
        None => std::env::var(EVENT_ENV).map_err(|_| {
            anyhow!("no bot keys: pass them as the last argument or in the {EVENT_ENV} environment variable")
        })?,
    };
    let key = parse_keys(&keys_text)?;
    let loaded = settings::load(global, &[args])?;
    let config = &loaded.config;
    let registry: Arc<dyn Registry> = Arc::from(components::registry(config).await?);
    let documents: Arc<dyn ragshift_documents::DocumentStore> =
        Arc::from(components::documents(config).await?);
    let selector: BotSelector = format!("{}/{}", key.user_id, key.bot_id)
        .parse()
        .map_err(|e: String| anyhow!(e))?;
    let scan = registry
        .bots(&Selection {
            users: Vec::new(),
            bots: vec![selector],
        })
        .await?;
    let Some(bot) = scan.bots.into_iter().next() else {
        if let Some(bad) = scan.invalid.first() {
            return Err(Failure::work(anyhow!(
                "bot {key} is invalid in {}: {}",
                registry.describe(),
                bad.error
            )));
        }
        return Err(Failure::work(anyhow!(
            "bot {key} is not in {} (deleted?)",
            registry.describe()
        )));
    };

    let spec = db::connect_spec(Side::Target, &config.target, &config.aws).await?;
    let layout = db::layout(&config.target);
    let mut client = ragshift_store::connect(&spec, "ragshift embed-bot").await?;
    let cache = if config.embedding.cache && !args.no_cache {
        Some(ragshift_store::connect(&spec, "ragshift embedding cache").await?)
    } else {
        None
    };
    let embedder = components::embedder(config, cache).await?;
    let rows = ragshift_store::BotRows::from_config(&config.target);
    rows.init(&mut client, ragshift_embed::Embedder::dimension(&embedder))
        .await?;
    let journal = Journal::from_config(&config.run);
    journal.ensure_schema(&client).await?;
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => {
            let id = ulid::Ulid::new().to_string();
            let target = format!("{}/{}", spec.label(), layout.display_name());
            journal
                .start_run(
                    &client,
                    &id,
                    "embed-bot",
                    &target,
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
    let embedder = Arc::new(components::join_budget(embedder, &spec, &journal, &run_id).await?);
    let throttled = embedder.clone();

    let worker = Worker::new(
        Ingestor::new(components::ingest_options(&config.ingest)?)
            .map_err(|e| anyhow!("setting up fetching: {e}"))?,
        embedder,
        documents,
        registry,
        spec,
        rows,
        WorkerOptions {
            allow_partial: config.ingest.allow_partial,
            status_updates: !args.no_status_updates,
            // A task of a rebuild run commits only while that run holds the target lock.
            check_run_lock: args.run_id.is_some(),
            ..WorkerOptions::default()
        },
    );
    let job = BotJob {
        exec_id: args
            .exec_id
            .clone()
            .unwrap_or_else(|| format!("ragshift-{run_id}")),
        run_id: run_id.clone(),
        journal: journal.clone(),
        bot,
    };
    let finished = worker.run(&job, &ragshift_run::events::Silent).await;
    throttled.flush_budget().await;
    if args.run_id.is_none() {
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
    if global.json {
        output::json(&json!({ "run_id": run_id, "bot": finished }))?;
    } else if finished.succeeded() {
        output::line(format!(
            "bot {key}: succeeded, {} chunks in {:.1}s (run {run_id})",
            finished.chunks, finished.seconds
        ));
    } else {
        output::line(format!(
            "bot {key}: FAILED: {} (run {run_id})",
            finished.error.as_deref().unwrap_or("")
        ));
    }
    Ok(if finished.succeeded() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
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
