//! `ragshift chunk`: how files and URLs become chunks, checked before paying for embeddings.

use clap::Args;
use ragshift_model::EmbeddingParams;

use crate::args::GlobalArgs;
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use ragshift_run::components;

/// Flags of `chunk`.
#[derive(Debug, Args)]
pub struct ChunkArgs {
    /// Characters per chunk at most (the platform's default is 1000)
    #[arg(long, default_value_t = EmbeddingParams::DEFAULT_CHUNK_SIZE, value_name = "N")]
    pub chunk_size: usize,
    /// Characters shared by consecutive chunks (the platform's default is 200)
    #[arg(long, default_value_t = EmbeddingParams::DEFAULT_CHUNK_OVERLAP, value_name = "N")]
    pub chunk_overlap: usize,
    /// Files, URLs (http/https) or sitemap URLs
    #[arg(required = true, value_name = "FILE_OR_URL")]
    pub inputs: Vec<String>,
}

pub async fn run(global: &GlobalArgs, args: &ChunkArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[])?;
    let opts = components::ingest_options(&loaded.config.ingest)?;
    let params = EmbeddingParams {
        chunk_size: args.chunk_size,
        chunk_overlap: args.chunk_overlap,
        enable_partition_pdf: false,
    };
    let report = ragshift_ingest::preview(&args.inputs, params, &opts).await;
    output::report(global, &report, |r| format!("{}\n", r.render().trim_end()))?;
    Ok(Outcome::from_passed(!report.any_failed()))
}
