//! Checks a command makes on a chunk table before it starts, so that a typo is a usage error
//! naming the table or the bot rather than work done on nothing: the table exists, and every
//! `--bot` id matches rows (copy, export and verify refuse ids that match nothing).

use anyhow::{bail, Context};
use ragshift_store::Layout;

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
    let exists = table_exists(client, layout).await?;
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

/// Refuses `--bot` ids that match no row of `layout`'s table on `spec` (copy and export read
/// one side), naming the table and the server; no ids, no check.
pub async fn require_bots(
    spec: &ragshift_store::ConnectSpec,
    layout: &Layout,
    bots: &[String],
    purpose: &str,
) -> anyhow::Result<()> {
    if bots.is_empty() {
        return Ok(());
    }
    let client = ragshift_store::connect(spec, purpose).await?;
    let unknown = bots_without_rows(&client, layout, bots).await?;
    refuse_unknown_bots(
        &unknown,
        &format!("{} on {}", layout.display_name(), spec.label()),
    )
}

/// Refuses `--bot` ids that match rows on neither side (`verify` compares both): each side as
/// its client, its table and its server's name.
pub async fn require_bots_on_either(
    sides: [(&tokio_postgres::Client, &Layout, &str); 2],
    bots: &[String],
) -> anyhow::Result<()> {
    let [(source, source_layout, source_server), (target, target_layout, target_server)] = sides;
    let in_source = bots_without_rows(source, source_layout, bots).await?;
    let in_neither: Vec<String> = bots_without_rows(target, target_layout, bots)
        .await?
        .into_iter()
        .filter(|b| in_source.contains(b))
        .collect();
    refuse_unknown_bots(
        &in_neither,
        &format!(
            "either {} on {source_server} or {} on {target_server}",
            source_layout.display_name(),
            target_layout.display_name()
        ),
    )
}

/// Refuses a command whose table isn't there, before it starts (exit 2, naming the table).
pub async fn require_table(
    client: &tokio_postgres::Client,
    layout: &Layout,
    server: &str,
) -> anyhow::Result<()> {
    let exists = table_exists(client, layout).await?;
    if !exists {
        bail!(
            "table {} not found on {server}: check [target] schema and table, or create it with `ragshift init-target`",
            layout.display_name()
        );
    }
    Ok(())
}

/// Whether `layout`'s table exists.
async fn table_exists(client: &tokio_postgres::Client, layout: &Layout) -> anyhow::Result<bool> {
    Ok(client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&layout.qualified()])
        .await
        .with_context(|| format!("looking for {}", layout.display_name()))?
        .get(0))
}
