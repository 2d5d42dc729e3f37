//! Per-bot comparison of row counts and checksums (every column, vectors in their binary form,
//! computed inside each server by [`ragshift_store::checksum`]), and, for a bot whose checksums
//! disagree, the first ids that are missing, extra or changed.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;

use ragshift_store::checksum::{self, BotChecksum, Grouping};
use serde::Serialize;

use crate::error::{Side, VerifyError};
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
/// them). Differences come back without ids; [`explain`] fills those in.
pub fn compare(source: &[BotChecksum], target: &[BotChecksum]) -> ChecksumReport {
    let mut report = ChecksumReport {
        source_rows: source.iter().map(|b| b.rows).sum(),
        target_rows: target.iter().map(|b| b.rows).sum(),
        ..ChecksumReport::default()
    };
    let s: BTreeMap<&str, &BotChecksum> = source.iter().map(|b| (b.bot_id.as_str(), b)).collect();
    let t: BTreeMap<&str, &BotChecksum> = target.iter().map(|b| (b.bot_id.as_str(), b)).collect();
    let mut all: Vec<&str> = s.keys().chain(t.keys()).copied().collect();
    all.sort_unstable();
    all.dedup();
    report.bots_compared = all.len();
    for bot in all {
        match (s.get(bot), t.get(bot)) {
            (Some(a), Some(b)) if a.rows == b.rows && a.checksum == b.checksum => {
                report.bots_matching += 1;
            }
            (Some(a), Some(b)) => report.different.push(BotDifference {
                bot_id: bot.to_owned(),
                source_rows: a.rows,
                target_rows: b.rows,
                missing_ids: Vec::new(),
                extra_ids: Vec::new(),
                changed_ids: Vec::new(),
                more: false,
                changed_columns: Vec::new(),
            }),
            (Some(a), None) => report.missing.push(BotRows {
                bot_id: bot.to_owned(),
                rows: a.rows,
            }),
            (None, Some(b)) => report.extra.push(BotRows {
                bot_id: bot.to_owned(),
                rows: b.rows,
            }),
            (None, None) => {}
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
    let (s, t) = tokio::join!(
        checksum::group_checksums(source.client, source.layout, grouping, bots),
        checksum::group_checksums(target.client, target.layout, grouping, bots),
    );
    let s = s.map_err(|e| VerifyError::new(Side::Source, source.label, None, e))?;
    let t = t.map_err(|e| VerifyError::new(Side::Target, target.label, None, e))?;
    Ok((s, t))
}

/// Fills in the first differing ids of every differing bot or id range (reading row hashes of
/// those only).
pub async fn explain(
    source: &Store<'_>,
    target: &Store<'_>,
    grouping: &Grouping,
    report: &mut ChecksumReport,
    max_ids: usize,
) -> Result<(), VerifyError> {
    for diff in &mut report.different {
        let bot = diff.bot_id.clone();
        // Both sides streamed in one byte order and merged as they come: memory holds a row of
        // each side and the ids listed, whatever the bot's size.
        let (s, t) = tokio::join!(
            checksum::group_row_hash_stream(source.client, source.layout, grouping, &bot),
            checksum::group_row_hash_stream(target.client, target.layout, grouping, &bot),
        );
        let serr = |e| VerifyError::new(Side::Source, source.label, Some(&bot), e);
        let terr = |e| VerifyError::new(Side::Target, target.label, Some(&bot), e);
        let s = s.map_err(serr)?.map_err(serr);
        let t = t.map_err(terr)?.map_err(terr);
        let found = checksum::first_row_differences(s, t, max_ids).await?;
        diff.missing_ids = found.missing;
        diff.extra_ids = found.extra;
        diff.changed_ids = found.changed;
        diff.more = found.more;
        for id in diff.changed_ids.iter().take(NAMED_ROWS) {
            let (s, t) = tokio::join!(
                checksum::column_digests(source.client, source.layout, id),
                checksum::column_digests(target.client, target.layout, id),
            );
            let s = s.map_err(|e| VerifyError::new(Side::Source, source.label, Some(&bot), e))?;
            let t = t.map_err(|e| VerifyError::new(Side::Target, target.label, Some(&bot), e))?;
            let mut columns: Vec<String> = s
                .iter()
                .filter(|(name, d)| t.iter().find(|(n, _)| n == name).map(|(_, td)| td) != Some(d))
                .map(|(name, _)| name.clone())
                .collect();
            columns.extend(
                t.iter()
                    .filter(|(n, _)| !s.iter().any(|(sn, _)| sn == n))
                    .map(|(n, _)| n.clone()),
            );
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
