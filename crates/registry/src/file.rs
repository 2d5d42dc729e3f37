//! The registry as an export file: the whole export is read (and checked) when opened, held in
//! memory, and selections are applied to it. It is read-only: statuses go to the run journal.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ragshift_model::{Bot, BotKey};

use crate::decode::InvalidItem;
use crate::error::RegistryError;
use crate::export::{read_export, Located};
use crate::registry::{Registry, ScanOutcome, StatusUpdate, StatusWrite};
use crate::selection::{Lookup, LookupMethod, Selection};

/// An export of the registry (see [`crate::export`] for the formats).
#[derive(Debug, Clone)]
pub struct FileRegistry {
    path: PathBuf,
    bots: Vec<Bot>,
    invalid: Vec<Located>,
}

impl FileRegistry {
    /// Reads and checks the export at `path` (a file or an export folder) on a blocking thread.
    pub async fn open(path: &Path) -> Result<Self, RegistryError> {
        let p = path.to_path_buf();
        let contents = tokio::task::spawn_blocking(move || read_export(&p))
            .await
            .map_err(|e| RegistryError::Config(format!("reading {}: {e}", path.display())))??;
        tracing::debug!(
            "{}: {} bot(s), {} invalid, {} other item(s) in {} file(s)",
            path.display(),
            contents.bots.len(),
            contents.invalid.len(),
            contents.other_items,
            contents.files.len()
        );
        let mut bots = contents.bots;
        bots.sort_by(|a, b| a.key.cmp(&b.key));
        bots.dedup_by(|a, b| a.key == b.key);
        Ok(Self {
            path: path.to_path_buf(),
            bots,
            invalid: contents.invalid,
        })
    }
}

#[async_trait]
impl Registry for FileRegistry {
    fn describe(&self) -> String {
        format!("export file {}", self.path.display())
    }

    async fn bots(&self, selection: &Selection) -> Result<ScanOutcome, RegistryError> {
        let bots: Vec<Bot> = self
            .bots
            .iter()
            .filter(|b| selection.matches(&b.key))
            .cloned()
            .collect();
        let invalid_matches = |inv: &InvalidItem| match inv.key.split_once("#BOT#") {
            Some((user, bot)) => selection.matches(&BotKey::new(user, bot)),
            None => selection.is_all(),
        };
        let mut invalid: Vec<InvalidItem> = self
            .invalid
            .iter()
            .filter(|l| invalid_matches(&l.item))
            .map(|l| {
                tracing::debug!("invalid item {} at {}", l.item.key, l.location);
                l.item.clone()
            })
            .collect();
        invalid.sort_by(|a, b| a.key.cmp(&b.key));
        let not_found = selection
            .bots
            .iter()
            .filter(|sel| {
                !bots.iter().any(|b| selection.selector_matches(sel, &b.key))
                    && !invalid
                        .iter()
                        .any(|i| i.key.ends_with(&format!("#BOT#{}", sel.bot_id)))
            })
            .map(ToString::to_string)
            .collect();
        Ok(ScanOutcome {
            bots,
            invalid,
            not_found,
            lookups: vec![Lookup {
                target: if selection.is_all() {
                    "all bots".into()
                } else {
                    "selection".into()
                },
                method: LookupMethod::ExportFile,
            }],
            pages: 0,
        })
    }

    async fn set_status(
        &self,
        _key: &BotKey,
        _update: &StatusUpdate,
    ) -> Result<StatusWrite, RegistryError> {
        Ok(StatusWrite::JournalOnly)
    }
}

impl FileRegistry {
    /// Where each invalid item is in the export (`line 12 of …`), for detailed reports.
    pub fn invalid_locations(&self) -> impl Iterator<Item = (&InvalidItem, &str)> {
        self.invalid.iter().map(|l| (&l.item, l.location.as_str()))
    }
}
