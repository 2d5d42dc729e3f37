//! `ragshift status`: what a run did, bot by bot, from the journal in the target; failures with
//! their reasons, and bots stuck in RUNNING whose job is gone (stale). Exit 1 when something
//! needs attention (failed or stale bots, or an unfinished run whose process is gone).

use clap::Args;
use ragshift_print as print;
use ragshift_run::components::{connect_spec, Side};
use ragshift_run::status::run_status;

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
    let config = &loaded.config;
    let spec = connect_spec(Side::Target, &config.target, &config.aws).await?;
    let client = ragshift_store::connect(&spec, "ragshift status").await?;
    let journal = ragshift_store::journal::Journal::from_config(&config.run);
    let Some(status) = run_status(&client, &journal, args.run_id.as_deref()).await? else {
        let what = match &args.run_id {
            Some(id) => format!("no run {id}"),
            None => "no runs yet".to_owned(),
        };
        return Err(anyhow::anyhow!("{what} in the journal of {}", spec.label()).into());
    };
    if global.json {
        output::json(&status)?;
    } else {
        output::text(print::status::run(&status));
    }
    Ok(if status.ended_badly() {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}
