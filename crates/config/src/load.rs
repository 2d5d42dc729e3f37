//! Resolving the layers into one [`Config`], remembering where each value came from.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, `RAGSHIFT_<SECTION>_<KEY>`
//! environment variables, command-line flags. Values discovered elsewhere (a CloudFormation
//! stack's outputs) only fill keys that no layer set.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::{mask_url, Config};

/// Prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "RAGSHIFT_";

/// Section names, which are also the first word after [`ENV_PREFIX`].
pub const SECTIONS: &[&str] = &[
    "registry",
    "documents",
    "embedding",
    "ingest",
    "target",
    "source",
    "executor",
    "aws",
    "retry",
    "run",
    "index",
];

/// The configuration file read when `--config` is not given and it exists.
pub const DEFAULT_FILE: &str = "ragshift.toml";

/// Why the configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that isn't there.
    #[error("configuration file {path} does not exist")]
    MissingFile {
        /// The path given.
        path: PathBuf,
    },
    /// A key is unknown, has the wrong type, or the file isn't valid TOML.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        // One line per problem, each naming the key and its origin.
        let lines: Vec<String> = e.into_iter().map(describe).collect();
        Self::Invalid(lines.join("; "))
    }
}

fn describe(e: figment::Error) -> String {
    let key = if e.path.is_empty() {
        None
    } else {
        Some(
            e.path
                .iter()
                .map(|k| masked_key(k))
                .collect::<Vec<_>>()
                .join("."),
        )
    };
    let origin = e.metadata.as_ref().map(|m| {
        m.source
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| m.name.to_string())
    });
    let mut out = redacted(e.kind).to_string();
    if let Some(key) = key {
        out.push_str(&format!(" for key `{key}`"));
    }
    if let Some(origin) = origin {
        out.push_str(&format!(" in {origin}"));
    }
    out
}

/// The error with anything that may be a secret taken out: a value that looks like a connection
/// string is masked, and a TOML syntax error's copy of the offending line is hidden when that
/// line could hold a password (the line and column numbers stay).
fn redacted(kind: Kind) -> Kind {
    let mask = |s: String| if may_be_secret(&s) { mask_url(&s) } else { s };
    let mask_actual = |a: Actual| match a {
        Actual::Str(s) => Actual::Str(mask(s)),
        Actual::Other(s) => Actual::Other(mask(s)),
        other => other,
    };
    match kind {
        Kind::Message(m) => Kind::Message(hide_toml_snippet(&m)),
        Kind::InvalidType(a, exp) => Kind::InvalidType(mask_actual(a), exp),
        Kind::InvalidValue(a, exp) => Kind::InvalidValue(mask_actual(a), exp),
        Kind::Unsupported(a) => Kind::Unsupported(mask_actual(a)),
        Kind::UnsupportedKey(a, exp) => Kind::UnsupportedKey(mask_actual(a), exp),
        Kind::UnknownVariant(v, expected) => Kind::UnknownVariant(mask(v), expected),
        Kind::UnknownField(f, expected) => Kind::UnknownField(masked_key(&f), expected),
        other => other,
    }
}

/// A key as shown in an error: a key is only a secret when someone quoted a connection string
/// as one (`"postgres://u:pw@h/db" = 1`).
fn masked_key(k: &str) -> String {
    if k.contains("://") || k.contains('@') {
        mask_url(k)
    } else {
        k.to_owned()
    }
}

/// Whether a value shown in an error could hold a password.
fn may_be_secret(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    s.contains("://")
        || s.contains('@')
        || ["pass", "secret", "token", "key"]
            .iter()
            .any(|w| lower.contains(w))
}

/// Replaces the source line that the TOML parser quotes (`12 | url = "postgres://..."`) by a
/// note when it holds a string or anything else that could be a secret; its caret line goes
/// with it.
fn hide_toml_snippet(message: &str) -> String {
    let mut out = Vec::new();
    let mut hid_previous = false;
    for line in message.lines() {
        let trimmed = line.trim_start();
        let digits = trimmed.len()
            - trimmed
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let after_number = &trimmed[digits..];
        if digits > 0 && after_number.starts_with(" |") {
            let content = after_number.trim_start_matches(" |");
            if content.contains(['"', '\'']) || may_be_secret(content) {
                out.push(format!(
                    "{} | (line not shown: it may hold a secret)",
                    &trimmed[..digits]
                ));
                hid_previous = true;
                continue;
            }
        } else if hid_previous && digits == 0 && trimmed.starts_with('|') {
            // The caret line under a hidden line.
            hid_previous = false;
            continue;
        }
        hid_previous = false;
        out.push(line.to_owned());
    }
    out.join("\n")
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nobody set it.
    Default,
    /// A layer named by its source: `ragshift.toml`, `RAGSHIFT_TARGET_URL`, `--target-url`,
    /// `stack BedrockChatStack`.
    Layer(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Layer(s) => f.write_str(s),
        }
    }
}

/// One value set by a named layer (an environment variable, a flag, a stack output).
struct Single {
    origin: String,
    path: String,
    value: Value,
}

impl Provider for Single {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let nested = figment::util::nest(&self.path, self.value.clone());
        let dict = nested
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("bad key {}", self.path)))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// The layers to resolve, built up by the binary and by tests.
#[derive(Default)]
pub struct Layers {
    file: Option<PathBuf>,
    file_required: bool,
    env: Vec<(String, String)>,
    flags: Vec<(String, String, Value)>,
    broad_flags: Vec<(String, String, Value)>,
    fills: Vec<(String, String, Value)>,
}

impl Layers {
    /// Starts with defaults only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `path` (must exist), or `./ragshift.toml` when `path` is `None` and that exists.
    pub fn file(mut self, path: Option<&Path>) -> Self {
        match path {
            Some(p) => {
                self.file = Some(p.to_path_buf());
                self.file_required = true;
            }
            None => {
                let p = PathBuf::from(DEFAULT_FILE);
                if p.exists() {
                    self.file = Some(p);
                }
            }
        }
        self
    }

    /// Takes configuration variables from the process environment.
    pub fn process_env(self) -> Self {
        self.env(std::env::vars())
    }

    /// Takes configuration variables from `vars`; only `RAGSHIFT_<SECTION>_...` names are
    /// considered, so `RAGSHIFT_LOG` and friends are not configuration keys.
    pub fn env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            let Some((section, key)) = lower.split_once('_') else {
                continue;
            };
            if SECTIONS.contains(&section) && !key.is_empty() {
                self.env.push((name, value));
            }
        }
        self
    }

    /// Sets `path` (`section.key`) from a flag; flags win over everything else.
    pub fn flag(mut self, flag: &str, path: &str, value: impl Into<Value>) -> Self {
        self.flags
            .push((flag.to_owned(), path.to_owned(), value.into()));
        self
    }

    /// Sets `path` from a flag that speaks for both sides (`--layout`, `--table`): it beats the
    /// file and the environment, and loses to a flag naming one side (`--source-table`), in
    /// whatever order the flags were given.
    pub fn broad_flag(mut self, flag: &str, path: &str, value: impl Into<Value>) -> Self {
        self.broad_flags
            .push((flag.to_owned(), path.to_owned(), value.into()));
        self
    }

    /// Fills `path` only if no other layer set it (values discovered from a stack).
    pub fn fill(mut self, origin: &str, path: &str, value: impl Into<Value>) -> Self {
        self.fills
            .push((origin.to_owned(), path.to_owned(), value.into()));
        self
    }

    fn figment(&self) -> Result<Figment, ConfigError> {
        let mut fig = Figment::new();
        if let Some(file) = &self.file {
            if !file.exists() {
                if self.file_required {
                    return Err(ConfigError::MissingFile { path: file.clone() });
                }
            } else {
                fig = fig.merge(Toml::file_exact(file));
            }
        }
        for (name, raw) in &self.env {
            let lower = name[ENV_PREFIX.len()..].to_ascii_lowercase();
            let path = lower.replacen('_', ".", 1);
            // Typed like TOML where it parses (numbers, booleans, arrays), else a string.
            let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.clone()));
            fig = fig.merge(Single {
                origin: format!("environment variable {name}"),
                path,
                value: string_if_scalar_text(raw, value),
            });
        }
        for (flag, path, value) in self.broad_flags.iter().chain(&self.flags) {
            fig = fig.merge(Single {
                origin: format!("flag {flag}"),
                path: path.clone(),
                value: value.clone(),
            });
        }
        for (origin, path, value) in &self.fills {
            fig = fig.join(Single {
                origin: origin.clone(),
                path: path.clone(),
                value: value.clone(),
            });
        }
        Ok(fig)
    }

    /// Resolves every layer into the effective configuration.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let fig = self.figment()?;
        let config: Config = fig.extract()?;
        Ok(Loaded { config, fig })
    }
}

/// Keeps text like `0123` or `1e5` a string: only plain integers, floats, booleans and arrays
/// are typed; everything else stays as the user wrote it.
fn string_if_scalar_text(raw: &str, parsed: Value) -> Value {
    match &parsed {
        Value::Num(..) | Value::Bool(..) | Value::Array(..) | Value::String(..) => {
            if raw.starts_with('0') && raw.len() > 1 && !raw.starts_with("0.") {
                Value::from(raw.to_owned())
            } else {
                parsed
            }
        }
        _ => Value::from(raw.to_owned()),
    }
}

/// The resolved configuration, plus the means to say where each value came from.
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    fig: Figment,
}

/// One effective setting as `config show` lists it: `section.key`, its value (secrets masked)
/// and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// `section.key`.
    pub path: String,
    /// The value, as TOML.
    pub value: toml::Value,
    /// The layer it came from, or `default`.
    pub origin: String,
}

impl Loaded {
    /// Every effective setting in section order with its origin, so "why is it using that
    /// table?" has an answer. Serialising masks every secret (see `Sensitive`).
    pub fn settings(&self) -> Result<Vec<Setting>, toml::ser::Error> {
        let value = toml::Value::try_from(&self.config)?;
        let mut settings = Vec::new();
        if let toml::Value::Table(sections) = &value {
            for (section, body) in sections {
                if let toml::Value::Table(keys) = body {
                    for (key, v) in keys {
                        let path = format!("{section}.{key}");
                        settings.push(Setting {
                            origin: self.origin(&path).to_string(),
                            path,
                            value: v.clone(),
                        });
                    }
                }
            }
        }
        Ok(settings)
    }

    /// Where the value at `path` (`section.key`) came from.
    pub fn origin(&self, path: &str) -> Origin {
        match self.fig.find_metadata(path) {
            None => Origin::Default,
            Some(m) => Origin::Layer(
                m.source
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| m.name.to_string()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RegistryKind, RetryConfig, SslMode};
    use std::io::Write;

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    /// The error loading `layers` gives, as the user reads it.
    fn load_error(layers: Layers) -> String {
        layers.load().err().unwrap().to_string()
    }

    /// The error loading the configuration file `f` gives.
    fn file_error(f: &tempfile::NamedTempFile) -> String {
        load_error(Layers::new().file(Some(f.path())))
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_any_layer() {
        let loaded = Layers::new().load().unwrap();
        assert_eq!(loaded.config.target.table, "items");
        assert_eq!(loaded.config.registry.kind, RegistryKind::File);
        assert_eq!(loaded.origin("target.table"), Origin::Default);
    }

    #[test]
    fn flags_beat_env_which_beats_file_which_beats_defaults() {
        let f = file(
            "[target]\ntable = \"from_file\"\nschema = \"file_schema\"\nbot_column = \"bot\"\n\
             [embedding]\ndimensions = 768\n",
        );
        let loaded = Layers::new()
            .file(Some(f.path()))
            .env(vars(&[
                ("RAGSHIFT_TARGET_TABLE", "from_env"),
                ("RAGSHIFT_TARGET_SCHEMA", "env_schema"),
                ("RAGSHIFT_EMBEDDING_DIMENSIONS", "1024"),
                ("RAGSHIFT_LOG", "debug"),
                ("UNRELATED", "x"),
            ]))
            .flag("--target-table", "target.table", "from_flag")
            .load()
            .unwrap();
        let c = &loaded.config;
        assert_eq!(c.target.table, "from_flag");
        assert_eq!(c.target.schema, "env_schema");
        assert_eq!(c.target.bot_column, "bot");
        assert_eq!(c.target.id_column, "id");
        assert_eq!(c.embedding.dimensions, Some(1024));
        assert_eq!(
            loaded.origin("target.table"),
            Origin::Layer("flag --target-table".into())
        );
        assert_eq!(
            loaded.origin("target.schema"),
            Origin::Layer("environment variable RAGSHIFT_TARGET_SCHEMA".into())
        );
        assert!(loaded
            .origin("target.bot_column")
            .to_string()
            .ends_with(".toml"));
        assert_eq!(loaded.origin("target.id_column"), Origin::Default);
    }

    #[test]
    fn a_flag_for_one_side_beats_a_flag_for_both_in_any_order() {
        let f = file("[source]\ntable = \"from_file\"\n");
        let loaded = Layers::new()
            .file(Some(f.path()))
            .flag("--source-table", "source.table", "one_side")
            .broad_flag("--table", "source.table", "both")
            .broad_flag("--table", "target.table", "both")
            .broad_flag("--layout", "target.layout", "llamaindex")
            .load()
            .unwrap();
        let c = &loaded.config;
        assert_eq!(c.source.table, "one_side");
        assert_eq!(c.target.table, "both");
        assert_eq!(c.target.layout, crate::LayoutPreset::Llamaindex);
        assert_eq!(
            loaded.origin("target.table"),
            Origin::Layer("flag --table".into())
        );
    }

    #[test]
    fn extra_tables_come_as_a_list_or_names_separated_by_commas() {
        let f = file("[source]\nextra_tables = [\"docstore\", \"kv.index_store\"]\n");
        let loaded = Layers::new().file(Some(f.path())).load().unwrap();
        assert_eq!(
            loaded.config.source.extra_tables,
            ["docstore", "kv.index_store"]
        );
        let loaded = Layers::new()
            .env(vars(&[(
                "RAGSHIFT_SOURCE_EXTRA_TABLES",
                "docstore, kv.index_store,",
            )]))
            .load()
            .unwrap();
        assert_eq!(
            loaded.config.source.extra_tables,
            ["docstore", "kv.index_store"]
        );
        let loaded = Layers::new()
            .flag("--extra-table", "source.extra_tables", vec!["a".to_owned()])
            .load()
            .unwrap();
        assert_eq!(loaded.config.source.extra_tables, ["a"]);
        assert!(Layers::new()
            .load()
            .unwrap()
            .config
            .source
            .extra_tables
            .is_empty());
    }

    #[test]
    fn llamaindex_tables_are_data_prefixed_once() {
        use crate::LayoutPreset;
        assert_eq!(LayoutPreset::Llamaindex.table_name("docs"), "data_docs");
        assert_eq!(
            LayoutPreset::Llamaindex.table_name("data_docs"),
            "data_docs"
        );
        assert_eq!(LayoutPreset::LangchainV2.table_name("docs"), "docs");
        assert!(LayoutPreset::LangchainV2.needs_table() && !LayoutPreset::Langchain.needs_table());
        let loaded = Layers::new()
            .broad_flag("--layout", "source.layout", "langchain-v2")
            .load()
            .unwrap();
        assert_eq!(loaded.config.source.layout, LayoutPreset::LangchainV2);
    }

    #[test]
    fn env_keys_with_underscores_and_lists() {
        let loaded = Layers::new()
            .env(vars(&[
                ("RAGSHIFT_TARGET_SECRET_ARN", "arn:aws:secretsmanager:x"),
                ("RAGSHIFT_EXECUTOR_SUBNETS", "subnet-a, subnet-b"),
                ("RAGSHIFT_EXECUTOR_SECURITY_GROUPS", "[\"sg-1\"]"),
                ("RAGSHIFT_TARGET_SSLMODE", "verify-full"),
                ("RAGSHIFT_REGISTRY_TABLE", "0123"),
                ("RAGSHIFT_AWS_REGION", "eu-west-1"),
                ("RAGSHIFT_RETRY_BUDGET_SECS", "900"),
                ("RAGSHIFT_RETRY_MAX_DELAY_SECS", "45"),
            ]))
            .load()
            .unwrap();
        let c = &loaded.config;
        assert_eq!(
            c.target.secret_arn.as_deref(),
            Some("arn:aws:secretsmanager:x")
        );
        assert_eq!(c.executor.subnets, vec!["subnet-a", "subnet-b"]);
        assert_eq!(c.executor.security_groups, vec!["sg-1"]);
        assert_eq!(c.target.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(c.registry.table.as_deref(), Some("0123"));
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!((c.retry.budget_secs, c.retry.max_delay_secs), (900, 45));
        assert_eq!(c.retry.initial_ms, RetryConfig::default().initial_ms);
    }

    #[test]
    fn resume_window_from_file_env_and_flag_and_bad_values_named() {
        let day = std::time::Duration::from_secs(86400);
        assert_eq!(Layers::new().load().unwrap().config.run.resume_window, day);
        let f = file("[run]\nresume_window = \"90m\"\n");
        let from_file = Layers::new().file(Some(f.path())).load().unwrap();
        assert_eq!(from_file.config.run.resume_window.as_secs(), 90 * 60);
        let from_env = Layers::new()
            .file(Some(f.path()))
            .env(vars(&[("RAGSHIFT_RUN_RESUME_WINDOW", "7d")]))
            .load()
            .unwrap();
        assert_eq!(from_env.config.run.resume_window, 7 * day);
        let never = Layers::new()
            .env(vars(&[("RAGSHIFT_RUN_RESUME_WINDOW", "0")]))
            .load()
            .unwrap();
        assert!(never.config.run.resume_window.is_zero());
        let flag = Layers::new()
            .file(Some(f.path()))
            .flag("--resume-window", "run.resume_window", "30s")
            .load()
            .unwrap();
        assert_eq!(flag.config.run.resume_window.as_secs(), 30);
        for bad in ["\"soon\"", "12", "\"5y\""] {
            let f = file(&format!("[run]\nresume_window = {bad}\n"));
            let err = file_error(&f);
            assert!(err.contains("resume_window"), "{bad}: {err}");
        }
    }

    #[test]
    fn journal_schema_from_file_env_and_flag_and_bad_names_named() {
        assert_eq!(
            Layers::new().load().unwrap().config.run.journal_schema,
            "ragshift"
        );
        let f = file("[run]\njournal_schema = \"from_file\"\n");
        let from_file = Layers::new().file(Some(f.path())).load().unwrap();
        assert_eq!(from_file.config.run.journal_schema, "from_file");
        let from_env = Layers::new()
            .file(Some(f.path()))
            .env(vars(&[("RAGSHIFT_RUN_JOURNAL_SCHEMA", "Journal-1")]))
            .load()
            .unwrap();
        assert_eq!(from_env.config.run.journal_schema, "Journal-1");
        let flag = Layers::new()
            .file(Some(f.path()))
            .env(vars(&[("RAGSHIFT_RUN_JOURNAL_SCHEMA", "Journal-1")]))
            .flag("--journal-schema", "run.journal_schema", "from_flag")
            .load()
            .unwrap();
        assert_eq!(flag.config.run.journal_schema, "from_flag");
        let long = "j".repeat(64);
        for bad in ["\"\"".to_owned(), format!("\"{long}\"")] {
            let f = file(&format!("[run]\njournal_schema = {bad}\n"));
            let err = file_error(&f);
            assert!(err.contains("journal_schema"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_the_file() {
        let f = file("[target]\ntabel = \"items\"\n");
        let err = file_error(&f);
        assert!(err.contains("tabel"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");

        let f = file("[embedding]\ndimensions = \"many\"\n");
        let err = file_error(&f);
        assert!(err.contains("embedding.dimensions"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");

        let f = file("[nonsense]\nx = 1\n");
        let err = file_error(&f);
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err = load_error(Layers::new().env(vars(&[("RAGSHIFT_EXECUTOR_CONCURRENCY", "lots")])));
        assert!(err.contains("executor.concurrency"), "{err}");
        assert!(err.contains("RAGSHIFT_EXECUTOR_CONCURRENCY"), "{err}");

        let err = load_error(Layers::new().env(vars(&[("RAGSHIFT_TARGET_TABEL", "x")])));
        assert!(err.contains("tabel"), "{err}");
        assert!(err.contains("RAGSHIFT_TARGET_TABEL"), "{err}");
    }

    #[test]
    fn invalid_toml_and_missing_file_are_errors() {
        let f = file("[target\n");
        let err = file_error(&f);
        assert!(err.contains(&f.path().display().to_string()), "{err}");

        let err = Layers::new()
            .file(Some(Path::new("/nonexistent/ragshift.toml")))
            .load()
            .err()
            .unwrap();
        assert!(matches!(err, ConfigError::MissingFile { .. }));
    }

    #[test]
    fn syntax_errors_and_bad_values_never_echo_a_password() {
        for toml in [
            "[target]\nurl = \"postgres://app:Hunter2pw@h/db\nschema = \"x\"\n",
            "[target]\nurl = postgres://app:Hunter2pw@h/db\n",
            "[target]\nurl = 'postgres://app:Hunter2pw@h/db' x\n",
            "[target]\nsslmode = \"postgres://app:Hunter2pw@h/db\"\n",
            "[target]\ntable = [\"postgres://app:Hunter2pw@h/db\"]\n",
            "[target]\n\"postgres://app:Hunter2pw@h/db\" = 1\n",
        ] {
            let f = file(toml);
            let err = file_error(&f);
            assert!(!err.contains("Hunter2pw"), "{toml}: {err}");
            assert!(err.contains(&f.path().display().to_string()), "{err}");
        }
        // A line without anything secret is still quoted, to help find the mistake.
        let f = file("[target\n");
        let err = file_error(&f);
        assert!(err.contains("1 | [target"), "{err}");
        let f = file("[target]\nurl = \"postgres://app:Hunter2pw@h/db\n");
        let err = file_error(&f);
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("not shown"), "{err}");
    }

    #[test]
    fn fills_only_apply_where_nothing_else_set_a_value() {
        let loaded = Layers::new()
            .env(vars(&[("RAGSHIFT_REGISTRY_TABLE", "mine")]))
            .fill("stack S", "registry.table", "from-stack")
            .fill("stack S", "executor.cluster", "cluster-from-stack")
            .load()
            .unwrap();
        assert_eq!(loaded.config.registry.table.as_deref(), Some("mine"));
        assert_eq!(
            loaded.config.executor.cluster.as_deref(),
            Some("cluster-from-stack")
        );
        assert_eq!(
            loaded.origin("executor.cluster"),
            Origin::Layer("stack S".into())
        );
    }

    #[test]
    fn secrets_are_masked_when_shown() {
        let loaded = Layers::new()
            .env(vars(&[(
                "RAGSHIFT_TARGET_URL",
                "postgres://u:hunter2@h:5432/db",
            )]))
            .load()
            .unwrap();
        let url = loaded.config.target.url.as_ref().unwrap();
        assert_eq!(url.expose(), "postgres://u:hunter2@h:5432/db");
        let shown = toml::to_string(&loaded.config).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://u:****@h:5432/db"), "{shown}");
        assert!(!format!("{:?}", loaded.config).contains("hunter2"));
    }
}
