//! `ragshift init-target`: the vector extension and the chunk table (with the tables its layout
//! needs, e.g. LangChain's collections), created as the layout's library creates them if
//! missing and never altered if present.

use ragshift_print as print;
use ragshift_run::components;
use ragshift_store::schema::{self, InitOutcome};
use serde_json::json;

use crate::args::{AwsArgs, EmbeddingArgs, GlobalArgs, TargetArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use clap::Args;
use ragshift_run::components::{connect_spec, Side};

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
    let spec = connect_spec(Side::Target, &config.target, &config.aws).await?;
    let layout = ragshift_store::Layout::from_config(&config.target);
    // The tables as the layout's library creates them (LangChain's collections too).
    let rows = ragshift_store::BotRows::from_config(&config.target);
    let mut client = ragshift_store::connect(&spec, "ragshift init-target").await?;
    let outcome = rows.init(&mut client, dimension).await?;
    let version = schema::vector_version(&client).await?.unwrap_or_default();
    let shape = rows.expected_shape(dimension);
    if global.json {
        output::json(&json!({
            "target": spec.label(),
            "table": layout.display_name(),
            "created": outcome == InitOutcome::Created,
            "dimension": dimension,
            "vector_version": version,
        }))?;
    } else {
        let (table, server) = (layout.display_name(), spec.label());
        let shape = shape.to_string();
        output::text(print::target::init(
            outcome, &table, &shape, server, &version,
        ));
    }
    Ok(Outcome::Success)
}
