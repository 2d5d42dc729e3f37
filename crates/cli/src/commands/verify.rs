//! `ragshift verify`: prove a migration (after rebuild, copy, import or replicate): per-bot
//! counts and checksums of every column on both sides, registry coverage when a registry is
//! configured, and retrieval agreement on sample queries. Exit 0 only when everything matches.

use clap::Args;
use ragshift_config::Layers;
use ragshift_print as print;
use ragshift_verify::Options;

use crate::args::{registry_flags, AwsArgs, DatabasesArgs, GlobalArgs, Overrides};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `verify`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  ragshift verify --source postgres://app:pw@old.example/rag --target postgres://app:pw@new.example/rag
  ragshift verify --source arn:aws:secretsmanager:...:secret:old --target arn:...:secret:new --queries 10
  ragshift verify ... --bot 01HZX5Q8J6N2W4V7T9R3K1M0PB --json
  ragshift verify ... --registry-file bots.json      # also: every bot with knowledge has rows

Checks: per bot, row count and a checksum of every column (vectors in binary form) on both
sides; registry coverage (bots with knowledge and no rows, orphan rows) when [registry] is
configured; exact top-k of sample queries on both sides (overlap@k must be 1.0) and the
platform's query on the target's real index (recall@k, reported with the index settings).
Exit 0 when everything matches, 1 when something differs, 2 when it could not run.")]
pub struct VerifyArgs {
    /// The databases.
    #[command(flatten)]
    pub databases: DatabasesArgs,
    /// AWS settings (for secret ARNs and a DynamoDB registry).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Verify only this bot (repeat for several)
    #[arg(long = "bot", value_name = "ID")]
    pub bots: Vec<String>,
    /// Sample queries per bot for retrieval agreement (0 skips it)
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub queries: usize,
    /// Results per query (the platform's max_results)
    #[arg(long, default_value_t = 20, value_name = "K")]
    pub k: usize,
    /// Differing ids listed per bot
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_ids: usize,
    /// Registry export (DynamoDB JSON) for coverage [config: registry.path, kind = file]
    #[arg(long, value_name = "FILE", conflicts_with = "registry_table")]
    pub registry_file: Option<std::path::PathBuf>,
    /// Live DynamoDB registry table for coverage [config: registry.table, kind = dynamodb]
    #[arg(long, value_name = "TABLE")]
    pub registry_table: Option<String>,
    /// Skip registry coverage even when a registry is configured
    #[arg(long, conflicts_with_all = ["registry_file", "registry_table"])]
    pub no_registry: bool,
    /// List orphan rows (bots not in the registry) without failing
    #[arg(long)]
    pub allow_orphans: bool,
    /// Fail when the target index's recall@k is below this (0..1) [default: report only]
    #[arg(long, value_name = "R")]
    pub min_recall: Option<f64>,
}

impl Overrides for VerifyArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.aws.apply(self.databases.apply(l));
        registry_flags(l, &self.registry_table, &self.registry_file)
    }
}

pub async fn run(global: &GlobalArgs, args: &VerifyArgs) -> Result<Outcome, Failure> {
    let options = Options {
        bots: (!args.bots.is_empty()).then(|| args.bots.clone()),
        queries: args.queries,
        k: args.k,
        max_ids: args.max_ids,
        // Filled from the registry, when one is configured and --no-registry isn't given.
        registry: None,
        allow_orphans: args.allow_orphans,
        min_recall: args.min_recall,
        vector_index_later: false,
    }
    .checked()
    .map_err(anyhow::Error::msg)?;
    let loaded = settings::load(global, &[args])?;
    let report = ragshift_run::sides::verify(&loaded, options, !args.no_registry).await?;
    output::report(global, &report, print::verify::report).map_err(Failure::work)?;
    Ok(Outcome::from_passed(report.passed()))
}
