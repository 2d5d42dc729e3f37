//! `ragshift embed`: embed a few texts with the configured provider, to check its settings
//! (model, dimension, credentials, endpoint) before a run.

use clap::Args;
use ragshift_embed::Embedder;
use ragshift_print as print;
use serde_json::json;

use crate::args::{AwsArgs, EmbeddingArgs, GlobalArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use ragshift_run::components;

/// Flags of `embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Embedding settings.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// AWS settings (Bedrock).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Embed as search questions rather than stored chunks (Cohere's `search_query`)
    #[arg(long)]
    pub query: bool,
    /// Values of each vector to print
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub show: usize,
    /// Texts to embed
    #[arg(required = true, value_name = "TEXT")]
    pub texts: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: &EmbedArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[&args.embedding, &args.aws])?;
    let embedder = components::embedder(&loaded.config, None).await?;
    let vectors = if args.query {
        embedder.embed_queries(&args.texts).await
    } else {
        embedder
            .embed_documents(&args.texts)
            .await
            .map(|e| e.vectors)
    };
    let vectors = vectors.map_err(Failure::work)?;
    let (model, dimension) = (embedder.model_id(), embedder.dimension());
    let json = json!({
        "model": model,
        "dimension": dimension,
        "vectors": vectors,
        "usage": embedder.report(),
    });
    let (provider, texts) = (embedder.provider(), &args.texts);
    output::report(global, &json, |_| {
        print::embed::vectors(provider, model, dimension, texts, &vectors, args.show)
    })?;
    Ok(Outcome::Success)
}
