//! `plan` (and the plan `rebuild` shows before it asks): the table of bots, its totals, what was
//! left out and the estimate's assumptions.

use std::collections::BTreeMap;

use ragshift_run::plan::Plan;

use crate::{human_bytes, human_secs, Text};

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
pub fn table(plan: &Plan) -> String {
    let mut text = Text::default();
    text.line(format!(
        "{:<20} {:<26} {:<22} {:<9} {:>4} {:>4} {:>5} {:>10} {:>8} {:>10}",
        "USER", "BOT", "TITLE", "STATUS", "URLS", "MAPS", "FILES", "BYTES", "CHUNKS", "COST"
    ));
    for b in &plan.bots {
        text.line(format!(
            "{:<20} {:<26} {:<22} {:<9} {:>4} {:>4} {:>5} {:>10} {:>8} {:>10}",
            clip(&b.user_id, 20),
            clip(&b.bot_id, 26),
            clip(&b.title, 22),
            b.sync_status.as_deref().unwrap_or("-"),
            b.sources.urls,
            b.sources.sitemaps,
            b.sources.files,
            human_bytes(b.bytes),
            b.est_chunks,
            cost(b.est_cost_usd),
        ));
        if !b.missing_files.is_empty() {
            text.line(format!("    missing files: {}", b.missing_files.join(", ")));
        }
        for e in &b.errors {
            text.line(format!("    error: {e}"));
        }
    }
    let t = &plan.totals;
    text.line(String::new());
    text.line(format!(
        "total: {} bots, {} files, {}, ~{} chunks, ~{} tokens, ~{} to embed, ~{}",
        t.bots,
        t.files,
        human_bytes(t.bytes),
        t.est_chunks,
        t.est_tokens,
        cost(t.est_cost_usd),
        human_secs(t.est_seconds.ceil()),
    ));
    if t.missing_files > 0 {
        text.line(format!(
            "missing: {} file(s) named in bots' Knowledge are not in {}",
            t.missing_files,
            plan.documents.as_deref().unwrap_or("the document store")
        ));
    }
    if t.unsized_sources > 0 {
        text.line(format!(
            "not sized: {} URL/sitemap source(s) are fetched at rebuild time and not in the estimates",
            t.unsized_sources
        ));
    }
    if !plan.skipped.is_empty() {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &plan.skipped {
            *reasons.entry(s.reason.as_str()).or_default() += 1;
        }
        text.line(format!("skipped: {} bot(s)", plan.skipped.len()));
        for s in &plan.skipped {
            let who = match &s.user_id {
                Some(u) => format!("{u}/{}", s.bot_id),
                None => s.bot_id.clone(),
            };
            text.line(format!("  {who}: {}", s.reason));
        }
    }
    if !plan.invalid.is_empty() {
        text.line(format!(
            "invalid: {} registry item(s) could not be understood and are left out",
            plan.invalid.len()
        ));
        for i in &plan.invalid {
            text.line(format!("  {}: {}", i.key, i.error));
        }
    }
    let a = &plan.assumptions;
    text.line(format!(
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
    text.line(format!("registry: {}", plan.registry));
    text.into_string()
}
