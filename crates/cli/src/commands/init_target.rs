//! `ragshift init-target`: the vector extension and the chunk table (with the tables its layout
//! needs, e.g. LangChain's collections), created as the layout's library creates them if
//! missing and never altered if present.

use ragshift_print as print;
use ragshift_run::{components, target};

use crate::args::{AwsArgs, EmbeddingArgs, GlobalArgs, TargetArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use clap::Args;

/// Flags of `init-target`.
#[derive(Debug, Args)]
pub struct InitTargetArgs {
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Embedding settings (they decide the vector dimension).
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// AWS settings (for a secret ARN).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Vector dimension [default: the configured embedder's]
    #[arg(long, value_name = "N")]
    pub dimensions: Option<usize>,
}

pub async fn run(global: &GlobalArgs, args: &InitTargetArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[&args.target, &args.embedding, &args.aws])?;
    let config = &loaded.config;
    let dimension = match args.dimensions {
        Some(d) => d,
        None => components::embedder_dimension(config).await?,
    };
    let report = target::init(config, dimension).await?;
    output::report(global, &report, |r| {
        print::target::init(r.outcome, &r.table, &r.shape, &r.target, &r.vector_version)
    })?;
    Ok(Outcome::Success)
}
