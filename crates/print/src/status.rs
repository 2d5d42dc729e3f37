//! `status`: a run from the journal as text.

use ragshift_run::status::RunStatus;
use ragshift_store::journal::Status;

use crate::Text;

/// The run, its units by state, each failure with its reason, stale units, how to resume.
pub fn run(status: &RunStatus) -> String {
    let mut t = Text::default();
    let r = &status.run;
    t.line(format!(
        "run {} ({}) {}{}, started {}{}",
        r.run_id,
        r.kind,
        r.status,
        if status.alive { ", in progress" } else { "" },
        r.started_at,
        r.finished_at
            .as_ref()
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    ));
    if let Some(e) = &r.error {
        t.line(format!("stopped by: {e}"));
    }
    let counts: Vec<String> = status
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    t.line(format!("units: {}", counts.join(", ")));
    for u in status.units.iter().filter(|u| u.status == Status::Failed) {
        t.line(format!(
            "  FAILED {}{}: {}",
            u.owner
                .as_deref()
                .map(|o| format!("{o}/"))
                .unwrap_or_default(),
            u.unit_id,
            u.error.as_deref().unwrap_or("")
        ));
    }
    for id in &status.stale {
        t.line(format!(
            "  STALE  {id}: still RUNNING but its job is gone (process died or task stopped)"
        ));
    }
    if status.resumable() {
        t.line(format!(
            "resume with: ragshift {} --resume {} (bots that succeeded are skipped)",
            r.kind, r.run_id
        ));
    }
    t.into_string()
}
