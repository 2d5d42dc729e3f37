//! Per-bot comparison of row counts and checksums (every column, vectors in their binary form,
//! computed inside each server by [`ragshift_store::checksum`]), and, for a bot whose checksums
//! disagree, the first ids that are missing, extra or changed.

use ragshift_store::checksum::{BotChecksum, Grouping};
use ragshift_store::compare::{self, GroupDiff};
use serde::Serialize;

use crate::error::VerifyError;
use crate::Store;

/// A bot present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BotRows {
    /// The bot.
    pub bot_id: String,
    /// Its rows on the side that has it.
    pub rows: i64,
}

/// A bot on both sides whose rows differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BotDifference {
    /// The bot.
    pub bot_id: String,
    /// Rows on the source.
    pub source_rows: i64,
    /// Rows on the target.
    pub target_rows: i64,
    /// First ids on the source but not on the target.
    pub missing_ids: Vec<String>,
    /// First ids on the target but not on the source.
    pub extra_ids: Vec<String>,
    /// First ids on both sides whose columns differ (text, source or any float of the vector).
    pub changed_ids: Vec<String>,
    /// Whether there are more differing ids than listed.
    pub more: bool,
    /// For the first changed rows, the columns whose values differ.
    pub changed_columns: Vec<ChangedRow>,
}

/// A row on both sides whose values differ, and in which columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedRow {
    /// The row's id.
    pub id: String,
    /// The columns that differ (by name).
    pub columns: Vec<String>,
}

/// Changed rows whose columns are named (each costs a lookup on both sides).
const NAMED_ROWS: usize = 5;

/// The outcome of comparing every selected bot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChecksumReport {
    /// Bots seen on either side.
    pub bots_compared: usize,
    /// Bots with the same count and checksum on both sides.
    pub bots_matching: usize,
    /// Rows on the source (selected bots).
    pub source_rows: i64,
    /// Rows on the target (selected bots).
    pub target_rows: i64,
    /// Bots on the source only.
    pub missing: Vec<BotRows>,
    /// Bots on the target only.
    pub extra: Vec<BotRows>,
    /// Bots on both sides whose rows differ.
    pub different: Vec<BotDifference>,
}

impl ChecksumReport {
    /// Whether both sides hold exactly the same rows.
    pub fn passed(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.different.is_empty()
    }
}

/// Compares two lists of per-bot checksums (each sorted by bot id, as `bot_checksums` returns
/// them) with the store's one comparison ([`compare::compare_groups`]). Differences come back
/// without ids; [`explain`] fills those in.
pub fn compare(source: &[BotChecksum], target: &[BotChecksum]) -> ChecksumReport {
    let found = compare::compare_groups(source, target, compare::Match::RowsAndChecksums);
    let mut report = ChecksumReport {
        bots_compared: found.compared,
        bots_matching: found.matching,
        source_rows: source.iter().map(|b| b.rows).sum(),
        target_rows: target.iter().map(|b| b.rows).sum(),
        ..ChecksumReport::default()
    };
    for d in found.differences {
        match d {
            GroupDiff::Different { source, target } => report.different.push(BotDifference {
                bot_id: source.bot_id,
                source_rows: source.rows,
                target_rows: target.rows,
                missing_ids: Vec::new(),
                extra_ids: Vec::new(),
                changed_ids: Vec::new(),
                more: false,
                changed_columns: Vec::new(),
            }),
            GroupDiff::Missing(a) => report.missing.push(BotRows {
                bot_id: a.bot_id,
                rows: a.rows,
            }),
            GroupDiff::Extra(b) => report.extra.push(BotRows {
                bot_id: b.bot_id,
                rows: b.rows,
            }),
        }
    }
    report
}

/// Reads both sides' checksums per bot (or id range), at the same time.
pub async fn read_both(
    source: &Store<'_>,
    target: &Store<'_>,
    grouping: &Grouping,
    bots: Option<&[String]>,
) -> Result<(Vec<BotChecksum>, Vec<BotChecksum>), VerifyError> {
    compare::read_groups(
        source.client,
        source.layout,
        target.client,
        target.layout,
        grouping,
        bots,
    )
    .await
    .map_err(|e| VerifyError::of(source, target, None, e))
}

/// Fills in the first differing ids of every differing bot or id range (reading row hashes of
/// those only), and the columns that differ in the first changed rows.
pub async fn explain(
    source: &Store<'_>,
    target: &Store<'_>,
    grouping: &Grouping,
    report: &mut ChecksumReport,
    max_ids: usize,
) -> Result<(), VerifyError> {
    let (s, t) = (source, target);
    for diff in &mut report.different {
        let bot = diff.bot_id.clone();
        let err = |e| VerifyError::of(s, t, Some(&bot), e);
        let found = compare::row_differences(
            s.client, s.layout, t.client, t.layout, grouping, &bot, max_ids,
        )
        .await
        .map_err(err)?;
        diff.missing_ids = found.missing;
        diff.extra_ids = found.extra;
        diff.changed_ids = found.changed;
        diff.more = found.more;
        for id in diff.changed_ids.iter().take(NAMED_ROWS) {
            let columns = compare::changed_columns(s.client, s.layout, t.client, t.layout, id)
                .await
                .map_err(err)?;
            diff.changed_columns.push(ChangedRow {
                id: id.clone(),
                columns,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bot: &str, rows: i64, checksum: &str) -> BotChecksum {
        BotChecksum {
            bot_id: bot.into(),
            rows,
            checksum: checksum.into(),
        }
    }

    #[test]
    fn bots_are_sorted_into_matching_missing_extra_and_different() {
        let source = [sum("a", 2, "10"), sum("b", 1, "5"), sum("c", 3, "7")];
        let target = [sum("a", 2, "10"), sum("c", 3, "8"), sum("d", 4, "1")];
        let r = compare(&source, &target);
        assert_eq!(r.bots_compared, 4);
        assert_eq!(r.bots_matching, 1);
        assert_eq!(
            r.missing,
            vec![BotRows {
                bot_id: "b".into(),
                rows: 1
            }]
        );
        assert_eq!(
            r.extra,
            vec![BotRows {
                bot_id: "d".into(),
                rows: 4
            }]
        );
        assert_eq!(r.different.len(), 1);
        assert_eq!(r.different[0].bot_id, "c");
        assert_eq!((r.source_rows, r.target_rows), (6, 9));
        assert!(!r.passed());
        assert!(compare(&source, &source).passed());
    }
}
