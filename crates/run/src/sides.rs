//! The two databases of `copy`, `verify` and `replicate` as a configuration names them: both
//! connections, replication's sides, and a whole verification, wired here once so that every
//! command and any library user get them the same way.

use ragshift_config::{Config, Loaded, Origin};
use ragshift_replicate::Sides;
use ragshift_store::journal::Journal;
use ragshift_store::ConnectSpec;
use ragshift_verify::{Options, Report, Store};

use crate::checks;
use crate::components::{connect_spec, registry_bots, Side};

/// `[source]` and `[target]`, reading their secrets when configured (the source first, so that
/// with neither set the missing source is the error).
pub async fn specs(config: &Config) -> anyhow::Result<(ConnectSpec, ConnectSpec)> {
    let source = connect_spec(Side::Source, &config.source, &config.aws).await?;
    let target = connect_spec(Side::Target, &config.target, &config.aws).await?;
    Ok((source, target))
}

/// Replication's sides: the one table both name (a target table named otherwise is refused
/// before any secret is read), both servers and the target's run journal.
pub async fn replication(loaded: &Loaded) -> anyhow::Result<Sides> {
    let (source_layout, target_layout) = ragshift_verify::layouts(loaded);
    let layout = Sides::table(source_layout, &target_layout).map_err(anyhow::Error::msg)?;
    let (source, target) = specs(&loaded.config).await?;
    Ok(Sides {
        source,
        target,
        layout,
        source_from_target: None,
        journal: Journal::from_config(&loaded.config.run),
    })
}

/// Whether a registry was configured anywhere (file, environment or flags): coverage is only
/// checked against a registry the user named, never against the default one.
pub fn registry_configured(loaded: &Loaded) -> bool {
    ["registry.kind", "registry.path", "registry.table"]
        .iter()
        .any(|k| loaded.origin(k) != Origin::Default)
}

/// `verify` from a configuration: the registry's bots when `coverage` is wanted and a registry
/// is configured, both sides connected, a table compared with itself refused, `options.bots`
/// that match rows on neither side refused, then [`ragshift_verify::verify`].
pub async fn verify(
    loaded: &Loaded,
    mut options: Options,
    coverage: bool,
) -> anyhow::Result<Report> {
    let config = &loaded.config;
    if coverage && registry_configured(loaded) {
        options.registry = Some(registry_bots(config).await?);
    }
    let (source_spec, target_spec) = specs(config).await?;
    let (source_layout, target_layout) = ragshift_verify::layouts(loaded);
    // The target's second connection answers the platform's queries beside the checksums.
    let (s, t, beside) = tokio::join!(
        ragshift_store::connect(&source_spec, "ragshift verify"),
        ragshift_store::connect(&target_spec, "ragshift verify"),
        ragshift_store::connect(&target_spec, "ragshift verify"),
    );
    let (s, t, beside) = (s?, t?, beside?);
    let source = Store {
        client: &s,
        layout: &source_layout,
        label: source_spec.label(),
        beside: None,
    };
    let target = Store {
        client: &t,
        layout: &target_layout,
        label: target_spec.label(),
        beside: Some(&beside),
    };
    if let Some(refusal) = ragshift_verify::same_table(&source, &target).await? {
        anyhow::bail!(refusal);
    }
    let sides = [
        (&s, &source_layout, source_spec.label()),
        (&t, &target_layout, target_spec.label()),
    ];
    let bots = options.bots.as_deref().unwrap_or_default();
    checks::require_bots_on_either(sides, bots).await?;
    Ok(ragshift_verify::verify(&source, &target, &options).await?)
}
