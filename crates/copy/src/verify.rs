//! Proof that the target holds what the source held: per-bot row counts and checksums of every
//! column, computed in SQL on both sides at once (`ragshift_store::checksum`, vectors hashed in
//! their binary form), then, for the bots that differ, the rows that differ by id: the store's
//! one comparison ([`ragshift_store::compare`]) in copy's words.

use std::time::Instant;

use serde::Serialize;
use tokio_postgres::GenericClient;

use ragshift_store::checksum::{bot_checksums, BotChecksum, Grouping, RowDifferences};
use ragshift_store::compare::{
    compare_groups, read_groups, row_differences, GroupDiff, Match, Side, SideError,
};
use ragshift_store::ident::Layout;
use ragshift_store::StoreError;

/// How many differing bots get a row-by-row comparison, and how many rows each lists.
const DETAIL_BOTS: usize = 20;
const DETAIL_ROWS: usize = 10;

/// How one row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowDiffKind {
    /// On both sides with different contents.
    Changed,
    /// On the source only.
    Missing,
    /// On the target only.
    Extra,
}

impl RowDiffKind {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Missing => "missing",
            Self::Extra => "extra",
        }
    }
}

/// One differing row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowDiff {
    /// Row id.
    pub id: String,
    /// How it differs.
    pub kind: RowDiffKind,
}

/// One bot whose rows differ.
#[derive(Debug, Clone, Serialize)]
pub struct BotMismatch {
    /// Bot id (empty for rows without one).
    pub bot_id: String,
    /// Rows on the source.
    pub source_rows: i64,
    /// Rows on the target.
    pub target_rows: i64,
    /// Source checksum.
    pub source_checksum: String,
    /// Target checksum.
    pub target_checksum: String,
    /// Some of the rows that differ.
    pub rows: Vec<RowDiff>,
}

impl BotMismatch {
    /// One line for humans.
    pub fn describe(&self) -> String {
        let bot = if self.bot_id.is_empty() {
            "rows without a bot id".to_owned()
        } else {
            format!("bot {}", self.bot_id)
        };
        let mut s = format!(
            "{bot}: source {} rows, target {} rows",
            self.source_rows, self.target_rows
        );
        if self.source_rows == self.target_rows {
            s.push_str(", checksums differ");
        }
        if !self.rows.is_empty() {
            let rows: Vec<String> = self
                .rows
                .iter()
                .map(|r| format!("{} {}", r.id, r.kind.as_str()))
                .collect();
            s.push_str(&format!(" ({})", rows.join(", ")));
        }
        s
    }
}

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Bots compared.
    pub bots: usize,
    /// Rows on the source.
    pub source_rows: i64,
    /// Rows on the target.
    pub target_rows: i64,
    /// Bots that differ.
    pub mismatches: Vec<BotMismatch>,
    /// Seconds spent checksumming and comparing (the source's part may have run during the
    /// copy).
    pub seconds: f64,
}

impl VerifyReport {
    /// Whether both sides hold the same rows.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Compares source and target (both queried at once); `bots` limits it to some bots.
pub async fn verify(
    source: &impl GenericClient,
    source_layout: &Layout,
    target: &impl GenericClient,
    target_layout: &Layout,
    bots: Option<&[String]>,
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let (s, t) = read_groups(
        source,
        source_layout,
        target,
        target_layout,
        &Grouping::Bot,
        bots,
    )
    .await?;
    finish(source, source_layout, s, target, target_layout, t, started).await
}

/// Compares the target with source checksums read earlier (during the copy, from the same
/// snapshot): only the target is read now.
pub async fn verify_against(
    source: &impl GenericClient,
    source_layout: &Layout,
    source_sums: Vec<BotChecksum>,
    source_seconds: f64,
    target: &impl GenericClient,
    target_layout: &Layout,
    bots: Option<&[String]>,
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let t = bot_checksums(target, target_layout, bots)
        .await
        .map_err(VerifyError::Target)?;
    let mut report = finish(
        source,
        source_layout,
        source_sums,
        target,
        target_layout,
        t,
        started,
    )
    .await?;
    report.seconds += source_seconds;
    Ok(report)
}

async fn finish(
    source: &impl GenericClient,
    source_layout: &Layout,
    s: Vec<BotChecksum>,
    target: &impl GenericClient,
    target_layout: &Layout,
    t: Vec<BotChecksum>,
    started: Instant,
) -> Result<VerifyReport, VerifyError> {
    let mut mismatches = compare(&s, &t);
    for m in mismatches.iter_mut().take(DETAIL_BOTS) {
        let found = row_differences(
            source,
            source_layout,
            target,
            target_layout,
            &Grouping::Bot,
            &m.bot_id,
            DETAIL_ROWS,
        )
        .await?;
        m.rows = diff_rows(found);
    }
    Ok(VerifyReport {
        bots: s.len().max(t.len()),
        source_rows: s.iter().map(|b| b.rows).sum(),
        target_rows: t.iter().map(|b| b.rows).sum(),
        mismatches,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Which side a verification query failed on.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Checksumming the source failed.
    #[error("checksumming the source: {0}")]
    Source(StoreError),
    /// Checksumming the target failed.
    #[error("checksumming the target: {0}")]
    Target(StoreError),
}

impl From<SideError> for VerifyError {
    fn from(e: SideError) -> Self {
        match e.side {
            Side::Source => Self::Source(e.error),
            Side::Target => Self::Target(e.error),
        }
    }
}

/// Bots whose count or checksum differ, including bots present on one side only (the store's
/// one comparison, [`compare_groups`]).
pub fn compare(source: &[BotChecksum], target: &[BotChecksum]) -> Vec<BotMismatch> {
    let side =
        |b: Option<&BotChecksum>| b.map_or((0, String::new()), |b| (b.rows, b.checksum.clone()));
    compare_groups(source, target, Match::RowsAndChecksums)
        .differences
        .iter()
        .map(|d: &GroupDiff| {
            let ((source_rows, source_checksum), (target_rows, target_checksum)) =
                (side(d.source()), side(d.target()));
            BotMismatch {
                bot_id: d.group().to_owned(),
                source_rows,
                target_rows,
                source_checksum,
                target_checksum,
                rows: Vec::new(),
            }
        })
        .collect()
}

/// The differing rows found on both sides, in id order.
pub fn diff_rows(found: RowDifferences) -> Vec<RowDiff> {
    let tag = |ids: Vec<String>, kind| ids.into_iter().map(move |id| RowDiff { id, kind });
    let mut rows: Vec<RowDiff> = tag(found.changed, RowDiffKind::Changed)
        .chain(tag(found.missing, RowDiffKind::Missing))
        .chain(tag(found.extra, RowDiffKind::Extra))
        .collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_diffs_name_changed_missing_and_extra_rows_in_id_order() {
        let d = diff_rows(RowDifferences {
            missing: vec!["c".into()],
            extra: vec!["d".into()],
            changed: vec!["b".into()],
            more: false,
        });
        let got: Vec<(&str, RowDiffKind)> = d.iter().map(|r| (r.id.as_str(), r.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("b", RowDiffKind::Changed),
                ("c", RowDiffKind::Missing),
                ("d", RowDiffKind::Extra)
            ]
        );
    }

    #[test]
    fn bots_on_one_side_only_are_mismatches() {
        let b = |id: &str, rows, c: &str| BotChecksum {
            bot_id: id.into(),
            rows,
            checksum: c.into(),
        };
        let m = compare(
            &[b("x", 2, "5"), b("y", 1, "1")],
            &[b("x", 2, "5"), b("z", 1, "1")],
        );
        let ids: Vec<&str> = m.iter().map(|m| m.bot_id.as_str()).collect();
        assert_eq!(ids, vec!["y", "z"]);
    }
}
