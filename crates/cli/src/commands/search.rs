//! `ragshift search`: the platform's retrieval query against the target, to check a migration by
//! eye (`--json` for scripts).

use anyhow::anyhow;
use ragshift_print as print;
use ragshift_run::{components, target};
use serde_json::json;

use crate::args::{AwsArgs, EmbeddingArgs, GlobalArgs, TargetArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use clap::Args;
use std::path::PathBuf;

/// Flags of `search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// AWS settings (for a secret ARN, Bedrock).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Embedding settings (the question is embedded the way the chunks were).
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// Bot whose chunks are searched
    #[arg(long, value_name = "ID")]
    pub bot: String,
    /// Number of results (the platform's max_results defaults to 20)
    #[arg(long, default_value_t = 20, value_name = "K")]
    pub limit: i64,
    /// A JSON file holding the query vector (an array of numbers)
    #[arg(long, value_name = "FILE")]
    pub vector: Option<PathBuf>,
    /// The question
    pub question: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: &SearchArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[&args.target, &args.aws, &args.embedding])?;
    let config = &loaded.config;
    if args.limit < 1 {
        return Err(anyhow!("--limit must be at least 1").into());
    }
    if args.vector.is_none() && args.question.is_none() {
        return Err(anyhow!("give a question, or a query vector with --vector FILE").into());
    }
    let question = args.question.as_deref().unwrap_or_default();
    let query = components::query_vector(config, args.vector.as_deref(), question).await?;
    let hits = target::search(config, &args.bot, &query, args.limit).await?;
    let json = json!({ "bot_id": args.bot, "results": hits });
    output::report(global, &json, |_| print::target::hits(&args.bot, &hits))?;
    Ok(Outcome::Success)
}
