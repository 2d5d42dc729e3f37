//! Command-line flags. Flags that set a configuration key are named `--<section>-<key>` and win
//! over `RAGSHIFT_<SECTION>_<KEY>`, which wins over the TOML file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ragshift_config::{Layers, Sensitive};

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

impl Overrides for JournalArgs {
    fn apply(&self, l: Layers) -> Layers {
        set_str(
            l,
            "--journal-schema",
            "run.journal_schema",
            &self.journal_schema,
        )
    }
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

pub(crate) fn set_str(layers: Layers, flag: &str, key: &str, v: &Option<String>) -> Layers {
    match v {
        Some(v) => layers.flag(flag, key, v.clone()),
        None => layers,
    }
}

/// Sets each of `keys` from a flag that speaks for both sides ([`Layers::broad_flag`]).
pub(crate) fn set_broad(layers: Layers, flag: &str, keys: &[&str], v: &Option<String>) -> Layers {
    match v {
        Some(v) => keys
            .iter()
            .fold(layers, |l, key| l.broad_flag(flag, key, v.clone())),
        None => layers,
    }
}

/// Like [`set_str`] for a secret (a URL with its password): it leaves its redacting type only
/// here, to become a configuration value.
pub(crate) fn set_secret(layers: Layers, flag: &str, key: &str, v: &Option<Sensitive>) -> Layers {
    match v {
        Some(v) => layers.flag(flag, key, v.expose().to_owned()),
        None => layers,
    }
}

/// `--source`/`--target` shorthand: an ARN is a secret, anything else a URL (which stays in
/// its redacting type until it becomes a configuration value).
pub(crate) fn url_or_arn(l: Layers, flag: &str, side: &str, v: &Option<Sensitive>) -> Layers {
    match v {
        Some(v) if v.expose().starts_with("arn:") => {
            l.flag(flag, &format!("{side}.secret_arn"), v.expose().to_owned())
        }
        Some(_) => set_secret(l, flag, &format!("{side}.url"), v),
        None => l,
    }
}

pub(crate) fn set_path(layers: Layers, flag: &str, key: &str, v: &Option<PathBuf>) -> Layers {
    match v {
        Some(v) => layers.flag(flag, key, v.display().to_string()),
        None => layers,
    }
}

impl Overrides for TargetArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = set_secret(l, "--target-url", "target.url", &self.target_url);
        let l = set_str(
            l,
            "--target-secret-arn",
            "target.secret_arn",
            &self.target_secret_arn,
        );
        let l = set_str(l, "--target-schema", "target.schema", &self.target_schema);
        let l = set_str(l, "--target-table", "target.table", &self.target_table);
        let l = set_broad(
            l,
            "--layout",
            &["target.layout", "source.layout"],
            &self.layout,
        );
        let l = set_broad(l, "--table", &["target.table", "source.table"], &self.table);
        let l = set_str(
            l,
            "--target-id-column",
            "target.id_column",
            &self.target_id_column,
        );
        let l = set_str(
            l,
            "--target-bot-column",
            "target.bot_column",
            &self.target_bot_column,
        );
        let l = set_str(
            l,
            "--target-content-column",
            "target.content_column",
            &self.target_content_column,
        );
        let l = set_str(
            l,
            "--target-source-column",
            "target.source_column",
            &self.target_source_column,
        );
        let l = set_str(
            l,
            "--target-embedding-column",
            "target.embedding_column",
            &self.target_embedding_column,
        );
        let l = set_str(
            l,
            "--target-sslmode",
            "target.sslmode",
            &self.target_sslmode,
        );
        set_path(
            l,
            "--target-sslrootcert",
            "target.sslrootcert",
            &self.target_sslrootcert,
        )
    }
}

impl Overrides for SourceArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = set_secret(l, "--source-url", "source.url", &self.source_url);
        let l = set_str(
            l,
            "--source-secret-arn",
            "source.secret_arn",
            &self.source_secret_arn,
        );
        let l = set_str(l, "--source-table", "source.table", &self.source_table);
        let l = set_str(l, "--source-schema", "source.schema", &self.source_schema);
        let l = set_str(l, "--source-layout", "source.layout", &self.source_layout);
        let l = if self.extra_table.is_empty() {
            l
        } else {
            l.flag(
                "--extra-table",
                "source.extra_tables",
                self.extra_table.clone(),
            )
        };
        let l = set_str(
            l,
            "--source-id-column",
            "source.id_column",
            &self.source_id_column,
        );
        let l = set_str(
            l,
            "--source-bot-column",
            "source.bot_column",
            &self.source_bot_column,
        );
        let l = set_str(
            l,
            "--source-content-column",
            "source.content_column",
            &self.source_content_column,
        );
        let l = set_str(
            l,
            "--source-source-column",
            "source.source_column",
            &self.source_source_column,
        );
        let l = set_str(
            l,
            "--source-embedding-column",
            "source.embedding_column",
            &self.source_embedding_column,
        );
        let l = set_str(
            l,
            "--source-sslmode",
            "source.sslmode",
            &self.source_sslmode,
        );
        set_path(
            l,
            "--source-sslrootcert",
            "source.sslrootcert",
            &self.source_sslrootcert,
        )
    }
}

impl Overrides for EmbeddingArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = set_str(
            l,
            "--embedding-provider",
            "embedding.provider",
            &self.embedding_provider,
        );
        let l = set_str(
            l,
            "--embedding-model",
            "embedding.model",
            &self.embedding_model,
        );
        let l = set_path(
            l,
            "--embedding-model-dir",
            "embedding.model_dir",
            &self.embedding_model_dir,
        );
        match self.embedding_dimensions {
            Some(d) => l.flag("--embedding-dimensions", "embedding.dimensions", d as u64),
            None => l,
        }
    }
}

impl Overrides for AwsArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = set_str(l, "--aws-region", "aws.region", &self.aws_region);
        let l = set_str(
            l,
            "--aws-endpoint-url",
            "aws.endpoint_url",
            &self.aws_endpoint_url,
        );
        let l = set_str(l, "--aws-profile", "aws.profile", &self.aws_profile);
        set_str(l, "--stack", "aws.stack", &self.stack)
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
        let l = match (&self.registry_table, &self.registry_file) {
            (Some(_), _) => l.flag("--registry-table", "registry.kind", "dynamodb"),
            (None, Some(_)) => l.flag("--registry-file", "registry.kind", "file"),
            (None, None) => l,
        };
        let l = set_str(
            l,
            "--registry-table",
            "registry.table",
            &self.registry_table,
        );
        let l = set_path(l, "--registry-file", "registry.path", &self.registry_file);
        match self.scan_segments {
            Some(n) => l.flag("--scan-segments", "registry.scan_segments", u64::from(n)),
            None => l,
        }
    }
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
        let l = set_str(
            l,
            "--documents-bucket",
            "documents.bucket",
            &self.documents_bucket,
        );
        set_path(l, "--documents-dir", "documents.path", &self.documents_dir)
    }
}

/// What a bot's worker reads and writes, for `rebuild` and its ECS tasks' `embed-bot` alike:
/// the registry, the documents, the embedding, the target table, the journal and AWS.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Documents.
    #[command(flatten)]
    pub documents: DocumentsArgs,
    /// Embedding.
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
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

impl Overrides for WorkerArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = self.registry.apply(l);
        let l = self.documents.apply(l);
        let l = self.embedding.apply(l);
        let l = self.target.apply(l);
        let l = self.journal.apply(l);
        self.aws.apply(l)
    }
}

/// `--maintenance-work-mem`: checked as PostgreSQL reads it (a number with `B`, `kB`, `MB`,
/// `GB` or `TB`, kB without a unit, 1MB to 2TB), so a typo is a usage error before any work
/// rather than a failed index build after the data moved.
pub fn parse_pg_memory(s: &str) -> Result<String, String> {
    ragshift_store::index_build::parse_memory(s).map(|_| s.trim().to_owned())
}

/// `[index]` flags: memory and parallel workers for index builds (copy, replicate cutover,
/// rebuild, build-index).
#[derive(Debug, Clone, Args, Default)]
pub struct IndexArgs {
    /// Most maintenance_work_mem one index build may get; below it each build gets its
    /// estimate [config: index.max_memory, default: 1GB, or the server's setting if larger]
    #[arg(long, value_name = "SIZE", value_parser = parse_pg_memory)]
    pub index_max_memory: Option<String>,
    /// max_parallel_maintenance_workers for index builds [config: index.parallel_workers,
    /// default: the server's setting]
    #[arg(long, value_name = "N")]
    pub index_parallel_workers: Option<u32>,
    /// An exact maintenance_work_mem for every index build, instead of each build's estimate
    #[arg(long, value_name = "SIZE", value_parser = parse_pg_memory)]
    pub maintenance_work_mem: Option<String>,
}

impl Overrides for IndexArgs {
    fn apply(&self, l: Layers) -> Layers {
        let l = set_str(
            l,
            "--index-max-memory",
            "index.max_memory",
            &self.index_max_memory,
        );
        match self.index_parallel_workers {
            Some(n) => l.flag(
                "--index-parallel-workers",
                "index.parallel_workers",
                u64::from(n),
            ),
            None => l,
        }
    }
}

impl IndexArgs {
    /// The build engine's options from `[index]` and these flags, reports going to
    /// `observer`; a bad `[index] max_memory` is a configuration error naming the key.
    pub fn options(
        &self,
        config: &ragshift_config::IndexConfig,
        observer: Option<ragshift_store::index_build::IndexObserver>,
    ) -> Result<ragshift_store::index_build::IndexBuildOptions, crate::failure::Failure> {
        use ragshift_store::index_build::{parse_memory, BuildLimits, IndexBuildOptions};
        let max_memory = match &config.max_memory {
            Some(s) => {
                Some(parse_memory(s).map_err(|e| anyhow::anyhow!("[index] max_memory: {e}"))?)
            }
            None => None,
        };
        let memory = match &self.maintenance_work_mem {
            Some(s) => {
                Some(parse_memory(s).map_err(|e| anyhow::anyhow!("--maintenance-work-mem: {e}"))?)
            }
            None => None,
        };
        Ok(IndexBuildOptions {
            limits: BuildLimits {
                memory,
                max_memory,
                parallel_workers: config.parallel_workers,
            },
            observer,
        })
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

#[cfg(test)]
mod tests {
    use super::parse_pg_memory;

    #[test]
    fn memory_sizes_are_checked_as_postgresql_reads_them() {
        for ok in ["1GB", "512MB", "65536", "1.5GB", "2048 kB"] {
            assert_eq!(parse_pg_memory(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in ["1gb", "lots", "", "10kB", "3TB", "1 GiB"] {
            assert!(parse_pg_memory(bad).is_err(), "{bad}");
        }
    }
}
