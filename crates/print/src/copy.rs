//! `copy`: its progress events as log lines (or JSON lines) and its report as text.

use ragshift_copy::{CopyReport, Event};
use ragshift_store::index_build::{IndexEvent, IndexObserver};

use crate::{human_bytes, human_secs, out, Text};

/// Shows one copy event: a JSON line with `json`, else a log line where it says something.
pub fn event(json: bool, e: &Event) {
    if json {
        return out::json_line(e);
    }
    match e {
        Event::Planned {
            run_id,
            resumed,
            partitions,
            already_done,
            rows,
            snapshot,
        } => tracing::info!(
            "{} run {run_id}: {rows} rows in {partitions} partitions ({already_done} done before), source snapshot {snapshot}",
            if *resumed { "resuming" } else { "starting" }
        ),
        Event::Progress {
            rows,
            mb,
            mb_per_s,
            partitions_done,
            partitions_total,
            eta_seconds,
        } => tracing::info!(
            "{partitions_done}/{partitions_total} partitions, {rows} rows, {mb:.1} MB, {mb_per_s:.1} MB/s{}",
            eta_seconds
                .map(|s| format!(", ETA {}", human_secs(s)))
                .unwrap_or_default()
        ),
        Event::Partition {
            partition,
            what,
            status,
            error: Some(err),
            ..
        } => tracing::error!("partition {partition} ({what}) {status}: {err}"),
        Event::Partition { .. } => {}
        Event::Index {
            name,
            seconds,
            error,
        } => match error {
            None => tracing::info!("built {name} in {seconds:.1}s"),
            Some(err) => tracing::error!("index {name} failed: {err}"),
        },
        Event::Verified { .. } => {}
        Event::IndexMemory(m) => index_event(&IndexEvent::IndexMemory(m.clone())),
        Event::IndexProgress(p) => index_event(&IndexEvent::IndexProgress(p.clone())),
    }
}

/// Index build events on a terminal or in the log (the engine already logged any memory
/// warning).
fn index_event(e: &IndexEvent) {
    static SHOW: std::sync::OnceLock<IndexObserver> = std::sync::OnceLock::new();
    SHOW.get_or_init(|| crate::progress::index_observer(false))(e)
}

/// The end of a copy as a JSON line: the report with `"event": "summary"` and `succeeded`.
pub fn summary_json(r: &CopyReport) -> serde_json::Result<String> {
    let mut v = serde_json::to_value(r)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("event".into(), "summary".into());
        o.insert("succeeded".into(), r.succeeded().into());
    }
    serde_json::to_string(&v)
}

/// A copy's report: the plan of a dry run, or what was copied, built and verified.
pub fn report(r: &CopyReport) -> String {
    if r.dry_run {
        return dry_run(r);
    }
    let mut t = Text::default();
    t.line(format!(
        "run {}: copied {} rows ({:.1} MB) in {} partitions in {:.1}s ({:.1} MB/s){}; {} → {} on {}",
        r.run_id,
        r.rows,
        r.bytes as f64 / 1e6,
        r.partitions_copied,
        r.data_seconds,
        r.bytes as f64 / 1e6 / r.data_seconds.max(1e-3),
        if r.partitions_skipped > 0 {
            format!(", {} partitions were done before", r.partitions_skipped)
        } else {
            String::new()
        },
        r.source_table,
        r.target_table,
        r.target
    ));
    for p in &r.parents {
        t.line(format!(
            "referenced table {}: {} ({} rows)",
            p.table, p.action, p.rows
        ));
    }
    for s in &r.sequences {
        t.line(format!("sequence {s}"));
    }
    for f in &r.failures {
        t.line(format!(
            "FAILED partition {} ({}): {}",
            f.partition, f.what, f.error
        ));
    }
    if let Some(why) = &r.stopped {
        t.line(format!("STOPPED: {why}"));
    }
    if !r.failures.is_empty() || r.stopped.is_some() {
        t.line(
            "indexes and verification were skipped; fix the cause and run the same command with --resume",
        );
    }
    let built = r.indexes.iter().filter(|i| i.error.is_none()).count();
    if !r.indexes.is_empty() {
        t.line(format!(
            "built {built} of {} indexes/constraints in {:.1}s",
            r.indexes.len(),
            r.index_seconds
        ));
    }
    for i in r.indexes.iter().filter(|i| i.error.is_some()) {
        t.line(format!(
            "FAILED {}: {}",
            i.name,
            i.error.as_deref().unwrap_or_default()
        ));
    }
    if let Some(v) = &r.verify {
        if v.passed() {
            t.line(format!(
                "verified: {} bots, {} rows, counts and checksums of every column match ({:.1}s)",
                v.bots, v.target_rows, v.seconds
            ));
        } else {
            t.line(format!(
                "VERIFICATION FAILED: {} of {} bots differ (source {} rows, target {} rows)",
                v.mismatches.len(),
                v.bots,
                v.source_rows,
                v.target_rows
            ));
            for m in &v.mismatches {
                t.line(format!("  {}", m.describe()));
            }
            t.line("re-copy the listed bots with `ragshift copy --replace --bot ID ...`");
        }
    }
    t.line(format!("done in {:.1}s", r.seconds));
    t.into_string()
}

/// What a dry run would do: rows, partitions, the tables first, the indexes after.
fn dry_run(r: &CopyReport) -> String {
    let mut t = Text::default();
    t.line(format!(
        "dry run: would copy {} rows ({}) of {} on {} into {} on {} ({}), in {} partitions{}",
        r.planned_rows,
        human_bytes(r.planned_bytes.max(0) as u64),
        r.source_table,
        r.source,
        r.target_table,
        r.target,
        if r.created_table {
            "a new table"
        } else {
            "the existing table"
        },
        r.partitions,
        if r.resumed {
            format!(", {} of them done already", r.partitions_skipped)
        } else {
            String::new()
        }
    ));
    for p in &r.parents {
        t.line(format!(
            "  first: {} whole (moved with the chunk table: it refers to it, or --extra-table names it)",
            p.table
        ));
    }
    if let Some(b) = r.partition_bytes {
        t.line(format!(
            "  partitions of about {} each (stored size, TOAST included)",
            human_bytes(b)
        ));
    }
    for p in r.plan.iter().flatten() {
        t.line(format!(
            "  {}  {:>9} rows  {:>9}  {}",
            p.id,
            p.rows,
            human_bytes(p.bytes.max(0) as u64),
            p.describe()
        ));
    }
    for s in r.index_plan.indexes.iter().chain(&r.index_plan.constraints) {
        t.line(format!("  then: {}", s.sql));
        if let Some(a) = &s.attach {
            t.line(format!("        {a}"));
        }
    }
    for s in &r.index_plan.skipped {
        t.line(format!("  not built: {s}"));
    }
    t.into_string()
}
