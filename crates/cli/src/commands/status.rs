//! `ragshift status`: what a run did, bot by bot, from the journal in the target; failures with
//! their reasons, and bots stuck in RUNNING whose job is gone (stale). Exit 1 when something
//! needs attention (failed or stale bots, or an unfinished run whose process is gone).

use clap::Args;
use ragshift_print as print;

use crate::args::{GlobalArgs, TargetRunArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run [default: the latest]
    #[arg(value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// Target database, the run journal's schema and AWS (for a secret ARN).
    #[command(flatten)]
    pub target: TargetRunArgs,
}

pub async fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[&args.target])?;
    let status = ragshift_run::status::load(&loaded.config, args.run_id.as_deref()).await?;
    output::report(global, &status, print::status::run)?;
    Ok(Outcome::from_passed(!status.ended_badly()))
}
