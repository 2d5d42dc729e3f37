//! The chat platform's bot registry, read the way the platform lays it out (one DynamoDB table;
//! `PK` = user id, `SK` = `{user}#BOT#{bot}` for bots, beside aliases and conversations).
//!
//! * [`Registry`]: list the bots a command works on ([`Selection`]: all, `--user`, `--bot`) and
//!   set a bot's `SyncStatus` with conditions that keep stale runs out.
//! * [`DynamoRegistry`]: the live table: parallel filtered scans, queries by user, direct reads,
//!   the public-bot index; throttled or failed calls retried under the one [`ragshift_retry::Policy`]
//!   (the SDK's own retries off, so attempts are never multiplied).
//! * [`FileRegistry`]: an export (`aws dynamodb scan --output json`, or a DynamoDB export to S3
//!   as gzipped JSON lines), for planning without access to the table.
//! * [`stack::discover`]: names from the platform's CloudFormation stack outputs.
//!
//! Items are decoded tolerantly ([`decode`]): missing `EmbeddingParams` get the platform's
//! defaults; what cannot be understood is reported with its key and reason, and the read goes
//! on.
//!
//! ```no_run
//! # async fn example(sdk: aws_config::SdkConfig) -> Result<(), ragshift_registry::RegistryError> {
//! use ragshift_registry::{DynamoRegistry, Registry, Selection};
//! let registry = DynamoRegistry::new(&sdk, "BedrockChatStack-ConversationTable").with_segments(8);
//! let found = registry.bots(&Selection::all()).await?;
//! for bot in &found.bots {
//!     println!("{} {} sources", bot.key, bot.knowledge.len());
//! }
//! # Ok(()) }
//! ```

pub mod attr;
pub mod decode;
mod dynamodb;
mod error;
pub mod export;
mod file;
mod open;
mod registry;
mod selection;
pub mod stack;

pub use decode::InvalidItem;
pub use dynamodb::{DynamoRegistry, PUBLIC_BOT_INDEX};
pub use error::RegistryError;
pub use file::FileRegistry;
pub use open::from_config;
pub use registry::{Registry, ScanOutcome, StatusUpdate, StatusWrite};
pub use selection::{BotSelector, Lookup, LookupMethod, Selection};
