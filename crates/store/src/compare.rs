//! The one comparison of two stores (or of a store with the checksums an export recorded), used
//! by `verify`, copy's check, import's check and replicate's cutover (through `verify`): group
//! checksums read on both sides at once ([`read_groups`]), groups sorted into matching,
//! missing, extra and different ([`compare_groups`]), a differing group explained by its first
//! differing row ids ([`row_differences`]) and a changed row by its differing columns
//! ([`changed_columns`]), and a table without groups (the tables the chunk table refers to)
//! compared whole ([`compare_tables`]). Callers word the findings their own way.

use std::collections::BTreeMap;
use std::fmt;

use futures_util::TryStreamExt;
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::checksum::{self, BotChecksum, Grouping, RowDifferences};
use crate::ident::Layout;
use crate::StoreError;

/// The two stores being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The old cluster (or snapshot, or export) the data came from.
    Source,
    /// The new cluster that must hold the same data.
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Source => "source",
            Self::Target => "target",
        })
    }
}

/// A query of the comparison failed on one side: callers name that side's server.
#[derive(Debug)]
pub struct SideError {
    /// Where it failed.
    pub side: Side,
    /// Why.
    pub error: StoreError,
}

impl SideError {
    fn on(side: Side) -> impl Fn(StoreError) -> Self {
        move |error| Self { side, error }
    }
}

/// A store error on one side of a move, named by that side and its server (`source
/// host:5432/db: ...`): the one shape copy, export and import report a failed statement in.
#[derive(Debug, thiserror::Error)]
#[error("{side} {server}: {error}")]
pub struct ServerError {
    /// Which side.
    pub side: Side,
    /// The server, password masked.
    pub server: String,
    /// What failed.
    #[source]
    pub error: StoreError,
}

impl ServerError {
    /// Wraps errors of `side`'s `server` (for `map_err`).
    pub fn on(side: Side, server: &str) -> impl Fn(StoreError) -> Self + Copy + '_ {
        move |error| Self {
            side,
            server: server.to_owned(),
            error,
        }
    }
}

/// What two groups must share to be the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Row count and checksum.
    RowsAndChecksums,
    /// Row count only: the checksums were computed another way (an export of an older
    /// [`checksum::SCHEME`]).
    Rows,
}

impl Match {
    /// Checksums compared when they were computed the same way (`same_scheme`), else counts.
    pub fn of(same_scheme: bool) -> Self {
        if same_scheme {
            Self::RowsAndChecksums
        } else {
            Self::Rows
        }
    }

    /// Whether `a` and `b` (rows, checksum) are the same under this rule.
    pub fn same(self, a: (i64, &str), b: (i64, &str)) -> bool {
        a.0 == b.0 && (self == Self::Rows || a.1 == b.1)
    }
}

/// A group (bot, or id range) that is not the same on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupDiff {
    /// On the source only.
    Missing(BotChecksum),
    /// On the target only.
    Extra(BotChecksum),
    /// On both sides, with other counts or checksums.
    Different {
        /// The source's.
        source: BotChecksum,
        /// The target's.
        target: BotChecksum,
    },
}

impl GroupDiff {
    /// The group's name.
    pub fn group(&self) -> &str {
        match self {
            Self::Missing(s) => &s.bot_id,
            Self::Extra(t) => &t.bot_id,
            Self::Different { source, .. } => &source.bot_id,
        }
    }

    /// The source's count and checksum, if it has the group.
    pub fn source(&self) -> Option<&BotChecksum> {
        match self {
            Self::Missing(s) | Self::Different { source: s, .. } => Some(s),
            Self::Extra(_) => None,
        }
    }

    /// The target's count and checksum, if it has the group.
    pub fn target(&self) -> Option<&BotChecksum> {
        match self {
            Self::Extra(t) | Self::Different { target: t, .. } => Some(t),
            Self::Missing(_) => None,
        }
    }
}

/// Two sides' groups compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupComparison {
    /// Groups seen on either side.
    pub compared: usize,
    /// Groups the same on both sides.
    pub matching: usize,
    /// The others, ordered by group.
    pub differences: Vec<GroupDiff>,
}

impl GroupComparison {
    /// The difference found for `group`, if any.
    pub fn difference(&self, group: &str) -> Option<&GroupDiff> {
        self.differences.iter().find(|d| d.group() == group)
    }
}

/// Sorts the groups of both sides (as [`checksum::group_checksums`] returns them) into
/// matching and differing ones, by group name.
pub fn compare_groups(
    source: &[BotChecksum],
    target: &[BotChecksum],
    how: Match,
) -> GroupComparison {
    let s: BTreeMap<&str, &BotChecksum> = source.iter().map(|b| (b.bot_id.as_str(), b)).collect();
    let t: BTreeMap<&str, &BotChecksum> = target.iter().map(|b| (b.bot_id.as_str(), b)).collect();
    let mut all: Vec<&str> = s.keys().chain(t.keys()).copied().collect();
    all.sort_unstable();
    all.dedup();
    let mut out = GroupComparison {
        compared: all.len(),
        ..GroupComparison::default()
    };
    for group in all {
        match (s.get(group), t.get(group)) {
            (Some(a), Some(b)) if how.same((a.rows, &a.checksum), (b.rows, &b.checksum)) => {
                out.matching += 1;
            }
            (Some(a), Some(b)) => out.differences.push(GroupDiff::Different {
                source: (*a).clone(),
                target: (*b).clone(),
            }),
            (Some(a), None) => out.differences.push(GroupDiff::Missing((*a).clone())),
            (None, Some(b)) => out.differences.push(GroupDiff::Extra((*b).clone())),
            (None, None) => {}
        }
    }
    out
}

/// Both sides' counts and checksums per group (optionally for some groups only), read at the
/// same time.
pub async fn read_groups(
    source: &impl GenericClient,
    source_layout: &Layout,
    target: &impl GenericClient,
    target_layout: &Layout,
    grouping: &Grouping,
    groups: Option<&[String]>,
) -> Result<(Vec<BotChecksum>, Vec<BotChecksum>), SideError> {
    let (s, t) = tokio::join!(
        checksum::group_checksums(source, source_layout, grouping, groups),
        checksum::group_checksums(target, target_layout, grouping, groups),
    );
    let s = s.map_err(SideError::on(Side::Source))?;
    let t = t.map_err(SideError::on(Side::Target))?;
    Ok((s, t))
}

/// The first `max` rows of one group that are missing, extra or changed on the target. Both
/// sides are streamed in one byte order and merged as they come: memory holds a row of each
/// side and the ids listed, whatever the group's size.
pub async fn row_differences(
    source: &impl GenericClient,
    source_layout: &Layout,
    target: &impl GenericClient,
    target_layout: &Layout,
    grouping: &Grouping,
    group: &str,
    max: usize,
) -> Result<RowDifferences, SideError> {
    let (s, t) = tokio::join!(
        checksum::group_row_hash_stream(source, source_layout, grouping, group),
        checksum::group_row_hash_stream(target, target_layout, grouping, group),
    );
    let s = s
        .map_err(SideError::on(Side::Source))?
        .map_err(SideError::on(Side::Source));
    let t = t
        .map_err(SideError::on(Side::Target))?
        .map_err(SideError::on(Side::Target));
    checksum::first_row_differences(s, t, max).await
}

/// The columns whose values differ between the two sides' rows with `id` (by name: a column
/// on one side only counts too).
pub async fn changed_columns(
    source: &impl GenericClient,
    source_layout: &Layout,
    target: &impl GenericClient,
    target_layout: &Layout,
    id: &str,
) -> Result<Vec<String>, SideError> {
    let (s, t) = tokio::join!(
        checksum::column_digests(source, source_layout, id),
        checksum::column_digests(target, target_layout, id),
    );
    let s = s.map_err(SideError::on(Side::Source))?;
    let t = t.map_err(SideError::on(Side::Target))?;
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
    Ok(columns)
}

/// A table compared whole on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableComparison {
    /// The source's row count and checksum.
    pub source: (i64, String),
    /// The target's (`None`: the table is missing there).
    pub target: Option<(i64, String)>,
}

impl TableComparison {
    /// Whether the target holds the table with the source's rows.
    pub fn same(&self) -> bool {
        self.target.as_ref() == Some(&self.source)
    }
}

/// Compares every column of every row of a table without groups (such as the collections a
/// chunk table refers to) on both sides.
pub async fn compare_tables(
    source: &impl GenericClient,
    source_layout: &Layout,
    target: &impl GenericClient,
    target_layout: &Layout,
) -> Result<TableComparison, SideError> {
    let on_source = checksum::table_checksum(source, source_layout)
        .await
        .map_err(SideError::on(Side::Source))?;
    let exists: bool = target
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&target_layout.qualified()],
        )
        .await
        .map_err(|e| StoreError::query("looking for a referenced table", e))
        .map_err(SideError::on(Side::Target))?
        .get(0);
    let on_target = if exists {
        Some(
            checksum::table_checksum(target, target_layout)
                .await
                .map_err(SideError::on(Side::Target))?,
        )
    } else {
        None
    };
    Ok(TableComparison {
        source: on_source,
        target: on_target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups from `(name, rows, checksum)`.
    fn groups(v: &[(&str, i64, &str)]) -> Vec<BotChecksum> {
        v.iter()
            .map(|&(g, rows, c)| BotChecksum {
                bot_id: g.into(),
                rows,
                checksum: c.into(),
            })
            .collect()
    }

    #[test]
    fn groups_are_sorted_into_matching_missing_extra_and_different() {
        let s = groups(&[("a", 2, "10"), ("b", 1, "5"), ("c", 3, "7")]);
        let t = groups(&[("a", 2, "10"), ("c", 3, "8"), ("d", 4, "1")]);
        let c = compare_groups(&s, &t, Match::RowsAndChecksums);
        assert_eq!((c.compared, c.matching), (4, 1));
        let want = vec![
            GroupDiff::Missing(s[1].clone()),
            GroupDiff::Different {
                source: s[2].clone(),
                target: t[1].clone(),
            },
            GroupDiff::Extra(t[2].clone()),
        ];
        assert_eq!(c.differences, want);
        assert_eq!(c.difference("c").and_then(GroupDiff::target), Some(&t[1]));
        assert!(c.difference("a").is_none());
    }

    #[test]
    fn counting_rows_only_ignores_checksums() {
        let c = compare_groups(
            &groups(&[("a", 2, "1")]),
            &groups(&[("a", 2, "9")]),
            Match::Rows,
        );
        assert_eq!((c.matching, c.differences.len()), (1, 0));
        assert!(!Match::Rows.same((1, "x"), (2, "x")));
        assert!(!Match::of(true).same((1, "x"), (1, "y")));
    }
}
