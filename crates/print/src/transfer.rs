//! `export` and `import`: their reports as text.

use ragshift_export::{ExportReport, ImportReport};

use crate::Text;

/// One line: rows, files, where from and to, size, time, each table and the manifest's name.
pub fn export(report: &ExportReport, manifest: &str) -> String {
    let tables: Vec<String> = report
        .manifest
        .tables
        .iter()
        .map(|t| format!("{} ({} rows)", t.name, t.rows))
        .collect();
    format!(
        "exported {} rows in {} files from {} on {} to {} ({:.1} MB of Parquet, {:.1}s): {}; manifest: {}\n",
        report.manifest.rows,
        report.manifest.files.len(),
        report.manifest.table,
        report.manifest.source,
        report.location,
        report.bytes as f64 / 1e6,
        report.seconds,
        tables.join(", "),
        manifest
    )
}

/// What was imported, the vector index, whether checksums were compared, each bot that failed.
pub fn import(report: &ImportReport) -> String {
    let mut t = Text::default();
    t.line(format!(
        "imported {} rows from {} files of {} into {} on {} ({:.1}s){}",
        report.rows,
        report.bots,
        report.location,
        report.table,
        report.target,
        report.seconds,
        if report.verified && report.problems.is_empty() {
            "; checksums match the export"
        } else {
            ""
        }
    ));
    if let Some(i) = &report.index {
        t.line(format!("vector index: {i}"));
    }
    if let Some(why) = &report.unverified_reason {
        t.line(format!("checksums not compared: {why}"));
    }
    for p in &report.problems {
        t.line(format!(
            "FAILED {} ({}): {}",
            p.bot_id.as_deref().unwrap_or("rows without a bot id"),
            p.file,
            p.error
        ));
    }
    t.into_string()
}
