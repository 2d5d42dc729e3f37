//! `ragshift build-index`: the vector index, as an explicit step after loading, with its
//! memory chosen from its estimate and its progress shown (`--json`: one event per line,
//! `index_memory`, `index_progress`, then `summary`).

use ragshift_store::index::{self, IndexOutcome, VectorIndex};
use serde_json::json;

use crate::args::{set_str, AwsArgs, GlobalArgs, IndexArgs, Overrides, TargetArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, progress, settings};
use clap::Args;
use ragshift_config::Layers;
use ragshift_run::checks;
use ragshift_run::components::{connect_spec, Side};

/// Flags of `build-index`.
#[derive(Debug, Args)]
pub struct BuildIndexArgs {
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// AWS settings (for a secret ARN).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// `hnsw` or `ivfflat` [config: target.index]
    #[arg(long, value_name = "KIND")]
    pub target_index: Option<String>,
    /// ivfflat lists [default: from the row count]
    #[arg(long, value_name = "N")]
    pub target_index_lists: Option<u32>,
    /// Memory and parallel workers for the build.
    #[command(flatten)]
    pub index: IndexArgs,
}

impl Overrides for BuildIndexArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.index.apply(self.aws.apply(self.target.apply(l)));
        let l = set_str(l, "--target-index", "target.index", &self.target_index);
        match self.target_index_lists {
            Some(n) => l.flag("--target-index-lists", "target.index_lists", u64::from(n)),
            None => l,
        }
    }
}

pub async fn run(global: &GlobalArgs, args: &BuildIndexArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[args])?;
    let t = &loaded.config.target;
    let spec = connect_spec(Side::Target, t, &loaded.config.aws).await?;
    let layout = ragshift_store::Layout::from_config(t);
    let mut client = ragshift_store::connect(&spec, "ragshift build-index").await?;
    checks::require_table(&client, &layout, spec.label()).await?;
    let kind = VectorIndex::from_config(t);
    let options = args.index.options(
        &loaded.config.index,
        Some(progress::index_observer(global.json)),
    )?;
    let outcome =
        index::ensure_vector_index_with(&mut client, Some(&spec), &layout, kind, &options)
            .await
            .map_err(Failure::work)?;
    match (&outcome, global.json) {
        (
            IndexOutcome::Built {
                definition,
                elapsed,
            },
            true,
        ) => output::line(
            json!({
                "event": "summary", "built": true, "definition": definition,
                "seconds": elapsed.as_secs_f64()
            })
            .to_string(),
        ),
        (IndexOutcome::Present(i), true) => output::line(
            json!({"event": "summary", "built": false, "definition": i.definition}).to_string(),
        ),
        (
            IndexOutcome::Built {
                definition,
                elapsed,
            },
            false,
        ) => output::line(format!(
            "built in {:.1}s: {definition}",
            elapsed.as_secs_f64()
        )),
        (IndexOutcome::Present(i), false) => output::line(format!(
            "a vector index is already there, nothing built: {}",
            i.definition
        )),
    }
    Ok(Outcome::Success)
}
