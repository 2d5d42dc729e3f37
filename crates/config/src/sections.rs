//! One struct per configuration section. Field names are the keys users write in
//! `ragshift.toml`, in `RAGSHIFT_<SECTION>_<KEY>` variables and in `--<section>-<key>` flags.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::Sensitive;

/// The whole effective configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where bots are listed.
    pub registry: RegistryConfig,
    /// Where uploaded documents are stored.
    pub documents: DocumentsConfig,
    /// How chunks are embedded.
    pub embedding: EmbeddingConfig,
    /// How sources are fetched and chunks made.
    pub ingest: IngestConfig,
    /// The new cluster that receives the vectors.
    pub target: DatabaseConfig,
    /// The old cluster or a restored snapshot, for `copy`, `replicate` and `verify`.
    pub source: DatabaseConfig,
    /// Where per-bot jobs run.
    pub executor: ExecutorConfig,
    /// AWS settings shared by every AWS service ragshift calls.
    pub aws: AwsConfig,
    /// How failed calls to AWS, embedding providers and databases are retried.
    pub retry: RetryConfig,
    /// How runs are resumed.
    pub run: RunConfig,
    /// Memory and parallel workers for index builds.
    pub index: IndexConfig,
}

/// Kinds of bot registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// The platform's live DynamoDB table.
    Dynamodb,
    /// A DynamoDB-JSON export on disk (the embedded default).
    #[default]
    File,
}

/// `[registry]`: where the bots are listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// `dynamodb` or `file`.
    pub kind: RegistryKind,
    /// The DynamoDB table (the platform's conversation table).
    pub table: Option<String>,
    /// The export file for `kind = "file"`.
    pub path: PathBuf,
    /// Parallel scan segments for DynamoDB.
    pub scan_segments: u32,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            kind: RegistryKind::File,
            table: None,
            path: PathBuf::from("bots.json"),
            scan_segments: 4,
        }
    }
}

/// Kinds of document store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentsKind {
    /// The platform's S3 bucket.
    S3,
    /// A local directory with the same `{user}/{bot}/documents/{file}` layout.
    #[default]
    Dir,
}

/// `[documents]`: where uploaded files live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// `s3` or `dir`.
    pub kind: DocumentsKind,
    /// The S3 bucket for `kind = "s3"`.
    pub bucket: Option<String>,
    /// The directory for `kind = "dir"`.
    pub path: PathBuf,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        Self {
            kind: DocumentsKind::Dir,
            bucket: None,
            path: PathBuf::from("./documents"),
        }
    }
}

/// Embedding providers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// The bundled sentence-transformers model, on CPU (the embedded default).
    #[default]
    Local,
    /// Amazon Bedrock `InvokeModel` (Cohere v3, Titan v2).
    Bedrock,
    /// Any OpenAI-compatible `/v1/embeddings` endpoint.
    Openai,
}

impl EmbeddingProvider {
    /// The provider's name as configured and reported (`local`, `bedrock`, `openai`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Bedrock => "bedrock",
            Self::Openai => "openai",
        }
    }
}

/// `[embedding]`: which model makes the vectors and how hard to push it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    /// `local`, `bedrock` or `openai`.
    pub provider: EmbeddingProvider,
    /// Model id; each provider has a default.
    pub model: Option<String>,
    /// Folder of a sentence-transformers model for `provider = "local"`.
    pub model_dir: Option<PathBuf>,
    /// Output dimension; defaults to the model's.
    pub dimensions: Option<usize>,
    /// Texts per request; defaults to the provider's maximum.
    pub batch_size: Option<usize>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Request rate limit.
    pub requests_per_minute: Option<u32>,
    /// Token rate limit (tokens estimated from characters when the provider doesn't say).
    pub tokens_per_minute: Option<u32>,
    /// The window `requests_per_minute` and `tokens_per_minute` apply to, in seconds: 60, a
    /// minute, as providers state their quotas. Tests and benchmarks shorten it to measure
    /// "N requests per window" without waiting minutes.
    pub budget_window_secs: u64,
    /// Attempts per request before giving up.
    pub max_attempts: u32,
    /// Cohere's `truncate`: `NONE`, `START` or `END`.
    pub truncate: String,
    /// Titan's `normalize`.
    pub normalize: bool,
    /// Base URL of an OpenAI-compatible server.
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key (the key itself never goes in a
    /// file).
    pub api_key_env: String,
    /// Reuse vectors of identical texts across runs.
    pub cache: bool,
    /// Price per 1,000 tokens in USD, overriding the built-in table.
    pub price_per_1k_tokens: Option<f64>,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            provider: EmbeddingProvider::Local,
            model: None,
            model_dir: None,
            dimensions: None,
            batch_size: None,
            concurrency: 4,
            requests_per_minute: None,
            tokens_per_minute: None,
            budget_window_secs: 60,
            max_attempts: 6,
            truncate: "END".to_owned(),
            normalize: true,
            base_url: None,
            api_key_env: "OPENAI_API_KEY".to_owned(),
            cache: true,
            price_per_1k_tokens: None,
        }
    }
}

/// `[ingest]`: fetching and chunking rules that aren't per bot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Hosts, IPs or CIDRs that may be fetched even though they are loopback/private.
    #[serde(deserialize_with = "string_or_list")]
    pub allow_hosts: Vec<String>,
    /// Per-request time-out in seconds.
    pub timeout_secs: u64,
    /// Largest document accepted from any source (a URL's body, an S3 object, a local file), in
    /// bytes; larger ones are refused before they are read.
    pub max_bytes: u64,
    /// Redirects followed per URL.
    pub max_redirects: u32,
    /// Pages taken from a bot's sitemaps at most.
    pub sitemap_max_pages: usize,
    /// Let a bot succeed when some of its sources failed.
    pub allow_partial: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            timeout_secs: 30,
            max_bytes: 50 * 1024 * 1024,
            max_redirects: 5,
            sitemap_max_pages: 1000,
            allow_partial: false,
        }
    }
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, without certificate checks.
    Prefer,
    /// TLS, without certificate checks.
    Require,
    /// TLS, certificate chain checked against the CA.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// Vector index types pgvector offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorIndexKind {
    /// Graph index: better recall/speed trade-off, slower to build.
    #[default]
    Hnsw,
    /// List index: fast to build; the platform's own choice.
    Ivfflat,
}

/// `[target]` and `[source]`: a PostgreSQL database and the chunk table in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db` (or libpq key/value form).
    pub url: Option<Sensitive>,
    /// A Secrets Manager secret holding `host`, `port`, `username`, `password`, `dbname`.
    pub secret_arn: Option<String>,
    /// Overrides the URL's or the secret's `sslmode`.
    pub sslmode: Option<SslMode>,
    /// CA certificate file for `verify-ca`/`verify-full`.
    pub sslrootcert: Option<PathBuf>,
    /// Whose table this is: its table and column names follow, unless set one by one.
    pub layout: LayoutPreset,
    /// Schema of the chunk table.
    pub schema: String,
    /// The chunk table.
    pub table: String,
    /// Column holding the chunk id.
    pub id_column: String,
    /// Column holding the bot id.
    pub bot_column: String,
    /// Column holding the chunk text.
    pub content_column: String,
    /// Column holding the chunk's source.
    pub source_column: String,
    /// Column holding the vector.
    pub embedding_column: String,
    /// Tables moved along with the chunk table though it has no foreign key to them (`table` or
    /// `schema.table`); the tables it does refer to always come, and so do theirs. A list, or
    /// names separated by commas.
    #[serde(deserialize_with = "string_or_list")]
    pub extra_tables: Vec<String>,
    /// Vector index built after loading.
    pub index: VectorIndexKind,
    /// ivfflat `lists`; chosen from the row count when unset.
    pub index_lists: Option<u32>,
    /// HNSW `m`.
    pub hnsw_m: Option<u32>,
    /// HNSW `ef_construction`.
    pub hnsw_ef_construction: Option<u32>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret_arn: None,
            sslmode: None,
            sslrootcert: None,
            layout: LayoutPreset::BedrockChat,
            schema: "public".to_owned(),
            table: "items".to_owned(),
            id_column: "id".to_owned(),
            bot_column: "botid".to_owned(),
            content_column: "content".to_owned(),
            source_column: "source".to_owned(),
            embedding_column: "embedding".to_owned(),
            extra_tables: Vec::new(),
            index: VectorIndexKind::Hnsw,
            index_lists: None,
            hnsw_m: None,
            hnsw_ef_construction: None,
        }
    }
}

impl DatabaseConfig {
    /// Whether a connection is configured at all.
    pub fn is_configured(&self) -> bool {
        self.url.is_some() || self.secret_arn.is_some()
    }
}

/// The chunk tables ragshift knows by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutPreset {
    /// Bedrock Chat's `items` (id, botid, content, source, embedding): the defaults.
    #[default]
    BedrockChat,
    /// langchain-postgres `PGVector` (v1): `langchain_pg_embedding`, keyed by `collection_id`,
    /// its `langchain_pg_collection` moved along by foreign key.
    Langchain,
    /// langchain-postgres `PGVectorStore` (v2): a table the user named (`--table`), keyed by
    /// `langchain_id`, without a collection column (one key, split by id ranges).
    #[serde(rename = "langchain-v2")]
    LangchainV2,
    /// llama-index-vector-stores-postgres `PGVectorStore`: `data_<name>` for the store's
    /// `table_name` (`--table`), a bigserial `id`, no collection column.
    Llamaindex,
    /// Every table and column name given one by one.
    Custom,
}

impl LayoutPreset {
    /// The `[target]`/`[source]` keys this layout sets where nobody set them.
    pub fn keys(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::BedrockChat | Self::Custom => &[],
            Self::Langchain => &[
                ("table", "langchain_pg_embedding"),
                ("id_column", "id"),
                ("bot_column", "collection_id"),
                ("content_column", "document"),
                ("source_column", "cmetadata"),
                ("embedding_column", "embedding"),
            ],
            Self::LangchainV2 => &[
                ("id_column", "langchain_id"),
                ("bot_column", ""),
                ("content_column", "content"),
                ("source_column", "langchain_metadata"),
                ("embedding_column", "embedding"),
            ],
            Self::Llamaindex => &[
                ("id_column", "id"),
                ("bot_column", ""),
                ("content_column", "text"),
                ("source_column", "metadata_"),
                ("embedding_column", "embedding"),
            ],
        }
    }

    /// Whether the table has no fixed name, so the user must give it (`--table`).
    pub fn needs_table(self) -> bool {
        matches!(self, Self::LangchainV2 | Self::Llamaindex)
    }

    /// The table that holds the chunks when the user said `table`: LlamaIndex stores its
    /// `table_name` in `data_<table_name>`, so `docs` means `data_docs` (a name already
    /// starting with `data_` is taken as the table itself, as `\dt` shows it).
    pub fn table_name(self, table: &str) -> String {
        if self == Self::Llamaindex && !table.starts_with("data_") {
            format!("data_{table}")
        } else {
            table.to_owned()
        }
    }
}

/// Where per-bot jobs run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// In-process workers.
    #[default]
    Local,
    /// One ECS task per bot.
    Ecs,
}

/// `[executor]`: where and how many per-bot jobs run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// `local` or `ecs`.
    pub kind: ExecutorKind,
    /// Jobs at once.
    pub concurrency: usize,
    /// ECS cluster.
    pub cluster: Option<String>,
    /// ECS task definition (family, family:revision or ARN).
    pub task_definition: Option<String>,
    /// Container to override in the task definition.
    pub container: String,
    /// Subnets for awsvpc networking.
    #[serde(deserialize_with = "string_or_list")]
    pub subnets: Vec<String>,
    /// Security groups for awsvpc networking.
    #[serde(deserialize_with = "string_or_list")]
    pub security_groups: Vec<String>,
    /// `assignPublicIp` of the tasks.
    pub assign_public_ip: bool,
    /// Command that starts the worker in the task image; `--run-id`, `--exec-id` and the bot's
    /// keys are appended. The default fits ragshift's worker image, whose ENTRYPOINT is
    /// `ragshift`; for an image without that entrypoint use `["ragshift", "embed-bot"]`.
    #[serde(deserialize_with = "string_or_list")]
    pub command_prefix: Vec<String>,
    /// Seconds a bot may run before it is failed.
    pub timeout_secs: u64,
    /// Capacity provider strategy used instead of the FARGATE launch type, as
    /// `NAME[:WEIGHT[:BASE]]` items, e.g. `["FARGATE_SPOT:3", "FARGATE:1"]`; empty: FARGATE.
    #[serde(deserialize_with = "string_or_list")]
    pub capacity_providers: Vec<String>,
    /// Milliseconds between two rounds of DescribeTasks while ECS tasks run.
    pub poll_interval_ms: u64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            kind: ExecutorKind::Local,
            concurrency: 4,
            cluster: None,
            task_definition: None,
            container: "Container".to_owned(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            command_prefix: vec!["embed-bot".to_owned()],
            timeout_secs: 3600,
            capacity_providers: Vec::new(),
            poll_interval_ms: 5000,
        }
    }
}

/// `[aws]`: settings every AWS client shares.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region; else the standard AWS chain decides.
    pub region: Option<String>,
    /// Endpoint used for every AWS service (a local AWS-API server in tests).
    pub endpoint_url: Option<String>,
    /// Named profile of the shared AWS config files.
    pub profile: Option<String>,
    /// CloudFormation stack whose outputs fill in names the user didn't set.
    pub stack: Option<String>,
}

/// `[retry]`: the one retry policy for AWS calls (DynamoDB, ECS, CloudFormation), embedding
/// requests and database work: exponential backoff with jitter, for at most a total time budget
/// long enough to ride out a database failover or a throttling storm.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Seconds one call keeps being retried, from its first attempt; no retry starts after.
    pub budget_secs: u64,
    /// Milliseconds of the first wait (before jitter); it doubles per retry.
    pub initial_ms: u64,
    /// Longest wait between two attempts, in seconds (a server's `Retry-After` may ask for
    /// more and is honoured).
    pub max_delay_secs: u64,
    /// Attempts per call at most, first included; none: the budget alone decides.
    /// `[embedding] max_attempts` caps embedding requests.
    pub max_attempts: Option<u32>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            budget_secs: 300,
            initial_ms: 200,
            max_delay_secs: 30,
            max_attempts: None,
        }
    }
}

/// `[run]`: where runs are recorded, and when an unfinished run is picked up again on its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// How old an unfinished run with the same selection and settings may be and still be
    /// resumed without `--resume`: `90m`, `24h`, `7d`; `0` never resumes on its own. An old
    /// run's bots may have changed since, so it is safer to start again than to trust it.
    #[serde(with = "human_duration")]
    pub resume_window: std::time::Duration,
    /// The schema in the TARGET database holding the run journal (`runs`, `units`) and the
    /// embedding cache, for a database where `ragshift` is taken or another name is the rule.
    /// Any PostgreSQL name (quoted, so case and characters are kept); every command touching
    /// one target must use the same one, or it won't see the other runs.
    #[serde(deserialize_with = "schema_name")]
    pub journal_schema: String,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            resume_window: std::time::Duration::from_secs(24 * 3600),
            journal_schema: DEFAULT_JOURNAL_SCHEMA.to_owned(),
        }
    }
}

/// `[index]`: what index builds (copy, replicate cutover, rebuild, build-index) may use on the
/// target server. Each build gets `maintenance_work_mem` from its own estimate (the HNSW graph,
/// IVFFlat's k-means and sort), never less than the server's setting and never more than
/// `max_memory`; see the README's "Index builds".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// The most `maintenance_work_mem` one build may be given, a PostgreSQL size (`4GB`);
    /// unset: 1 GB, or the server's `maintenance_work_mem` if that is larger. Raise it when a
    /// build warns that its graph won't fit and the server has the memory.
    pub max_memory: Option<String>,
    /// `max_parallel_maintenance_workers` for a build; unset: the server's setting. PostgreSQL
    /// also caps it by `max_parallel_workers` and `max_worker_processes`.
    pub parallel_workers: Option<u32>,
}

/// The journal's schema when `[run] journal_schema` is not set.
pub const DEFAULT_JOURNAL_SCHEMA: &str = "ragshift";

/// Checks a schema name PostgreSQL can hold as given: not empty, no NUL, at most 63 bytes
/// (a longer name would be cut silently, and the journal then looked for under the full one).
pub fn check_schema_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the schema name is empty".to_owned());
    }
    if name.contains('\0') {
        return Err("the schema name holds a NUL byte".to_owned());
    }
    if name.len() > 63 {
        return Err(format!(
            "the schema name {name:?} is {} bytes long; PostgreSQL keeps at most 63",
            name.len()
        ));
    }
    Ok(())
}

fn schema_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    check_schema_name(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}

/// Reads a duration people write: `0`, or a whole number with `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration: use e.g. 90m, 24h or 7d");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "" if n == 0 => 0,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    n.checked_mul(per)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

/// Durations as the text [`parse_duration`] reads, so `config show` prints what users write.
mod human_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let secs = d.as_secs();
        let text = match secs {
            0 => "0".to_owned(),
            _ if secs.is_multiple_of(86400) => format!("{}d", secs / 86400),
            _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
            _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
            _ => format!("{secs}s"),
        };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(0) => Ok(Duration::ZERO),
            Raw::Secs(n) => Err(serde::de::Error::custom(format!(
                "{n} has no unit: write e.g. \"{n}s\", \"{n}m\" or \"{n}h\""
            ))),
            Raw::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Accepts `["a", "b"]` as well as `"a,b"`, so lists can come from environment variables.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Either::Many(v) => v,
    })
}
