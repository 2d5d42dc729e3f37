//! `ragshift config show`: the effective configuration, secrets masked, each value with where it
//! came from, so "why is it using that table?" has an answer.

use serde_json::json;

use crate::args::{
    overrides_of, AwsArgs, EmbeddingArgs, GlobalArgs, JournalArgs, SourceArgs, TargetArgs,
};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use clap::Args;

/// Flags of `config show`: every section can be overridden, to see the result.
#[derive(Debug, Args)]
pub struct ConfigShowArgs {
    /// Target overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Source overrides.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Embedding overrides.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// AWS overrides.
    #[command(flatten)]
    pub aws: AwsArgs,
}

overrides_of!(ConfigShowArgs: target, journal, source, embedding, aws);

pub fn run(global: &GlobalArgs, args: &ConfigShowArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[args])?;
    let entries = loaded.settings()?;
    if global.json {
        let values: serde_json::Value = serde_json::to_value(&loaded.config)?;
        let origins: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|s| (s.path.clone(), json!(s.origin)))
            .collect();
        output::json(&json!({ "config": values, "origins": origins }))?;
        return Ok(Outcome::Success);
    }
    output::text(ragshift_print::config::settings(&entries));
    Ok(Outcome::Success)
}
