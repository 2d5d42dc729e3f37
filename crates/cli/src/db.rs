//! Turning `[target]`/`[source]` into connections: a URL, or a Secrets Manager secret in the
//! platform's format.

use anyhow::{bail, Context};
use ragshift_config::{AwsConfig, DatabaseConfig};
use ragshift_store::{ConnectSpec, Layout};

/// Which side a database is on, for messages.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// The new cluster.
    Target,
    /// The old cluster or a restored snapshot.
    Source,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Target => "target",
            Self::Source => "source",
        }
    }
}

/// Builds the connection spec for one side, reading the secret when one is configured.
pub async fn connect_spec(
    side: Side,
    db: &DatabaseConfig,
    aws: &AwsConfig,
) -> anyhow::Result<ConnectSpec> {
    let name = side.name();
    if let Some(url) = &db.url {
        return Ok(ConnectSpec::from_url(
            url.expose(),
            db.sslmode,
            db.sslrootcert.as_deref(),
        )?);
    }
    if let Some(arn) = &db.secret_arn {
        let sdk = ragshift_aws::sdk_config(aws).await;
        let parts = ragshift_aws::fetch_db_secret(&sdk, arn)
            .await
            .with_context(|| format!("reading the {name} database secret"))?;
        return Ok(ConnectSpec::from_parts(
            &parts,
            db.sslmode,
            db.sslrootcert.as_deref(),
        ));
    }
    bail!(
        "no {name} database configured: set [{name}] url or secret_arn (RAGSHIFT_{up}_URL, --{name}-url)",
        up = name.to_ascii_uppercase()
    )
}

/// The chunk table's layout on one side.
pub fn layout(db: &DatabaseConfig) -> Layout {
    Layout::from_config(db)
}

pub use ragshift_run::components::configured_dimension;

/// The `--bot` ids that match no row of `layout`'s table (trailing blanks of `character(n)`
/// ignored). A missing table matches nothing is left to the command's own check, which names
/// it: this returns no ids then.
pub async fn bots_without_rows(
    client: &tokio_postgres::Client,
    layout: &Layout,
    bots: &[String],
) -> anyhow::Result<Vec<String>> {
    if bots.is_empty() {
        return Ok(Vec::new());
    }
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&layout.qualified()])
        .await
        .with_context(|| format!("looking for {}", layout.display_name()))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let wanted: Vec<String> = bots.iter().map(|b| b.trim_end().to_owned()).collect();
    let sql = format!(
        "SELECT b FROM unnest($1::text[]) WITH ORDINALITY AS t(b, n)
          WHERE NOT EXISTS (SELECT 1 FROM {} WHERE rtrim({}::text) = b) ORDER BY n",
        layout.qualified(),
        ragshift_store::quote_ident(&layout.bot)
    );
    Ok(client
        .query(&sql, &[&wanted])
        .await
        .with_context(|| format!("looking up --bot ids in {}", layout.display_name()))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Refuses `--bot` ids that match nothing anywhere they were looked up, naming them.
pub fn refuse_unknown_bots(unknown: &[String], where_: &str) -> anyhow::Result<()> {
    if unknown.is_empty() {
        return Ok(());
    }
    bail!(
        "--bot {} matches no rows in {where_}: check the bot id{}",
        unknown.join(", "),
        if unknown.len() > 1 { "s" } else { "" }
    )
}

/// Refuses a command whose table isn't there, before it starts (exit 2, naming the table).
pub async fn require_table(
    client: &tokio_postgres::Client,
    layout: &Layout,
    server: &str,
) -> anyhow::Result<()> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&layout.qualified()])
        .await
        .with_context(|| format!("looking for {}", layout.display_name()))?
        .get(0);
    if !exists {
        bail!(
            "table {} not found on {server}: check [target] schema and table, or create it with `ragshift init-target`",
            layout.display_name()
        );
    }
    Ok(())
}
