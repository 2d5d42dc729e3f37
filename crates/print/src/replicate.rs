//! `replicate start|status|cutover|abort`: each report as text, and cutover's progress as log
//! lines.

use ragshift_replicate::prerequisites::Level;
use ragshift_replicate::{AbortReport, CutoverReport, ReplicationStatus, StartReport, Step};

use crate::Text;

/// Cutover's progress as log lines: each step once, though a waiting step repeats until it
/// is done.
pub fn steps() -> impl FnMut(Step<'_>) + Send {
    let mut last = String::new();
    move |step| {
        let text = step.to_string();
        if text != last {
            tracing::info!("{text}");
            last = text;
        }
    }
}

/// The prerequisite checks, then what was created (or that a dry run created nothing).
pub fn start(report: &StartReport) -> String {
    let mut t = Text::default();
    for c in &report.plan.checks {
        t.line(format!(
            "{:<4} {} {}: {}",
            match c.level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            },
            c.side,
            c.name,
            c.detail
        ));
    }
    t.line(&report.plan.transfer.reason);
    match &report.names {
        None => t.line("dry run: nothing was created"),
        Some(n) => {
            t.line(format!(
                "started {}: publication {} on the source, subscription {} (slot {}) on the target",
                n.run_id, n.publication, n.subscription, n.slot
            ));
            for p in &report.password {
                t.line(format!("note: {p}"));
            }
            t.line(
                "the initial copy is running; follow it with `ragshift replicate status --watch`, then `ragshift replicate cutover`",
            );
        }
    }
    t.into_string()
}

/// Where replication stands: positions, lag, initial sync, rows, errors, problems.
pub fn status(s: &ReplicationStatus) -> String {
    let mut t = Text::default();
    t.line(format!(
        "replication {}: {} ({} transfer), publication {}, subscription {}",
        s.run_id,
        s.table,
        if s.binary { "binary" } else { "text" },
        s.publication,
        s.subscription
    ));
    let slot = match &s.slot {
        Some(sl) => format!(
            "confirmed {}, slot {}{}",
            sl.confirmed_flush_lsn.as_deref().unwrap_or("-"),
            if sl.active { "active" } else { "inactive" },
            sl.wal_status
                .as_deref()
                .map(|w| format!(", WAL {w}"))
                .unwrap_or_default()
        ),
        None => "slot missing".to_owned(),
    };
    t.line(format!(
        "  source at {}, {}: {} bytes behind",
        s.source_lsn,
        slot,
        s.behind_bytes.map_or("?".to_owned(), |b| b.to_string())
    ));
    t.line(format!(
        "  target received {}, reported {}, last message {}",
        s.received_lsn.as_deref().unwrap_or("-"),
        s.latest_end_lsn.as_deref().unwrap_or("-"),
        s.last_message_at.as_deref().unwrap_or("-")
    ));
    for tb in &s.tables {
        t.line(format!("  initial sync: {} {}", tb.table, tb.description));
    }
    t.line(format!(
        "  rows: source {}, target {}; errors: {} apply, {} sync",
        s.source_rows,
        s.target_rows,
        s.apply_errors.map_or("?".to_owned(), |n| n.to_string()),
        s.sync_errors.map_or("?".to_owned(), |n| n.to_string())
    ));
    t.line(format!(
        "  caught up: {}",
        if s.caught_up { "yes" } else { "no" }
    ));
    for p in &s.problems {
        t.line(format!("  ! {p}"));
    }
    t.into_string()
}

/// The verification, then the cutover's outcome: what was built, removed and left, and what to
/// do now (or why it was refused and what to run next).
pub fn cutover(report: &CutoverReport) -> String {
    let mut t = Text::default();
    t.push(&crate::verify::report(&report.verify));
    if report.passed {
        if let Some(i) = &report.index {
            t.line(if i.built {
                format!("built in {:.1}s: {}", i.seconds, i.definition)
            } else {
                format!("vector index already there: {}", i.definition)
            });
        }
        if let Some(e) = &report.index_error {
            t.line(format!("FAILED {e}"));
        }
        removed_and_left(&mut t, &report.removed, &report.left);
        t.line(format!("cut over ({}). Now:", report.run_id));
        for s in &report.switch {
            t.line(format!("  - {s}"));
        }
    } else {
        t.line(
            "cutover refused: fix the differences above (or stop what still changes the target) and run cutover again",
        );
        for n in &report.next {
            t.line(format!("  - {n}"));
        }
    }
    t.into_string()
}

/// What an abort removed and left; `target` names the target when nothing was running.
pub fn abort(report: &AbortReport, target: &str) -> String {
    let mut t = Text::default();
    match &report.run_id {
        None => t.line(format!(
            "no replication is running into {target}: nothing to remove"
        )),
        Some(run) if report.after_cutover => t.line(format!(
            "{run} was already cut over: only its write fence on the old source was left"
        )),
        Some(run) => t.line(format!("aborted {run}")),
    }
    if report.run_id.is_some() {
        removed_and_left(&mut t, &report.removed, &report.left);
    }
    t.into_string()
}

fn removed_and_left(t: &mut Text, removed: &[String], left: &[String]) {
    for r in removed {
        t.line(format!("removed {r}"));
    }
    for l in left {
        t.line(format!("LEFT {l}"));
    }
}
