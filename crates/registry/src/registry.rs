//! The [`Registry`] trait: list the bots a command works on, and record a bot's sync status.

use async_trait::async_trait;
use ragshift_model::{Bot, BotKey, SyncStatus};

use crate::decode::InvalidItem;
use crate::error::RegistryError;
use crate::selection::{Lookup, Selection};

/// What a registry read found.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// The selected bots, each once, ordered by owner then bot id.
    pub bots: Vec<Bot>,
    /// Bot items that could not be understood (the read went on without them).
    pub invalid: Vec<InvalidItem>,
    /// `--bot` selectors that matched no bot.
    pub not_found: Vec<String>,
    /// How each part of the selection was read.
    pub lookups: Vec<Lookup>,
    /// Scan/query pages read from the service (0 for an export held in memory).
    pub pages: u64,
}

/// A `SyncStatus` change for one bot, as the platform's worker makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The new status.
    pub status: SyncStatus,
    /// `SyncStatusReason`: what the UI shows.
    pub reason: String,
    /// `LastExecId` to write: the id of the run (or task) making the change.
    pub exec_id: String,
    /// When set, the update only happens if the item's `LastExecId` still equals this, so a
    /// stale run can't overwrite a newer one's status.
    pub expected_exec_id: Option<String>,
}

/// Where a status went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    /// Written to the registry item.
    Written,
    /// The registry is read-only (an export file): only the run journal keeps the status.
    JournalOnly,
}

/// A source of bots: the live DynamoDB table or an export of it.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Names the registry for messages: `DynamoDB table T`, `export file P`.
    fn describe(&self) -> String;

    /// Reads the selected bots. Items that can't be understood are reported in
    /// [`ScanOutcome::invalid`]; only failures to read the registry at all are errors.
    async fn bots(&self, selection: &Selection) -> Result<ScanOutcome, RegistryError>;

    /// Sets `SyncStatus`, `SyncStatusReason` and `LastExecId` of one bot, only if its item still
    /// exists (and, with [`StatusUpdate::expected_exec_id`], only if that run still owns it).
    async fn set_status(
        &self,
        key: &BotKey,
        update: &StatusUpdate,
    ) -> Result<StatusWrite, RegistryError>;
}
