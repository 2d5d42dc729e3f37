//! `ragshift config show`: the effective configuration, secrets masked, each value with where it
//! came from, so "why is it using that table?" has an answer.

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
        output::json(&ragshift_print::config::json(&loaded.config, &entries)?)?;
    } else {
        output::text(ragshift_print::config::settings(&entries));
    }
    Ok(Outcome::Success)
}
