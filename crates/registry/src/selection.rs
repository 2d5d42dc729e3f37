//! Which bots a command works on: all of them, every bot of some users (`--user ID`), or single
//! bots (`--bot ID`, `--bot USER/BOT`), and how each was looked up.

use std::fmt;
use std::str::FromStr;

use ragshift_model::BotKey;
use serde::Serialize;

/// One `--bot` value: a bot id, optionally with its owner (`USER/BOT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BotSelector {
    /// The owner, when known: with it the bot is one direct read.
    pub owner: Option<String>,
    /// The bot id.
    pub bot_id: String,
}

impl FromStr for BotSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (owner, bot) = match s.split_once('/') {
            Some((u, b)) => (Some(u.to_owned()), b),
            None => (None, s),
        };
        let bad = |part: &str| part.is_empty() || part.contains('/') || part.contains('#');
        if bad(bot) || owner.as_deref().is_some_and(bad) {
            return Err(format!(
                "{s:?} is not a bot: give BOT_ID or USER_ID/BOT_ID (no '#' or extra '/')"
            ));
        }
        Ok(Self {
            owner,
            bot_id: bot.to_owned(),
        })
    }
}

impl fmt::Display for BotSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some(u) => write!(f, "{u}/{}", self.bot_id),
            None => f.write_str(&self.bot_id),
        }
    }
}

/// The bots asked for. Empty means every bot.
///
/// * users only: every bot of each user (a query on the partition key, never a scan);
/// * bots: exactly those bots; a bot without an owner is looked for under each `--user` if any
///   were given (direct reads), else in the public-bot index, else by a filtered scan;
/// * users and bots: the users only supply owners for the bots; they don't add all their bots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `--user` values.
    pub users: Vec<String>,
    /// `--bot` values.
    pub bots: Vec<BotSelector>,
}

impl Selection {
    /// Every bot of the registry.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether nothing narrows the selection.
    pub fn is_all(&self) -> bool {
        self.users.is_empty() && self.bots.is_empty()
    }

    /// Whether `key` is selected (used where the whole registry is in memory).
    pub fn matches(&self, key: &BotKey) -> bool {
        if self.bots.is_empty() {
            return self.users.is_empty() || self.users.contains(&key.user_id);
        }
        self.bots.iter().any(|b| self.selector_matches(b, key))
    }

    /// Whether one `--bot` selector names `key`.
    pub fn selector_matches(&self, b: &BotSelector, key: &BotKey) -> bool {
        b.bot_id == key.bot_id
            && match &b.owner {
                Some(owner) => *owner == key.user_id,
                None => self.users.is_empty() || self.users.contains(&key.user_id),
            }
    }
}

/// How a part of the selection was read from the registry (logged, and checked by tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupMethod {
    /// A parallel scan of the whole table for bot items.
    ParallelScan,
    /// A query on one user's partition.
    QueryUser,
    /// One `GetItem` (owner known).
    GetItem,
    /// A query on the `PublicBotIdIndex`.
    PublicBotIndex,
    /// A scan filtered on bot ids (owner unknown, bot not public).
    FilteredScan,
    /// Read from an export file held in memory.
    ExportFile,
}

/// One lookup done for a selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lookup {
    /// What was looked up: `all bots`, a user id, a bot selector.
    pub target: String,
    /// How.
    pub method: LookupMethod,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_with_and_without_owner() {
        let b: BotSelector = "u1/B1".parse().unwrap();
        assert_eq!((b.owner.as_deref(), b.bot_id.as_str()), (Some("u1"), "B1"));
        let b: BotSelector = "B1".parse().unwrap();
        assert_eq!(b.owner, None);
        for bad in ["", "u/", "/b", "u/b/c", "u#BOT#b"] {
            assert!(bad.parse::<BotSelector>().is_err(), "{bad}");
        }
    }

    #[test]
    fn users_narrow_owner_less_bots() {
        let k = BotKey::new("u1", "B1");
        let mut s = Selection::all();
        assert!(s.matches(&k));
        s.users = vec!["u2".into()];
        assert!(!s.matches(&k));
        s.users = vec!["u1".into()];
        assert!(s.matches(&k));
        s.bots = vec!["B2".parse().unwrap()];
        assert!(!s.matches(&k), "users only give owners once bots are named");
        s.bots = vec!["B1".parse().unwrap()];
        assert!(s.matches(&k));
        s.users = vec!["u2".into()];
        assert!(!s.matches(&k));
        s.bots = vec!["u1/B1".parse().unwrap()];
        assert!(s.matches(&k), "an explicit owner wins");
    }
}
