//! `ragshift import`: an export (see `ragshift export`) into the target: every file's SHA-256
//! checked against the manifest before anything is written, the exported tables recreated as
//! they were (or loaded into tables of the same shape), each bot (collection, key range) in one
//! transaction, the result compared with the manifest's checksums.

use clap::Args;
use ragshift_config::{Layers, Sensitive};
use ragshift_export::ImportOptions;
use ragshift_print as print;
use ragshift_run::components::Side;
use ragshift_run::transfer::Transfer;

use crate::args::{
    given, url_or_arn, AwsArgs, GlobalArgs, IndexArgs, JournalArgs, Overrides, TargetArgs,
};
use crate::failure::{Failure, Outcome};
use crate::{output, settings};

/// Flags of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export: a local directory or s3://bucket/prefix
    #[arg(long, value_name = "DIR|S3URL")]
    pub from: String,
    /// The database to write: a postgres:// URL or a Secrets Manager secret ARN
    #[arg(long, value_name = "URL|ARN")]
    pub target: Option<Sensitive>,
    /// Target database.
    #[command(flatten)]
    pub target_db: TargetArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// AWS settings (secret ARNs, S3).
    #[command(flatten)]
    pub aws: AwsArgs,
    /// `hnsw` or `ivfflat` [config: target.index]
    #[arg(long, value_name = "KIND")]
    pub target_index: Option<String>,
    /// Don't build the vector index afterwards
    #[arg(long)]
    pub no_index: bool,
    /// Memory and parallel workers for the index builds.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Skip comparing the target's checksums with the manifest's
    #[arg(long)]
    pub no_verify: bool,
}

impl Overrides for ImportArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.aws.apply(self.journal.apply(self.target_db.apply(l)));
        let l = self.index.apply(l);
        let l = given!(l, self, target_index => "target.index");
        url_or_arn(l, "--target", "target", &self.target)
    }
}

pub async fn run(global: &GlobalArgs, args: &ImportArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(global, &[args])?;
    let transfer = Transfer::open(&loaded.config, &args.from, Side::Target).await?;
    // `--json` prints one report object: the builds' progress stays off stdout then.
    let observer = (!global.json).then(|| print::progress::index_observer(false));
    let index_build = args.index.options(&loaded.config.index, observer)?;
    let opts = ImportOptions::configured(&loaded, !args.no_index, index_build, !args.no_verify);
    let report = transfer.import(&opts).await.map_err(Failure::phased)?;
    output::report(global, &report, print::transfer::import).map_err(Failure::work)?;
    Ok(Outcome::from_passed(report.problems.is_empty()))
}
