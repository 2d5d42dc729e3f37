//! `ragshift status`: what a run did, bot by bot, from the journal in the target; failures with
//! their reasons, and bots stuck in RUNNING whose job is gone (stale). Exit 1 when something
//! needs attention (failed or stale bots, or an unfinished run whose process is gone).

use clap::Args;
use ragshift_run::status::run_status;
use ragshift_store::journal::Status;

use crate::args::{AwsArgs, GlobalArgs, JournalArgs, TargetArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};
use ragshift_run::components::{connect_spec, Side};

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run [default: the latest]
    #[arg(value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// AWS settings (for a secret ARN).
    #[command(flatten)]
    pub aws: AwsArgs,
}

pub async fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[&args.target, &args.journal, &args.aws])?;
    let config = &loaded.config;
    let spec = connect_spec(Side::Target, &config.target, &config.aws).await?;
    let client = ragshift_store::connect(&spec, "ragshift status").await?;
    let Some(status) = run_status(
        &client,
        &ragshift_store::journal::Journal::from_config(&config.run),
        args.run_id.as_deref(),
    )
    .await?
    else {
        let what = match &args.run_id {
            Some(id) => format!("no run {id}"),
            None => "no runs yet".to_owned(),
        };
        return Err(anyhow::anyhow!("{what} in the journal of {}", spec.label()).into());
    };
    let outcome = if status.ended_badly() {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    };
    if global.json {
        output::json(&status)?;
        return Ok(outcome);
    }
    let r = &status.run;
    output::line(format!(
        "run {} ({}) {}{}, started {}{}",
        r.run_id,
        r.kind,
        r.status,
        if status.alive { ", in progress" } else { "" },
        r.started_at,
        r.finished_at
            .as_ref()
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    ));
    if let Some(e) = &r.error {
        output::line(format!("stopped by: {e}"));
    }
    let counts: Vec<String> = status
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    output::line(format!("units: {}", counts.join(", ")));
    for u in status.units.iter().filter(|u| u.status == Status::Failed) {
        output::line(format!(
            "  FAILED {}{}: {}",
            u.owner
                .as_deref()
                .map(|o| format!("{o}/"))
                .unwrap_or_default(),
            u.unit_id,
            u.error.as_deref().unwrap_or("")
        ));
    }
    for id in &status.stale {
        output::line(format!(
            "  STALE  {id}: still RUNNING but its job is gone (process died or task stopped)"
        ));
    }
    if status.resumable() {
        output::line(format!(
            "resume with: ragshift {} --resume {} (bots that succeeded are skipped)",
            r.kind, r.run_id
        ));
    }
    Ok(outcome)
}
