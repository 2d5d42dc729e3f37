//! `ragshift plan`: step one of a migration. Finds every bot in the registry (live table or an
//! export), sizes what each holds (documents listed, never downloaded), and estimates chunks,
//! embedding cost and time before anything is touched. It only reads and reports: invalid
//! registry items and missing files are listed, and the exit code stays 0. The plan itself is
//! [`ragshift_run::plan`]; this prints it.

use anyhow::anyhow;
use clap::Args;
use ragshift_print as print;
use ragshift_registry::{BotSelector, Selection};
use ragshift_run::plan::Plan;

use crate::args::{AwsArgs, BotSourcesArgs, GlobalArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this bot: BOT_ID, or USER_ID/BOT_ID to read it directly (repeatable)
    #[arg(long = "bot", value_name = "ID")]
    pub bots: Vec<String>,
    /// Only this user's bots, or the owner of the --bot ids (repeatable)
    #[arg(long = "user", value_name = "ID")]
    pub users: Vec<String>,
    /// Where the bots are listed and the uploaded files are, and the embedding model whose
    /// cost and rate are estimated.
    #[command(flatten)]
    pub sources: BotSourcesArgs,
    /// AWS settings and stack discovery.
    #[command(flatten)]
    pub aws: AwsArgs,
}

pub async fn run(global: &GlobalArgs, args: &PlanArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[&args.sources, &args.aws])?;
    let selection = Selection {
        users: args.users.clone(),
        bots: args
            .bots
            .iter()
            .map(|b| b.parse::<BotSelector>().map_err(|e| anyhow!("--bot {e}")))
            .collect::<anyhow::Result<_>>()?,
    };
    let plan = Plan::compute(&loaded.config, &selection).await?;
    output::report(global, &plan, print::plan::table)?;
    Ok(Outcome::Success)
}
