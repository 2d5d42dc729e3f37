//! `ragshift export`: a portable, checksummed Parquet copy of the store (every table whole, one
//! file per bot and a manifest), on disk or S3, taken from one read-only snapshot of the source — before a
//! destructive deploy, so that neither a snapshot restore nor re-embedding is needed.

use clap::Args;
use ragshift_config::{Layers, Sensitive};
use ragshift_print as print;
use ragshift_run::transfer::PreparedExport;

use crate::args::{url_or_arn, AwsArgs, GlobalArgs, Overrides, SourceArgs};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where: a local directory or s3://bucket/prefix
    #[arg(long, value_name = "DIR|S3URL")]
    pub to: String,
    /// The database to export: a postgres:// URL or a Secrets Manager secret ARN
    #[arg(long, value_name = "URL|ARN")]
    pub source: Option<Sensitive>,
    /// Source database.
    #[command(flatten)]
    pub source_db: SourceArgs,
    /// AWS settings (secret ARNs, S3).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Export only this bot (repeat for several)
    #[arg(long = "bot", value_name = "ID")]
    pub bots: Vec<String>,
    /// The embedding model the vectors came from, recorded in the manifest
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,
    /// Bytes of values per file of a table without a partition key (files are cut at primary
    /// key boundaries)
    #[arg(long, value_name = "BYTES", default_value_t = ragshift_export::DEFAULT_FILE_BYTES)]
    pub max_file_bytes: u64,
}

impl Overrides for ExportArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.aws.apply(self.source_db.apply(l));
        url_or_arn(l, "--source", "source", &self.source)
    }
}

pub async fn run(global: &GlobalArgs, args: &ExportArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[args])?;
    let model = args.model.clone();
    let export = PreparedExport::prepare(&loaded.config, &args.to, &args.bots, model).await?;
    let report = export
        .run(args.max_file_bytes)
        .await
        .map_err(Failure::phased)?;
    let manifest = export.transfer.manifest();
    output::report(global, &report, |r| print::transfer::export(r, &manifest))
        .map_err(Failure::work)?;
    Ok(Outcome::Success)
}
