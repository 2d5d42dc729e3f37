//! `ragshift plan`: step one of a migration. Finds every bot in the registry (live table or an
//! export), sizes what each holds (documents listed, never downloaded), and estimates chunks,
//! embedding cost and time before anything is touched. It only reads and reports: invalid
//! registry items and missing files are listed, and the exit code stays 0. The plan itself is
//! [`ragshift_run::plan`]; this prints it.

use std::collections::BTreeMap;

use anyhow::anyhow;
use clap::Args;
use ragshift_registry::{BotSelector, Selection};
use ragshift_run::plan::Plan;

use crate::args::{AwsArgs, DocumentsArgs, EmbeddingArgs, GlobalArgs, RegistryArgs};
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
    /// Where the bots are listed.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Where the uploaded files are.
    #[command(flatten)]
    pub documents: DocumentsArgs,
    /// The embedding model whose cost and rate are estimated.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
    /// AWS settings and stack discovery.
    #[command(flatten)]
    pub aws: AwsArgs,
}

pub async fn run(global: &GlobalArgs, args: &PlanArgs) -> Result<Outcome, Failure> {
    let loaded = settings::load(
        global,
        &[&args.registry, &args.documents, &args.embedding, &args.aws],
    )?;
    let selection = Selection {
        users: args.users.clone(),
        bots: args
            .bots
            .iter()
            .map(|b| b.parse::<BotSelector>().map_err(|e| anyhow!("--bot {e}")))
            .collect::<anyhow::Result<_>>()?,
    };
    let plan = Plan::compute(&loaded.config, &selection).await?;
    if global.json {
        output::json(&plan)?;
    } else {
        print_table(&plan);
    }
    Ok(Outcome::Success)
}

fn human_duration(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn cost(c: Option<f64>) -> String {
    c.map_or_else(|| "?".to_owned(), |c| format!("${c:.4}"))
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

/// The plan as a table, then its totals, what was left out and the assumptions.
pub fn print_table(plan: &Plan) {
    let line = |s: String| output::line(s);
    line(format!(
        "{:<20} {:<26} {:<22} {:<9} {:>4} {:>4} {:>5} {:>10} {:>8} {:>10}",
        "USER", "BOT", "TITLE", "STATUS", "URLS", "MAPS", "FILES", "BYTES", "CHUNKS", "COST"
    ));
    for b in &plan.bots {
        line(format!(
            "{:<20} {:<26} {:<22} {:<9} {:>4} {:>4} {:>5} {:>10} {:>8} {:>10}",
            clip(&b.user_id, 20),
            clip(&b.bot_id, 26),
            clip(&b.title, 22),
            b.sync_status.as_deref().unwrap_or("-"),
            b.sources.urls,
            b.sources.sitemaps,
            b.sources.files,
            crate::output::human_bytes(b.bytes),
            b.est_chunks,
            cost(b.est_cost_usd),
        ));
        if !b.missing_files.is_empty() {
            line(format!("    missing files: {}", b.missing_files.join(", ")));
        }
        for e in &b.errors {
            line(format!("    error: {e}"));
        }
    }
    let t = &plan.totals;
    line(String::new());
    line(format!(
        "total: {} bots, {} files, {}, ~{} chunks, ~{} tokens, ~{} to embed, ~{}",
        t.bots,
        t.files,
        crate::output::human_bytes(t.bytes),
        t.est_chunks,
        t.est_tokens,
        cost(t.est_cost_usd),
        human_duration(t.est_seconds),
    ));
    if t.missing_files > 0 {
        line(format!(
            "missing: {} file(s) named in bots' Knowledge are not in {}",
            t.missing_files,
            plan.documents.as_deref().unwrap_or("the document store")
        ));
    }
    if t.unsized_sources > 0 {
        line(format!(
            "not sized: {} URL/sitemap source(s) are fetched at rebuild time and not in the estimates",
            t.unsized_sources
        ));
    }
    if !plan.skipped.is_empty() {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &plan.skipped {
            *reasons.entry(s.reason.as_str()).or_default() += 1;
        }
        line(format!("skipped: {} bot(s)", plan.skipped.len()));
        for s in &plan.skipped {
            let who = match &s.user_id {
                Some(u) => format!("{u}/{}", s.bot_id),
                None => s.bot_id.clone(),
            };
            line(format!("  {who}: {}", s.reason));
        }
    }
    if !plan.invalid.is_empty() {
        line(format!(
            "invalid: {} registry item(s) could not be understood and are left out",
            plan.invalid.len()
        ));
        for i in &plan.invalid {
            line(format!("  {}: {}", i.key, i.error));
        }
    }
    let a = &plan.assumptions;
    line(format!(
        "model: {} ({}), {} per 1k tokens from the {}; tokens ≈ characters/4; rate {} tokens/min{} ({})",
        a.model,
        a.provider,
        a.price_per_1k_tokens
            .map_or_else(|| "no price".to_owned(), |p| format!("${p}")),
        a.price_source,
        a.tokens_per_minute,
        a.requests_per_minute
            .map(|r| format!(", {r} requests/min"))
            .unwrap_or_default(),
        a.rate_source,
    ));
    line(format!("registry: {}", plan.registry));
}
