//! The platform's live registry: one DynamoDB table holding users' bots, aliases and
//! conversations (`PK` = user id, `SK` = `{user}#BOT#{bot}` for a bot).
//!
//! Reads are as narrow as the selection allows: a user's bots are a query on `PK`, a bot whose
//! owner is known is one `GetItem`, a public bot is found through `PublicBotIdIndex`, and only
//! otherwise is the table scanned (in parallel segments, filtered to bot items).

mod lookup;
mod scan;
mod status;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use ragshift_model::{Bot, BotKey};
use ragshift_retry::Policy;

use crate::attr::item_from_sdk;
use crate::decode::{decode, Decoded, InvalidItem, BOT_ATTRIBUTES};
use crate::error::RegistryError;
use crate::registry::{Registry, ScanOutcome, StatusUpdate, StatusWrite};
use crate::selection::{BotSelector, Lookup, LookupMethod, Selection};

/// The global secondary index the platform keeps on `PublicBotId` (present while a bot is
/// public).
pub const PUBLIC_BOT_INDEX: &str = "PublicBotIdIndex";

/// Bot ids per filtered scan (each adds a `contains(SK, …)` term to the filter).
const IDS_PER_FILTERED_SCAN: usize = 40;

/// The live DynamoDB registry.
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
    segments: u32,
    page_limit: Option<i32>,
    retry: Policy,
}

impl DynamoRegistry {
    /// A registry on `table`, scanned with 4 parallel segments, retrying under the default
    /// [`Policy`]. The client is built without the SDK's own retries: every attempt is ours.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(&ragshift_aws::retry::without_sdk_retries(sdk)),
            table: table.into(),
            segments: 4,
            page_limit: None,
            retry: Policy::default(),
        }
    }

    /// Parallel scan segments (`TotalSegments`), at least 1.
    pub fn with_segments(mut self, segments: u32) -> Self {
        self.segments = segments.max(1);
        self
    }

    /// Items evaluated per scan/query page (`Limit`); DynamoDB's 1 MB pages when unset.
    pub fn with_page_limit(mut self, limit: Option<i32>) -> Self {
        self.page_limit = limit;
        self
    }

    /// The retry policy for throttled, unreachable or failing calls (`[retry]`).
    pub fn with_retry(mut self, retry: Policy) -> Self {
        self.retry = retry;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn not_found_hint(&self) -> String {
        format!(
            "check the table name ([registry] table, --registry-table or --stack) and the region ([aws] region, AWS_REGION) for {}",
            self.table
        )
    }

    /// A `GetItem` of the bot `key` (the caller adds what it needs and sends it).
    fn get_bot_item(
        &self,
        key: &BotKey,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(key.pk().to_owned()))
            .key("SK", AttributeValue::S(key.sk()))
    }

    fn aws_error(&self, e: ragshift_aws::AwsError) -> RegistryError {
        RegistryError::aws(e, &self.not_found_hint())
    }

    /// `#a0`… names for [`BOT_ATTRIBUTES`], so reserved words never get in the way.
    fn projection() -> (String, HashMap<String, String>) {
        let names: HashMap<String, String> = BOT_ATTRIBUTES
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("#a{i}"), (*a).to_owned()))
            .collect();
        let expr = (0..BOT_ATTRIBUTES.len())
            .map(|i| format!("#a{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        (expr, names)
    }

    /// The placeholder of attribute `name` in [`Self::projection`]'s names.
    fn name_of(attr: &str) -> String {
        let i = BOT_ATTRIBUTES
            .iter()
            .position(|a| *a == attr)
            .unwrap_or_default();
        format!("#a{i}")
    }
}

/// Bots and invalid items gathered from any number of reads, each bot once.
#[derive(Default)]
struct Found {
    bots: BTreeMap<BotKey, Bot>,
    invalid: Vec<InvalidItem>,
    pages: u64,
}

impl Found {
    fn add(&mut self, item: &HashMap<String, AttributeValue>) {
        match decode(&item_from_sdk(item, BOT_ATTRIBUTES)) {
            Decoded::Bot(bot) => {
                self.bots.insert(bot.key.clone(), *bot);
            }
            Decoded::Invalid(inv) => {
                if !self.invalid.contains(&inv) {
                    self.invalid.push(inv);
                }
            }
            Decoded::NotABot => {}
        }
    }

    /// Whether a bot or an invalid item with this selector's id was found.
    fn has(&self, selection: &Selection, b: &BotSelector) -> bool {
        self.bots.keys().any(|k| selection.selector_matches(b, k))
            || self.invalid.iter().any(|i| {
                i.key.ends_with(&format!("#BOT#{}", b.bot_id))
                    && b.owner
                        .as_ref()
                        .is_none_or(|o| i.key.starts_with(&format!("{o}#")))
            })
    }
}

#[async_trait]
impl Registry for DynamoRegistry {
    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    async fn bots(&self, selection: &Selection) -> Result<ScanOutcome, RegistryError> {
        let mut found = Found::default();
        let mut lookups = Vec::new();
        let mut not_found = Vec::new();
        if selection.is_all() {
            self.parallel_scan(&mut found).await?;
            lookups.push(Lookup {
                target: "all bots".into(),
                method: LookupMethod::ParallelScan,
            });
        } else if selection.bots.is_empty() {
            for user in &selection.users {
                self.query_user(user, &mut found).await?;
                lookups.push(Lookup {
                    target: user.clone(),
                    method: LookupMethod::QueryUser,
                });
            }
        } else {
            let mut to_scan = Vec::new();
            for b in &selection.bots {
                let owners: Vec<&String> = match &b.owner {
                    Some(o) => vec![o],
                    None => selection.users.iter().collect(),
                };
                if !owners.is_empty() {
                    for owner in owners {
                        self.get_bot(&BotKey::new(owner, &b.bot_id), &mut found)
                            .await?;
                    }
                    lookups.push(Lookup {
                        target: b.to_string(),
                        method: LookupMethod::GetItem,
                    });
                } else if self.public_bot(&b.bot_id, &mut found).await? {
                    lookups.push(Lookup {
                        target: b.to_string(),
                        method: LookupMethod::PublicBotIndex,
                    });
                } else {
                    to_scan.push(b.clone());
                }
                if !found.has(selection, b) && !to_scan.contains(b) {
                    not_found.push(b.to_string());
                }
            }
            if !to_scan.is_empty() {
                let ids: Vec<String> = to_scan.iter().map(|b| b.bot_id.clone()).collect();
                tracing::info!(
                    "bot(s) {} have no known owner and are not public: scanning {} for them (give USER/BOT or --user to read them directly)",
                    ids.join(", "),
                    self.table
                );
                for chunk in ids.chunks(IDS_PER_FILTERED_SCAN) {
                    self.filtered_scan(chunk, &mut found).await?;
                }
                for b in &to_scan {
                    lookups.push(Lookup {
                        target: b.to_string(),
                        method: LookupMethod::FilteredScan,
                    });
                    if !found.has(selection, b) {
                        not_found.push(b.to_string());
                    }
                }
            }
        }
        let bots = std::mem::take(&mut found.bots)
            .into_values()
            .filter(|b| selection.matches(&b.key))
            .collect();
        let mut invalid = std::mem::take(&mut found.invalid);
        invalid.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ScanOutcome {
            bots,
            invalid,
            not_found,
            lookups,
            pages: found.pages,
        })
    }

    async fn set_status(
        &self,
        key: &BotKey,
        update: &StatusUpdate,
    ) -> Result<StatusWrite, RegistryError> {
        self.update_status(key, update).await?;
        Ok(StatusWrite::Written)
    }
}
