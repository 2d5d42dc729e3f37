//! `ragshift build-index`: the vector index, as an explicit step after loading, with its
//! memory chosen from its estimate and its progress shown (`--json`: one event per line,
//! `index_memory`, `index_progress`, then `summary`).

use clap::Args;
use ragshift_print as print;
use ragshift_run::components::ChunkTable;
use ragshift_store::index::{self, VectorIndex};

use crate::args::{overrides_of, AwsArgs, GlobalArgs, TargetArgs, VectorIndexArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `build-index`.
#[derive(Debug, Args)]
pub struct BuildIndexArgs {
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// AWS settings (for a secret ARN).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The index, its memory and parallel workers.
    #[command(flatten)]
    pub vector: VectorIndexArgs,
}

overrides_of!(BuildIndexArgs: target, aws, vector);

pub async fn run(global: &GlobalArgs, args: &BuildIndexArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[args])?;
    let config = &loaded.config;
    let table = ChunkTable::open(config).await?;
    let mut client = table.connect_existing("ragshift build-index").await?;
    let kind = VectorIndex::from_config(&config.target);
    let observer = print::progress::index_observer(global.json);
    let options = args.vector.index.options(&config.index, Some(observer))?;
    let outcome = index::ensure_vector_index_with(
        &mut client,
        Some(&table.spec),
        &table.layout,
        kind,
        &options,
    )
    .await
    .map_err(Failure::work)?;
    if global.json {
        output::line(print::index::summary_json(&outcome));
    } else {
        output::text(print::index::outcome(&outcome));
    }
    Ok(Outcome::Success)
}
