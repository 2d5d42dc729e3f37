//! Command-line flags. Flags that set a configuration key are named `--<section>-<key>` and win
//! over `RAGSHIFT_<SECTION>_<KEY>`, which wins over the TOML file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use figment::value::Value;
use ragshift_config::{Layers, Sensitive};
use ragshift_store::index_build::{memory_setting, parse_memory, IndexBuildOptions, IndexObserver};

use crate::failure::Failure;

/// ragshift: move a RAG knowledge base (pgvector) to a new cluster without losing a bot, and
/// prove it.
#[derive(Debug, Parser)]
#[command(name = "ragshift", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  ragshift config show
  ragshift init-target --target-url postgres://app@db.example/rag
  ragshift search --bot 01HZX5Q8J6N2W4V7T9R3K1M0PB --vector q.json

Exit codes: 0 success; 1 the work ran and some of it failed; 2 usage, configuration or
connection error before any work started.";

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./ragshift.toml if present]
    #[arg(long, global = true, env = "RAGSHIFT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Machine-readable output on stdout (logs stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (errors only)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show or check the effective configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create the vector extension and the chunk table on the target if missing
    #[command(after_help = "\
Examples:
  ragshift init-target --target-url postgres://app:secret@localhost:5432/rag
  ragshift init-target --target-secret-arn arn:aws:secretsmanager:...:secret:db --dimensions 1024
  ragshift init-target --target-table items_v2 --json

A table that exists is never changed: if its shape differs, the command fails and shows both.")]
    InitTarget(crate::commands::init_target::InitTargetArgs),
    /// Build the vector index on the target (after the data is loaded)
    #[command(after_help = "\
Examples:
  ragshift build-index                       # HNSW, the default
  ragshift build-index --target-index ivfflat --target-index-lists 100")]
    BuildIndex(crate::commands::build_index::BuildIndexArgs),
    /// Search one bot's chunks the way the platform does
    #[command(after_help = "\
Examples:
  ragshift search --bot 01HZX5Q8J6N2W4V7T9R3K1M0PB \"how do I reset my password?\"
  ragshift search --bot 01HZX5Q8J6N2W4V7T9R3K1M0PB --vector query.json --limit 5 --json")]
    Search(crate::commands::search::SearchArgs),
    /// Preview how files and URLs become chunks (before paying for embeddings)
    #[command(after_help = "\
Examples:
  ragshift chunk handbook.pdf https://example.com/faq
  ragshift chunk --chunk-size 512 --chunk-overlap 64 --json notes.md")]
    Chunk(crate::commands::chunk::ChunkArgs),
    /// Embed texts with the configured provider, to check its settings
    #[command(after_help = "\
Examples:
  ragshift embed \"hello world\"
  ragshift embed --embedding-provider bedrock --embedding-model cohere.embed-multilingual-v3 --query \"refund policy?\"
  ragshift embed --json \"one\" \"two\"")]
    Embed(crate::commands::embed::EmbedArgs),
    /// Re-create every bot's vectors: load, split, embed and write, one job per bot
    #[command(after_help = "\
Examples:
  ragshift rebuild --dry-run                         # chunk counts and cost, nothing written
  ragshift rebuild --yes                             # every bot with knowledge
  ragshift rebuild --user USER_ID --bot BOT_ID --yes
  ragshift rebuild --executor ecs --stack BedrockChatStack --concurrency 20 --yes
  ragshift rebuild --resume 01JD9... --yes           # skip bots that already succeeded

Exit codes: 0 every bot succeeded; 1 some bots failed (listed, with reasons); 2 nothing ran.")]
    Rebuild(crate::commands::rebuild::RebuildArgs),
    /// The worker for one bot (what an ECS task runs): load, split, embed, write
    #[command(after_help = "\
Examples:
  ragshift embed-bot '{\"PK\":{\"S\":\"USER\"},\"SK\":{\"S\":\"USER#BOT#BOT_ID\"}}'
  EVENT='{\"PK\":{\"S\":\"USER\"},\"SK\":{\"S\":\"USER#BOT#BOT_ID\"}}' ragshift embed-bot

Exit codes: 0 the bot succeeded; 1 it failed (reason printed, SyncStatus FAILED); 2 nothing ran.")]
    EmbedBot(crate::commands::embed_bot::EmbedBotArgs),
    /// Per-bot state of a run (the latest by default), failures, and bots stuck in RUNNING
    #[command(after_help = "\
Examples:
  ragshift status
  ragshift status 01JD9ABCDEF... --json")]
    Status(crate::commands::status::StatusArgs),
    /// Copy the chunk table from a source (a restored snapshot) to the target: parallel binary
    /// COPY from one snapshot, indexes after, verified, resumable
    #[command(after_help = "\
Examples:
  ragshift copy --source postgres://app:pw@restored.example/rag --target postgres://app:pw@new.example/rag
  ragshift copy --source arn:aws:secretsmanager:...:secret:old --target arn:aws:secretsmanager:...:secret:new --jobs 8
  ragshift copy ... --dry-run                 # the plan: partitions, table, indexes; nothing changes
  ragshift copy ... --resume                  # after a crash: only unfinished partitions are copied
  ragshift copy ... --replace --bot 01HZX5Q8J6N2W4V7T9R3K1M0PB --json

The source is only read (one READ ONLY snapshot). Verification (per-bot counts and checksums of
every column) runs by default; any difference is listed per bot and exits 1.")]
    Copy(crate::commands::copy::CopyArgs),
    /// Write a portable, checksummed Parquet snapshot of the store (one file per bot + manifest)
    #[command(after_help = "\
Examples:
  ragshift export --source postgres://app:pw@old.example/rag --to ./kb-backup
  ragshift export --source arn:aws:secretsmanager:...:secret:db --to s3://my-bucket/ragshift/2026-11-25
  ragshift export --to ./one-bot --bot 01HZX5Q8J6N2W4V7T9R3K1M0PB --model cohere.embed-multilingual-v3

Take it BEFORE a destructive deploy; `ragshift import --from ...` restores it without re-embedding.
The files are plain Parquet (id, botid, content, source, embedding as fixed-size float32 lists).")]
    Export(crate::commands::export::ExportArgs),
    /// Load an export into the target: checksums checked first, one transaction per bot
    #[command(after_help = "\
Examples:
  ragshift import --from ./kb-backup --target postgres://app:pw@new.example/rag
  ragshift import --from s3://my-bucket/ragshift/2026-11-25 --target-index ivfflat --json

Every file's SHA-256 is checked against the manifest before anything is written; afterwards the
target's per-bot checksums are compared with the ones recorded at export.")]
    Import(crate::commands::import::ImportArgs),
    /// Near-zero-downtime migration with logical replication: start, status, cutover, abort
    #[command(subcommand)]
    Replicate(crate::commands::replicate::ReplicateCommand),
    /// Prove a migration: per-bot checksums, registry coverage, retrieval agreement
    Verify(crate::commands::verify::VerifyArgs),
    /// Find every bot with knowledge and estimate a migration's size, cost and time
    #[command(after_help = "\
Examples:
  ragshift plan --stack BedrockChatStack            # live table and bucket from the stack
  ragshift plan --registry-file scan.json --documents-dir ./bucket-copy
  ragshift plan --registry-file ./AWSDynamoDB/01700000000000-abc/data --json
  ragshift plan --user 3f1c... --bot 01HZX5Q8J6N2W4V7T9R3K1M0PB --bot user-2/01HZY...

Nothing is changed. Invalid registry items and missing files are listed; the exit code stays 0.
Cost uses a dated built-in price table unless [embedding] price_per_1k_tokens is set.")]
    Plan(crate::commands::plan::PlanArgs),
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets masked, with where each value came from
    #[command(after_help = "\
Examples:
  ragshift config show
  RAGSHIFT_TARGET_TABLE=items_v2 ragshift config show --json")]
    Show(crate::commands::config_show::ConfigShowArgs),
}

/// `[target]` flags.
#[derive(Debug, Clone, Args, Default)]
pub struct TargetArgs {
    /// Target database URL [config: target.url]
    #[arg(long, value_name = "URL")]
    pub target_url: Option<Sensitive>,
    /// Secrets Manager secret with the target's host/port/username/password/dbname
    #[arg(long, value_name = "ARN")]
    pub target_secret_arn: Option<String>,
    /// Schema of the target table [config: target.schema]
    #[arg(long, value_name = "NAME")]
    pub target_schema: Option<String>,
    /// Target table [config: target.table]
    #[arg(long, value_name = "NAME")]
    pub target_table: Option<String>,
    /// disable, prefer, require, verify-ca or verify-full [config: target.sslmode]
    #[arg(long, value_name = "MODE")]
    pub target_sslmode: Option<String>,
    /// CA certificate file [config: target.sslrootcert]
    #[arg(long, value_name = "FILE")]
    pub target_sslrootcert: Option<PathBuf>,
    /// Whose table: bedrock-chat, langchain, langchain-v2, llamaindex or custom; sets both
    /// sides' table and column names where they are not set one by one
    /// [config: target.layout, source.layout]
    #[arg(long, value_name = "NAME")]
    pub layout: Option<String>,
    /// Both sides' table (the llamaindex layout: the store's table_name, kept in
    /// data_<name>); --source-table / --target-table win over it [config: target.table,
    /// source.table]
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Target chunk id column [config: target.id_column]
    #[arg(long, value_name = "NAME")]
    pub target_id_column: Option<String>,
    /// Target bot (collection) column [config: target.bot_column]
    #[arg(long, value_name = "NAME")]
    pub target_bot_column: Option<String>,
    /// Target chunk text column [config: target.content_column]
    #[arg(long, value_name = "NAME")]
    pub target_content_column: Option<String>,
    /// Target chunk source column [config: target.source_column]
    #[arg(long, value_name = "NAME")]
    pub target_source_column: Option<String>,
    /// Target vector column [config: target.embedding_column]
    #[arg(long, value_name = "NAME")]
    pub target_embedding_column: Option<String>,
}

/// `--journal-schema`, for the commands that read or write the run journal.
#[derive(Debug, Clone, Args, Default)]
pub struct JournalArgs {
    /// Schema in the target holding ragshift's run journal and embedding cache; every command
    /// on one target must use the same one [config: run.journal_schema, default ragshift]
    #[arg(long, value_name = "NAME")]
    pub journal_schema: Option<String>,
}

/// `[source]` flags.
#[derive(Debug, Clone, Args, Default)]
pub struct SourceArgs {
    /// Source database URL [config: source.url]
    #[arg(long, value_name = "URL")]
    pub source_url: Option<Sensitive>,
    /// Secrets Manager secret with the source's connection
    #[arg(long, value_name = "ARN")]
    pub source_secret_arn: Option<String>,
    /// Source table [config: source.table]
    #[arg(long, value_name = "NAME")]
    pub source_table: Option<String>,
    /// sslmode for the source [config: source.sslmode]
    #[arg(long, value_name = "MODE")]
    pub source_sslmode: Option<String>,
    /// CA certificate file for the source [config: source.sslrootcert]
    #[arg(long, value_name = "FILE")]
    pub source_sslrootcert: Option<PathBuf>,
    /// Schema of the source table [config: source.schema]
    #[arg(long, value_name = "NAME")]
    pub source_schema: Option<String>,
    /// Whose table the source is (bedrock-chat, langchain, langchain-v2, llamaindex, custom)
    /// [config: source.layout]
    #[arg(long, value_name = "NAME")]
    pub source_layout: Option<String>,
    /// Source chunk id column [config: source.id_column]
    #[arg(long, value_name = "NAME")]
    pub source_id_column: Option<String>,
    /// Source bot (collection) column [config: source.bot_column]
    #[arg(long, value_name = "NAME")]
    pub source_bot_column: Option<String>,
    /// Source chunk text column [config: source.content_column]
    #[arg(long, value_name = "NAME")]
    pub source_content_column: Option<String>,
    /// Source chunk source column [config: source.source_column]
    #[arg(long, value_name = "NAME")]
    pub source_source_column: Option<String>,
    /// Source vector column [config: source.embedding_column]
    #[arg(long, value_name = "NAME")]
    pub source_embedding_column: Option<String>,
    /// A table moved (and verified) with the chunk table though it has no foreign key to it,
    /// e.g. a docstore; repeat for more. The tables the chunk table refers to always come
    /// [config: source.extra_tables]
    #[arg(long, value_name = "[SCHEMA.]TABLE")]
    pub extra_table: Vec<String>,
}

/// `[embedding]` flags.
#[derive(Debug, Clone, Args, Default)]
pub struct EmbeddingArgs {
    /// local, bedrock or openai [config: embedding.provider]
    #[arg(long, value_name = "NAME")]
    pub embedding_provider: Option<String>,
    /// Model id [config: embedding.model]
    #[arg(long, value_name = "ID")]
    pub embedding_model: Option<String>,
    /// Local model folder [config: embedding.model_dir]
    #[arg(long, value_name = "DIR")]
    pub embedding_model_dir: Option<PathBuf>,
    /// Output dimension [config: embedding.dimensions]
    #[arg(long, value_name = "N")]
    pub embedding_dimensions: Option<usize>,
}

/// `[aws]` flags.
#[derive(Debug, Clone, Args, Default)]
pub struct AwsArgs {
    /// AWS region [config: aws.region]
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
    /// Endpoint for every AWS service (a local AWS-API server) [config: aws.endpoint_url]
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
    /// Named AWS profile [config: aws.profile]
    #[arg(long, value_name = "NAME")]
    pub aws_profile: Option<String>,
    /// CloudFormation stack whose outputs fill unset names [config: aws.stack]
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
}

/// Something that contributes flags to the configuration layers.
pub trait Overrides {
    /// Adds this group's flags that were given.
    fn apply(&self, layers: Layers) -> Layers;
}

/// `overrides_of!(Group: part, ...)`: a group whose flags are its parts' flags, applied in that
/// order.
macro_rules! overrides_of {
    ($t:ty: $($part:ident),+) => {
        impl $crate::args::Overrides for $t {
            fn apply(&self, l: ragshift_config::Layers) -> ragshift_config::Layers {
                $(let l = $crate::args::Overrides::apply(&self.$part, l);)+
                l
            }
        }
    };
}
pub(crate) use overrides_of;

/// `given!(layers, args, field => "section.key", ...)`: sets each key from the flag named after
/// its field (`target_url` is `--target-url`), when that flag was given.
macro_rules! given {
    ($l:expr, $args:expr, $($field:ident => $key:literal),+ $(,)?) => {{
        let l = $l;
        $(let l = $crate::args::FlagValue::set(&$args.$field, l, stringify!($field), $key);)+
        l
    }};
}
pub(crate) use given;

/// A flag's value as a configuration value, when the flag was given.
pub trait FlagValue {
    /// The value, or `None` when the flag was not given.
    fn value(&self) -> Option<Value>;

    /// Sets `key` from the flag of the field named `field`, if it was given.
    fn set(&self, layers: Layers, field: &str, key: &str) -> Layers {
        match self.value() {
            Some(v) => layers.flag(&format!("--{}", field.replace('_', "-")), key, v),
            None => layers,
        }
    }
}

/// `FlagValue` for each flag type, as `type => |flag| its value if given`.
macro_rules! flag_values {
    ($($(#[$doc:meta])* $t:ty => |$v:ident| $value:expr),+ $(,)?) => {$(
        $(#[$doc])*
        impl FlagValue for $t {
            fn value(&self) -> Option<Value> {
                let $v = self;
                $value
            }
        }
    )+};
}

flag_values! {
    Option<String> => |v| v.clone().map(Value::from),
    Option<PathBuf> => |v| v.as_ref().map(|p| p.display().to_string().into()),
    /// A secret (a URL with its password) leaves its redacting type only here, to become a
    /// configuration value.
    Option<Sensitive> => |v| v.as_ref().map(|s| s.expose().to_owned().into()),
    Option<u32> => |v| v.map(|n| u64::from(n).into()),
    Option<usize> => |v| v.map(|n| (n as u64).into()),
    /// A duration in whole seconds (`90s`), as the configuration reads it.
    Option<std::time::Duration> => |v| v.map(|d| format!("{}s", d.as_secs()).into()),
    /// A repeatable flag: given when given at least once.
    Vec<String> => |v| (!v.is_empty()).then(|| v.clone().into()),
    /// A switch: sets `true` when given.
    bool => |v| v.then(|| true.into()),
}

/// Sets each of `keys` from a flag that speaks for both sides ([`Layers::broad_flag`]).
fn set_broad(layers: Layers, flag: &str, keys: &[&str], v: &Option<String>) -> Layers {
    match v {
        Some(v) => keys
            .iter()
            .fold(layers, |l, key| l.broad_flag(flag, key, v.clone())),
        None => layers,
    }
}

/// `--source`/`--target` shorthand: an ARN is a secret, anything else a URL (which stays in
/// its redacting type until it becomes a configuration value).
pub(crate) fn url_or_arn(l: Layers, flag: &str, side: &str, v: &Option<Sensitive>) -> Layers {
    let Some(v) = v else { return l };
    let key = if v.expose().starts_with("arn:") {
        "secret_arn"
    } else {
        "url"
    };
    l.flag(flag, &format!("{side}.{key}"), v.expose().to_owned())
}

impl Overrides for TargetArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = given!(l, self,
            target_url => "target.url",
            target_secret_arn => "target.secret_arn",
            target_schema => "target.schema",
            target_table => "target.table",
        );
        let l = set_broad(
            l,
            "--layout",
            &["target.layout", "source.layout"],
            &self.layout,
        );
        let l = set_broad(l, "--table", &["target.table", "source.table"], &self.table);
        given!(l, self,
            target_id_column => "target.id_column",
            target_bot_column => "target.bot_column",
            target_content_column => "target.content_column",
            target_source_column => "target.source_column",
            target_embedding_column => "target.embedding_column",
            target_sslmode => "target.sslmode",
            target_sslrootcert => "target.sslrootcert",
        )
    }
}

impl Overrides for SourceArgs {
    fn apply(&self, l: Layers) -> Layers {
        given!(l, self,
            source_url => "source.url",
            source_secret_arn => "source.secret_arn",
            source_table => "source.table",
            source_schema => "source.schema",
            source_layout => "source.layout",
            extra_table => "source.extra_tables",
            source_id_column => "source.id_column",
            source_bot_column => "source.bot_column",
            source_content_column => "source.content_column",
            source_source_column => "source.source_column",
            source_embedding_column => "source.embedding_column",
            source_sslmode => "source.sslmode",
            source_sslrootcert => "source.sslrootcert",
        )
    }
}

impl Overrides for EmbeddingArgs {
    fn apply(&self, l: Layers) -> Layers {
        given!(l, self,
            embedding_provider => "embedding.provider",
            embedding_model => "embedding.model",
            embedding_model_dir => "embedding.model_dir",
            embedding_dimensions => "embedding.dimensions",
        )
    }
}

impl Overrides for JournalArgs {
    fn apply(&self, l: Layers) -> Layers {
        given!(l, self, journal_schema => "run.journal_schema")
    }
}

impl Overrides for AwsArgs {
    fn apply(&self, l: Layers) -> Layers {
        given!(l, self,
            aws_region => "aws.region",
            aws_endpoint_url => "aws.endpoint_url",
            aws_profile => "aws.profile",
            stack => "aws.stack",
        )
    }
}

/// `[registry]` flags: where the bots are listed. Giving a table or a file also picks the kind.
#[derive(Debug, Clone, Args, Default)]
pub struct RegistryArgs {
    /// Live DynamoDB table (sets registry.kind = dynamodb) [config: registry.table]
    #[arg(long, value_name = "NAME", conflicts_with = "registry_file")]
    pub registry_table: Option<String>,
    /// Export file or folder (`aws dynamodb scan` JSON or an export to S3; sets registry.kind = file) [config: registry.path]
    #[arg(long, value_name = "PATH")]
    pub registry_file: Option<PathBuf>,
    /// Parallel scan segments [config: registry.scan_segments]
    #[arg(long, value_name = "N")]
    pub scan_segments: Option<u32>,
}

impl Overrides for RegistryArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = registry_flags(l, &self.registry_table, &self.registry_file);
        given!(l, self, scan_segments => "registry.scan_segments")
    }
}

/// `--registry-table` or `--registry-file` (they conflict), wherever a command takes them: the
/// table or the path, and the kind of registry it implies.
pub fn registry_flags(l: Layers, table: &Option<String>, file: &Option<PathBuf>) -> Layers {
    let l = match (table, file) {
        (Some(_), _) => l.flag("--registry-table", "registry.kind", "dynamodb"),
        (None, Some(_)) => l.flag("--registry-file", "registry.kind", "file"),
        (None, None) => l,
    };
    let l = table.set(l, "registry_table", "registry.table");
    file.set(l, "registry_file", "registry.path")
}

/// `[documents]` flags: where uploaded files are. Giving a bucket or a folder also picks the kind.
#[derive(Debug, Clone, Args, Default)]
pub struct DocumentsArgs {
    /// S3 bucket (sets documents.kind = s3) [config: documents.bucket]
    #[arg(long, value_name = "NAME", conflicts_with = "documents_dir")]
    pub documents_bucket: Option<String>,
    /// Local folder with the bucket's layout (sets documents.kind = dir) [config: documents.path]
    #[arg(long, value_name = "DIR")]
    pub documents_dir: Option<PathBuf>,
}

impl Overrides for DocumentsArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = match (&self.documents_bucket, &self.documents_dir) {
            (Some(_), _) => l.flag("--documents-bucket", "documents.kind", "s3"),
            (None, Some(_)) => l.flag("--documents-dir", "documents.kind", "dir"),
            (None, None) => l,
        };
        given!(l, self,
            documents_bucket => "documents.bucket",
            documents_dir => "documents.path",
        )
    }
}

/// Where bots and their knowledge come from and how it is embedded: the registry, the
/// documents and the embedding (`plan` and a bot's worker).
#[derive(Debug, Args)]
pub struct BotSourcesArgs {
    /// Registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Documents.
    #[command(flatten)]
    pub documents: DocumentsArgs,
    /// Embedding.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
}

overrides_of!(BotSourcesArgs: registry, documents, embedding);

/// The target database with its run journal, and AWS (for a secret ARN): what a command that
/// writes or reads runs on the target needs.
#[derive(Debug, Args)]
pub struct TargetRunArgs {
    /// Target database.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// AWS.
    #[command(flatten)]
    pub aws: AwsArgs,
}

overrides_of!(TargetRunArgs: target, journal, aws);

/// What a bot's worker reads and writes, for `rebuild` and its ECS tasks' `embed-bot` alike:
/// the registry, the documents, the embedding, the target table, the journal and AWS.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Registry, documents and embedding.
    #[command(flatten)]
    pub sources: BotSourcesArgs,
    /// Target database, the run journal's schema and AWS.
    #[command(flatten)]
    pub target: TargetRunArgs,
}

overrides_of!(WorkerArgs: sources, target);

/// `[index]` flags: memory and parallel workers for index builds (copy, replicate cutover,
/// rebuild, build-index).
#[derive(Debug, Clone, Args, Default)]
pub struct IndexArgs {
    /// Most maintenance_work_mem one index build may get; below it each build gets its
    /// estimate [config: index.max_memory, default: 1GB, or the server's setting if larger]
    #[arg(long, value_name = "SIZE", value_parser = memory_setting)]
    pub index_max_memory: Option<String>,
    /// max_parallel_maintenance_workers for index builds [config: index.parallel_workers,
    /// default: the server's setting]
    #[arg(long, value_name = "N")]
    pub index_parallel_workers: Option<u32>,
    /// An exact maintenance_work_mem for every index build, instead of each build's estimate
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub maintenance_work_mem: Option<u64>,
}

impl Overrides for IndexArgs {
    fn apply(&self, l: Layers) -> Layers {
        given!(l, self,
            index_max_memory => "index.max_memory",
            index_parallel_workers => "index.parallel_workers",
        )
    }
}

impl IndexArgs {
    /// The build engine's options from `[index]` and these flags, reports going to
    /// `observer`; a bad `[index] max_memory` is a configuration error naming the key.
    pub fn options(
        &self,
        config: &ragshift_config::IndexConfig,
        observer: Option<IndexObserver>,
    ) -> Result<IndexBuildOptions, Failure> {
        let options = IndexBuildOptions::configured(config, self.maintenance_work_mem, observer);
        Ok(options.map_err(anyhow::Error::msg)?)
    }
}

/// The vector index to build and its build's resources (`build-index`, `copy`).
#[derive(Debug, Args)]
pub struct VectorIndexArgs {
    /// `hnsw` or `ivfflat` [config: target.index]
    #[arg(long, value_name = "KIND")]
    pub target_index: Option<String>,
    /// ivfflat lists [default: from the row count]
    #[arg(long, value_name = "N")]
    pub target_index_lists: Option<u32>,
    /// Memory and parallel workers for the builds.
    #[command(flatten)]
    pub index: IndexArgs,
}

impl Overrides for VectorIndexArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.index.apply(l);
        given!(l, self,
            target_index => "target.index",
            target_index_lists => "target.index_lists",
        )
    }
}

/// Both databases: `--source`/`--target` (a URL or a secret ARN) and each side's section flags,
/// for the commands that read one and write or compare the other (`copy`, `verify`,
/// `replicate`).
#[derive(Debug, Args)]
pub struct DatabasesArgs {
    /// Source: a postgres:// URL or a Secrets Manager secret ARN (shorthand for
    /// --source-url / --source-secret-arn)
    #[arg(long, value_name = "URL|ARN")]
    pub source: Option<Sensitive>,
    /// Target: a postgres:// URL or a Secrets Manager secret ARN (shorthand for
    /// --target-url / --target-secret-arn)
    #[arg(long, value_name = "URL|ARN")]
    pub target: Option<Sensitive>,
    /// Source database.
    #[command(flatten)]
    pub source_db: SourceArgs,
    /// Target database.
    #[command(flatten)]
    pub target_db: TargetArgs,
}

impl Overrides for DatabasesArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.target_db.apply(self.source_db.apply(l));
        let l = url_or_arn(l, "--source", "source", &self.source);
        url_or_arn(l, "--target", "target", &self.target)
    }
}

/// Both databases with the run journal and AWS (for secret ARNs): the commands that move a
/// store from one to the other (`copy`, `replicate`).
#[derive(Debug, Args)]
pub struct SidesArgs {
    /// The databases.
    #[command(flatten)]
    pub databases: DatabasesArgs,
    /// The run journal's schema.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// AWS settings (for secret ARNs).
    #[command(flatten)]
    pub aws: AwsArgs,
}

overrides_of!(SidesArgs: databases, aws, journal);
