//! `rebuild`: the plan's header before the confirmation, and the run's report as a table of
//! bots and its totals.

use ragshift_config::{Config, ExecutorKind};
use ragshift_run::launch::{PreparedRebuild, RebuildOutcome};
use ragshift_store::budget::BudgetReport;

use crate::Text;

/// Two lines under the plan's table: bots and sources, then target, executor and whether it is a
/// dry run.
pub fn plan_header(config: &Config, prepared: &PreparedRebuild, dry_run: bool) -> [String; 2] {
    let selected = &prepared.selected;
    let (spec, rows, dimension) = (
        &prepared.target.spec,
        &prepared.target.rows,
        prepared.dimension(),
    );
    let sources: usize = selected.bots.iter().map(|b| b.knowledge.len()).sum();
    [
        format!(
            "plan: {} bots with knowledge ({sources} sources), {} without (skipped)",
            selected.bots.len(),
            selected.skipped.len()
        ),
        format!(
            "      target {} table {} vector({dimension}); {} executor, {} at once{}",
            spec.label(),
            rows,
            match config.executor.kind {
                ExecutorKind::Local => "local",
                ExecutorKind::Ecs => "ECS",
            },
            config.executor.concurrency,
            if dry_run {
                "; DRY RUN: nothing is embedded or written"
            } else {
                ""
            }
        ),
    ]
}

/// The plan's header, where people read it: on stderr, or as log lines with `--json` (whose
/// stdout carries only the run's events).
pub fn announce(json: bool, config: &Config, prepared: &PreparedRebuild, dry_run: bool) {
    for l in plan_header(config, prepared, dry_run) {
        if json {
            tracing::info!("{l}");
        } else {
            eprintln!("{l}");
        }
    }
}

/// The run's report as one JSON line (`"event": "report"`, with the embedding's summary).
pub fn report_json(outcome: &RebuildOutcome) -> serde_json::Result<String> {
    let (report, embedding) = (&outcome.report, &outcome.embedding);
    serde_json::to_string(
        &serde_json::json!({ "event": "report", "report": report, "embedding": embedding }),
    )
}

/// A row per bot (with its failed sources), then the run's totals, embedding use and budget,
/// the index, and what to do about failures.
pub fn report(outcome: &RebuildOutcome) -> String {
    let (report, embedding) = (&outcome.report, &outcome.embedding);
    let mut t = Text::default();
    let (chars, tokens, est_cost) = (
        embedding.chars,
        embedding.est_tokens,
        embedding.est_cost_usd,
    );
    let mut bots: Vec<_> = report.bots.iter().collect();
    bots.sort_by(|a, b| (&a.user_id, &a.bot_id).cmp(&(&b.user_id, &b.bot_id)));
    t.line(format!(
        "{:<26}  {:<9}  {:>6}  {:>7}  error",
        "bot", "status", "chunks", "seconds"
    ));
    for b in bots {
        t.line(format!(
            "{:<26}  {:<9}  {:>6}  {:>7.1}  {}",
            b.bot_id,
            b.status,
            b.chunks,
            b.seconds,
            b.error.as_deref().unwrap_or("")
        ));
        for s in b.sources.iter().filter(|s| s.error.is_some()) {
            t.line(format!(
                "{:<26}    source {}: {}",
                "",
                s.source,
                s.error.as_deref().unwrap_or("")
            ));
        }
    }
    let verb = if report.dry_run {
        "would embed"
    } else {
        "embedded"
    };
    if let Some(why) = &report.fresh_reason {
        t.line(format!("new run {}: {why}", report.run_id));
    }
    for bot in &report.changed {
        t.line(format!(
            "{bot} changed in the registry since it succeeded in this run: redone"
        ));
    }
    t.line(format!(
        "run {}{}: {} succeeded, {} failed, {} skipped (no knowledge){}; {verb} {chars} characters (~{tokens} tokens{}) in {:.1}s",
        report.run_id,
        match &report.resumed_from {
            Some(r) => format!(
                " (resumed: continues the run started {} ago, {})",
                ragshift_run::rebuild::human_age(r.age_seconds),
                r.started_at
            ),
            None => String::new(),
        },
        report.succeeded,
        report.failed,
        report.skipped,
        if report.already_done > 0 { format!(", {} already done earlier", report.already_done) } else { String::new() },
        est_cost.map(|c| format!(", est. ${c:.4}")).unwrap_or_default(),
        report.seconds
    ));
    if let Some(u) = embedding.usage.as_ref().and_then(|u| u.usage.first()) {
        t.line(format!(
            "embedding {} {}: {} calls, {} retries, {} throttled, {} cache hits, {} truncated",
            u.provider, u.model, u.calls, u.retries, u.throttled, u.cache_hits, u.truncated
        ));
    }
    if let Some(b) = &report.budget {
        t.line(budget_line(b));
    }
    if let Some(def) = &report.index_built {
        t.line(format!("built the vector index: {def}"));
    }
    if report.failed > 0 && !report.dry_run {
        t.line(format!(
            "fix the causes above, then run the same command again (or `--resume {}`): bots that succeeded are skipped",
            report.run_id
        ));
    }
    t.into_string()
}

/// The run's embedding budget in one line: what every worker together sent against what the
/// configured limit allowed over the run.
pub fn budget_line(b: &BudgetReport) -> String {
    let limit = match (b.requests_per_window, b.tokens_per_window) {
        (Some(r), Some(t)) => format!("{r} requests and {t} tokens"),
        (Some(r), None) => format!("{r} requests"),
        (None, Some(t)) => format!("{t} tokens"),
        (None, None) => "no limit".to_owned(),
    };
    let used = match (b.requests_allowed, b.utilisation) {
        (Some(allowed), Some(u)) => format!(
            "; used {} of {allowed:.0} requests allowed over {:.1}s ({:.0}%)",
            b.calls,
            b.seconds,
            u * 100.0
        ),
        _ => String::new(),
    };
    format!(
        "embedding budget ({limit} per {}s, all workers): {} calls, {} throttled, rate lowered {} times{used}",
        b.window_secs, b.calls, b.throttles, b.rate_decreases
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_line_says_what_all_workers_used_of_the_limit() {
        let b = BudgetReport {
            window_secs: 60.0,
            requests_per_window: Some(100),
            calls: 150,
            throttles: 3,
            rate_decreases: 1,
            seconds: 90.0,
            requests_allowed: Some(200.0),
            utilisation: Some(0.75),
            ..Default::default()
        };
        assert_eq!(
            budget_line(&b),
            "embedding budget (100 requests per 60s, all workers): 150 calls, 3 throttled, \
             rate lowered 1 times; used 150 of 200 requests allowed over 90.0s (75%)"
        );
    }
}
