//! `export` and `import` from a configuration: the location parsed, its S3 client built, the
//! database's secret read and `--bot` ids checked, all before any work, so that what follows
//! only moves data.

use ragshift_config::Config;
use ragshift_export::{ExportError, ExportReport, ImportOptions, ImportReport, Location};
use ragshift_store::{ConnectSpec, Layout};

use crate::checks;
use crate::components::{connect_spec, Side};

/// An export's or import's two ends: the directory or S3 prefix (with its client), and the
/// database with its chunk table.
pub struct Transfer {
    /// The export's directory or S3 prefix.
    pub location: Location,
    /// The S3 client, for an S3 location.
    pub s3: Option<aws_sdk_s3::Client>,
    /// The database read (export) or written (import).
    pub spec: ConnectSpec,
    /// Its chunk table.
    pub layout: Layout,
}

impl Transfer {
    /// `location` and the `side` database of `config` (`[source]` for an export, `[target]`
    /// for an import).
    pub async fn open(config: &Config, location: &str, side: Side) -> anyhow::Result<Self> {
        let location = Location::parse(location).map_err(anyhow::Error::msg)?;
        let db = match side {
            Side::Source => &config.source,
            Side::Target => &config.target,
        };
        let spec = connect_spec(side, db, &config.aws).await?;
        let layout = Layout::from_config(db);
        let s3 = location.s3_client(&config.aws).await;
        Ok(Self {
            location,
            s3,
            spec,
            layout,
        })
    }

    /// Where the manifest is (written by an export), for people.
    pub fn manifest(&self) -> String {
        self.location.name_of(ragshift_export::manifest::MANIFEST)
    }

    /// Imports the export at the location into the database.
    pub async fn import(&self, options: &ImportOptions) -> Result<ImportReport, ExportError> {
        ragshift_export::import(
            &self.location,
            self.s3.as_ref(),
            &self.spec,
            &self.layout,
            options,
        )
        .await
    }
}

/// An export of `[source]` ready to run.
pub struct PreparedExport {
    /// Where it goes and what it reads.
    pub transfer: Transfer,
    /// The embedding model recorded in the manifest.
    pub model: Option<String>,
    /// Only these bots (`None`: all).
    pub bots: Option<Vec<String>>,
}

impl PreparedExport {
    /// `[source]` to `to`; `bots` that match no row are refused; the model recorded is `model`,
    /// else `[embedding] model`.
    pub async fn prepare(
        config: &Config,
        to: &str,
        bots: &[String],
        model: Option<String>,
    ) -> anyhow::Result<Self> {
        let transfer = Transfer::open(config, to, Side::Source).await?;
        let why = "ragshift export (bots)";
        checks::require_bots(&transfer.spec, &transfer.layout, bots, why).await?;
        Ok(Self {
            transfer,
            model: model.or_else(|| config.embedding.model.clone()),
            bots: (!bots.is_empty()).then(|| bots.to_vec()),
        })
    }

    /// Runs the export, cutting files of tables without a partition key at `file_bytes`.
    pub async fn run(&self, file_bytes: u64) -> Result<ExportReport, ExportError> {
        let t = &self.transfer;
        let bots = self.bots.as_deref();
        let model = self.model.clone();
        ragshift_export::export(
            &t.spec,
            &t.layout,
            &t.location,
            t.s3.as_ref(),
            model,
            bots,
            file_bytes,
        )
        .await
    }
}
