//! `verify` (and the verification inside `replicate cutover`): the report as text.

use ragshift_verify::Report;

use crate::Text;

/// Both sides, checksums, registry coverage, retrieval agreement, then the verdict with every
/// problem.
pub fn report(r: &Report) -> String {
    let mut t = Text::default();
    t.line(format!(
        "source {} ({})\ntarget {} ({})",
        r.source, r.source_table, r.target, r.target_table
    ));
    let c = &r.checksums;
    t.line(format!(
        "checksums: {} bots, {} match; rows: source {}, target {}",
        c.bots_compared, c.bots_matching, c.source_rows, c.target_rows
    ));
    if let Some(cov) = &r.coverage {
        t.line(format!(
            "registry: {} bots, {} with knowledge, {} without rows, {} orphan bots in the target",
            cov.registry_bots,
            cov.with_knowledge,
            cov.without_rows.len(),
            cov.orphans.len()
        ));
    }
    match (&r.retrieval, &r.retrieval_skipped) {
        (Some(q), _) => {
            t.line(format!(
                "retrieval: {} queries over {} bots, exact overlap@{} {:.3} (min {:.3}; {} bots the same row for row, searched once)",
                q.queries, q.bots, q.k, q.overlap_at_k, q.min_overlap, q.overlap_by_checksum
            ));
            let settings: Vec<String> =
                q.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
            match &q.index {
                Some(i) => t.line(format!(
                    "target index {} ({}): recall@{} {:.3} (min {:.3}), index used for {} of {} bots ({} queries planned without it: exact), {} short answers; settings {}",
                    i.name,
                    i.method,
                    q.k,
                    q.recall_at_k,
                    q.min_recall,
                    q.index_used_bots,
                    q.bots,
                    q.exact_by_plan,
                    q.short_results,
                    settings.join(" ")
                )),
                None => t.line(
                    "target has no vector index: the platform's query is exact but slow (ragshift build-index)",
                ),
            }
        }
        (None, Some(why)) => t.line(format!("retrieval: skipped ({why})")),
        (None, None) => {}
    }
    if r.passed {
        t.line("verified: everything matches");
    } else {
        t.line(format!("NOT verified: {} problems", r.failures.len()));
        for f in &r.failures {
            t.line(format!("  - {f}"));
        }
    }
    t.into_string()
}
