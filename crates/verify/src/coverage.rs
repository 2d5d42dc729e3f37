//! Registry coverage: every bot with knowledge must have rows in the target, and rows whose bot
//! no longer exists in the registry (orphans) are listed.
//!
//! The registry is a plain input (the bots it lists), so this works with any registry
//! implementation, a file export or a live table.

use std::collections::{BTreeMap, HashSet};

use ragshift_model::{Bot, BotKey};
use ragshift_store::checksum::BotChecksum;
use serde::Serialize;

use crate::checksums::BotRows;

/// What the registry says versus what the target holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverageReport {
    /// Bots in the registry (within the selection).
    pub registry_bots: usize,
    /// Of those, bots with knowledge (they must have rows).
    pub with_knowledge: usize,
    /// Bots with knowledge and no rows in the target.
    pub without_rows: Vec<BotKey>,
    /// Bots with rows in the target that the registry doesn't know.
    pub orphans: Vec<BotRows>,
}

impl CoverageReport {
    /// Whether every bot with knowledge has rows (and, unless orphans are allowed, no rows
    /// belong to a bot that doesn't exist).
    pub fn passed(&self, allow_orphans: bool) -> bool {
        self.without_rows.is_empty() && (allow_orphans || self.orphans.is_empty())
    }
}

/// Compares the registry's bots with the target's per-bot counts. `selection` narrows both to
/// some bot ids (as `verify --bot` does).
pub fn coverage(
    registry: &[Bot],
    target: &[BotChecksum],
    selection: Option<&[String]>,
) -> CoverageReport {
    let selected =
        |id: &str| selection.is_none_or(|s| s.iter().any(|b| b.trim_end() == id.trim_end()));
    let rows: BTreeMap<&str, i64> = target
        .iter()
        .filter(|b| b.rows > 0)
        .map(|b| (b.bot_id.trim_end(), b.rows))
        .collect();
    let known: HashSet<&str> = registry.iter().map(|b| b.key.bot_id.trim_end()).collect();
    let mut report = CoverageReport::default();
    for bot in registry.iter().filter(|b| selected(&b.key.bot_id)) {
        report.registry_bots += 1;
        if bot.knowledge.is_empty() {
            continue;
        }
        report.with_knowledge += 1;
        if !rows.contains_key(bot.key.bot_id.trim_end()) {
            report.without_rows.push(bot.key.clone());
        }
    }
    report.without_rows.sort();
    report.orphans = rows
        .iter()
        .filter(|(id, _)| selected(id) && !known.contains(*id))
        .map(|(id, n)| BotRows {
            bot_id: (*id).to_owned(),
            rows: *n,
        })
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use ragshift_model::Knowledge;

    fn bot(id: &str, files: &[&str]) -> Bot {
        let mut b = Bot::new(BotKey::new("u1", id), id);
        b.knowledge = Knowledge {
            filenames: files.iter().map(|f| f.to_string()).collect(),
            ..Knowledge::default()
        };
        b
    }

    fn rows(id: &str, n: i64) -> BotChecksum {
        BotChecksum {
            bot_id: id.into(),
            rows: n,
            checksum: "0".into(),
        }
    }

    #[test]
    fn bots_without_rows_and_orphans_are_listed() {
        let registry = [bot("a", &["x.pdf"]), bot("b", &["y.txt"]), bot("c", &[])];
        let target = [rows("a", 3), rows("z", 2)];
        let r = coverage(&registry, &target, None);
        assert_eq!(r.registry_bots, 3);
        assert_eq!(r.with_knowledge, 2);
        assert_eq!(r.without_rows, vec![BotKey::new("u1", "b")]);
        assert_eq!(
            r.orphans,
            vec![BotRows {
                bot_id: "z".into(),
                rows: 2
            }]
        );
        assert!(!r.passed(true));

        let only_a = coverage(&registry, &target, Some(&["a".to_owned()]));
        assert!(only_a.passed(false), "{only_a:?}");
    }
}
