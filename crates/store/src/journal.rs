//! The run journal, kept in the TARGET database (schema `ragshift` unless `[run] journal_schema`
//! names another) so that it survives any crash of the machine running ragshift: one row per run
//! and one per unit of work (a bot, a copy partition). Resuming a run skips units that succeeded
//! and redoes the rest.
//!
//! [`Journal`] is where the journal lives: every statement on it is one of its methods, or
//! names its tables through [`Journal::runs_table`], [`Journal::units_table`] and
//! [`Journal::budgets_table`], so the schema is always the configured one, quoted.

use ragshift_config::{RunConfig, DEFAULT_JOURNAL_SCHEMA};
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use crate::ident::quote_ident;
use crate::StoreError;

/// The journal's tables, created on first use; `{schema}` is replaced by the quoted schema.
const SCHEMA_SQL: &str = "
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.runs (
    run_id      text PRIMARY KEY,
    kind        text NOT NULL,
    status      text NOT NULL DEFAULT 'running',
    target      text NOT NULL,
    selection   jsonb,
    report      jsonb,
    host        text,
    pid         integer,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS {schema}.units (
    run_id      text NOT NULL REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
    unit_id     text NOT NULL,
    unit_kind   text NOT NULL,
    owner       text,
    status      text NOT NULL DEFAULT 'queued',
    attempts    integer NOT NULL DEFAULT 0,
    row_count   bigint,
    checksum    text,
    error       text,
    exec_id     text,
    detail      jsonb,
    queued_at   timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (run_id, unit_id)
);
CREATE TABLE IF NOT EXISTS {schema}.budgets (
    run_id         text PRIMARY KEY REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
    window_ms      bigint NOT NULL,
    hold_ms        bigint NOT NULL,
    requests_limit bigint,
    tokens_limit   bigint,
    rate           double precision NOT NULL DEFAULT 1,
    decreased_at   timestamptz,
    grant_at       timestamptz[] NOT NULL DEFAULT '{}',
    grant_requests bigint[] NOT NULL DEFAULT '{}',
    grant_tokens   bigint[] NOT NULL DEFAULT '{}',
    last_requests  bigint NOT NULL DEFAULT 0,
    last_tokens    bigint NOT NULL DEFAULT 0,
    wait_ms        bigint NOT NULL DEFAULT 0,
    calls          bigint NOT NULL DEFAULT 0,
    throttles      bigint NOT NULL DEFAULT 0,
    decreases      bigint NOT NULL DEFAULT 0,
    leases         bigint NOT NULL DEFAULT 0,
    requests_granted bigint NOT NULL DEFAULT 0,
    tokens_granted bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
";

/// Columns added after the first release: `(table, column, type)`.
/// [`Journal::ensure_schema`] adds the missing ones to a journal an older ragshift created.
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    // When the run was last started or resumed (`started_at` is its first start).
    ("runs", "attempt_at", "timestamptz"),
    // Why a run failed when it stopped before it could write a report.
    ("runs", "error", "text"),
    // What the run's result depends on besides its selection (registry, model, ...): a run is
    // only resumed by one with the same settings.
    ("runs", "settings", "jsonb"),
    // What the unit was run with (a bot's knowledge and chunking): a changed unit is redone.
    ("units", "fingerprint", "text"),
];

/// Status of a run or a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not started yet.
    Queued,
    /// In progress (or its process died: see `status` for stale detection).
    Running,
    /// Done.
    Succeeded,
    /// Done with an error.
    Failed,
    /// Nothing to do.
    Skipped,
}

impl Status {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }
}

/// Text PostgreSQL can store: `text` and `jsonb` refuse NUL, which a hostile file name or
/// registry value can carry into an error message; it is shown as U+FFFD instead.
pub fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// A JSON value PostgreSQL can store as `jsonb` (see [`storable`]).
pub fn storable_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(storable(s)),
        Value::Array(a) => Value::Array(a.iter().map(storable_json).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (storable(k), storable_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Where a target's run journal lives: a schema of the target database holding `runs` and
/// `units` (and, beside them, the embedding cache). Built once from `[run] journal_schema` and
/// handed to every part that reads or writes the journal, so all of them use the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    schema: String,
    runs: String,
    units: String,
    budgets: String,
}

impl Default for Journal {
    /// The journal in schema `ragshift`.
    fn default() -> Self {
        Self::new(DEFAULT_JOURNAL_SCHEMA)
    }
}

impl Journal {
    /// The journal in `schema` (any name: it is always quoted).
    pub fn new(schema: &str) -> Self {
        let q = quote_ident(schema);
        Self {
            schema: schema.to_owned(),
            runs: format!("{q}.runs"),
            units: format!("{q}.units"),
            budgets: format!("{q}.budgets"),
        }
    }

    /// The journal `[run] journal_schema` names.
    pub fn from_config(run: &RunConfig) -> Self {
        Self::new(&run.journal_schema)
    }

    /// The schema's name as configured (unquoted).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Whether this is the default schema, `ragshift`.
    pub fn is_default(&self) -> bool {
        self.schema == DEFAULT_JOURNAL_SCHEMA
    }

    /// `sql` with `{runs}` and `{units}` replaced by the journal's (quoted) table names.
    fn sql(&self, sql: &str) -> String {
        sql.replace("{runs}", &self.runs)
            .replace("{units}", &self.units)
    }

    /// Runs one statement on the journal's tables ([`Self::sql`]); `doing` says what for in
    /// its error. The rows it changed.
    async fn execute(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        doing: impl std::fmt::Display,
    ) -> Result<u64, StoreError> {
        client
            .execute(&*self.sql(sql), params)
            .await
            .map_err(|e| StoreError::query(doing, e))
    }

    /// Runs a query on the journal's tables (see [`Self::sql`]); `doing` names it in errors.
    async fn query(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        doing: impl std::fmt::Display,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        client
            .query(&*self.sql(sql), params)
            .await
            .map_err(|e| StoreError::query(doing, e))
    }

    /// Runs a query on the journal's tables that returns at most one row.
    async fn query_opt(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        doing: impl std::fmt::Display,
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        client
            .query_opt(&*self.sql(sql), params)
            .await
            .map_err(|e| StoreError::query(doing, e))
    }

    /// The runs table, quoted and qualified, ready to paste into SQL.
    pub fn runs_table(&self) -> &str {
        &self.runs
    }

    /// The units table, quoted and qualified, ready to paste into SQL.
    pub fn units_table(&self) -> &str {
        &self.units
    }

    /// The budgets table (one provider budget per run, see [`crate::budget`]), quoted and
    /// qualified, ready to paste into SQL.
    pub fn budgets_table(&self) -> &str {
        &self.budgets
    }

    /// Whether the journal's tables exist (a target no run has written to has none).
    pub async fn exists(&self, client: &impl GenericClient) -> Result<bool, StoreError> {
        Ok(client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL",
                &[&self.runs, &self.units],
            )
            .await
            .map_err(|e| {
                StoreError::query(format!("looking for the run journal {}", self.schema), e)
            })?
            .get(0))
    }
}

/// The final state of a unit.
#[derive(Debug, Clone, Default)]
pub struct UnitResult {
    /// Rows written.
    pub row_count: Option<i64>,
    /// Checksum of what was written.
    pub checksum: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Anything else worth keeping (per-source results, timings).
    pub detail: Option<serde_json::Value>,
}

/// One unit as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct UnitRow {
    /// Bot id or partition id.
    pub unit_id: String,
    /// `bot`, `partition`, ...
    pub unit_kind: String,
    /// The bot's owner, when the unit is a bot.
    pub owner: Option<String>,
    /// Current status.
    pub status: Status,
    /// Attempts so far.
    pub attempts: i32,
    /// Rows written.
    pub row_count: Option<i64>,
    /// Checksum of what was written.
    pub checksum: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Job that last worked on it (ECS task, local worker).
    pub exec_id: Option<String>,
    /// Extra detail.
    pub detail: Option<serde_json::Value>,
    /// What the unit was last queued with (see [`Journal::queue_fingerprinted_units`]).
    pub fingerprint: Option<String>,
}

/// One run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// `rebuild`, `copy`, ...
    pub kind: String,
    /// Current status.
    pub status: String,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// End time, if ended.
    pub finished_at: Option<String>,
    /// Why it failed, when it stopped before writing a report.
    pub error: Option<String>,
}

/// The newest run of `kind` for exactly this selection that did not finish cleanly (still
/// `running` after a crash, or `failed`), with what decides whether to resume it.
#[derive(Debug, Clone, Serialize)]
pub struct ResumeCandidate {
    /// The run.
    pub run_id: String,
    /// `running` or `failed`.
    pub status: String,
    /// Its settings (`None`: recorded by a ragshift that kept none).
    pub settings: Option<serde_json::Value>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Seconds since it started.
    pub age_seconds: f64,
}

impl Journal {
    /// Creates the journal's schema and tables if missing.
    pub async fn ensure_schema(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        client
            .batch_execute(&SCHEMA_SQL.replace("{schema}", &quote_ident(&self.schema)))
            .await
            .map_err(|e| {
                StoreError::query(
                    format!("creating the run journal (schema {})", self.schema),
                    e,
                )
            })?;
        // ALTER TABLE locks the table even when the column is there: only run it when one is
        // missing.
        let present: Vec<(String, String)> = client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                  WHERE table_schema = $1",
                &[&self.schema],
            )
            .await
            .map_err(|e| StoreError::query("reading the run journal's columns", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (table, column, ty) in ADDED_COLUMNS {
            if !present.iter().any(|(t, c)| t == table && c == column) {
                client
                    .batch_execute(&format!(
                        "ALTER TABLE {}.{table} ADD COLUMN IF NOT EXISTS {column} {ty}",
                        quote_ident(&self.schema)
                    ))
                    .await
                    .map_err(|e| StoreError::query("upgrading the run journal", e))?;
            }
        }
        Ok(())
    }

    /// Records the start of a run (or, for a resumed run, marks it running again).
    pub async fn start_run(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        kind: &str,
        target: &str,
        selection: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        self.execute(
            client,
            "INSERT INTO {runs} (run_id, kind, target, selection, host, pid, attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now())
                 ON CONFLICT (run_id) DO UPDATE
                    SET status = 'running', finished_at = NULL, error = NULL, attempt_at = now(),
                        host = EXCLUDED.host, pid = EXCLUDED.pid",
            &[
                &run_id,
                &kind,
                &storable(target),
                &storable_json(selection),
                &host,
                &(std::process::id() as i32),
            ],
            format!("recording run {run_id}"),
        )
        .await?;
        Ok(())
    }

    /// Records the end of a run with its report and, for a failed run, why in one line (what
    /// `ragshift status` and anyone reading the journal see first).
    pub async fn finish_run(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        status: Status,
        report: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.execute(
            client,
            "UPDATE {runs} SET status = $2, report = $3, error = $4, finished_at = now()
                  WHERE run_id = $1",
            &[
                &run_id,
                &status.as_str(),
                &storable_json(report),
                &error.map(storable),
            ],
            format!("finishing run {run_id}"),
        )
        .await?;
        Ok(())
    }

    /// Ends a run that stopped on an error before it could finish: `failed` with the reason. A
    /// run that already ended keeps its status and report.
    pub async fn fail_run(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            client,
            "UPDATE {runs} SET status = 'failed', error = $2, finished_at = now()
                  WHERE run_id = $1 AND status = 'running'",
            &[&run_id, &storable(error)],
            format!("recording the failure of run {run_id}"),
        )
        .await?;
        Ok(())
    }

    /// Records as failed the runs of `kind` on `target` left `running`, except `except`. Call it
    /// only while holding the target's lock: then no other run on that target is alive, so such a
    /// run was interrupted (its process died, or lost the target before it could say so).
    pub async fn fail_interrupted_runs(
        &self,
        client: &impl GenericClient,
        kind: &str,
        target: &str,
        except: &str,
    ) -> Result<u64, StoreError> {
        self.execute(client, "UPDATE {runs}
                    SET status = 'failed', finished_at = now(),
                        error = coalesce(error, 'interrupted: its process stopped or lost the target before it could finish')
                  WHERE kind = $1 AND target = $2 AND status = 'running' AND run_id <> $3", &[&kind, &target, &except], "recording interrupted runs as failed").await
    }

    /// Runs of `kind` this process started on this target within the last `within` and left
    /// `running`: after an error, the evidence that its work had started (see [`Self::fail_run`]).
    pub async fn running_runs_of_this_process(
        &self,
        client: &impl GenericClient,
        kind: &str,
        within: std::time::Duration,
    ) -> Result<Vec<String>, StoreError> {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let rows = self
            .query(
                client,
                "SELECT run_id FROM {runs}
                  WHERE kind = $1 AND status = 'running' AND host = $2 AND pid = $3
                    AND coalesce(attempt_at, started_at) >= now() - make_interval(secs => $4)",
                &[
                    &kind,
                    &host,
                    &(std::process::id() as i32),
                    &(within.as_secs_f64() + 5.0),
                ],
                "looking for this process's runs",
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Records what a run's result depends on besides its selection (see [`ResumeCandidate`]).
    pub async fn set_run_settings(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        settings: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.execute(
            client,
            "UPDATE {runs} SET settings = $2 WHERE run_id = $1",
            &[&run_id, &storable_json(settings)],
            format!("recording the settings of run {run_id}"),
        )
        .await?;
        Ok(())
    }

    /// Adds units to a run with the fingerprint of what each is run with. A unit already recorded
    /// keeps its state unless its fingerprint changed: then it is queued again (a bot whose
    /// knowledge changed since it succeeded is redone, not skipped).
    pub async fn queue_fingerprinted_units(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        kind: &str,
        units: &[(String, Option<String>, String)],
    ) -> Result<(), StoreError> {
        let ids: Vec<&str> = units.iter().map(|(u, _, _)| u.as_str()).collect();
        let owners: Vec<Option<&str>> = units.iter().map(|(_, o, _)| o.as_deref()).collect();
        let prints: Vec<&str> = units.iter().map(|(_, _, f)| f.as_str()).collect();
        self.execute(client, "INSERT INTO {units} AS u (run_id, unit_id, unit_kind, owner, fingerprint)
                 SELECT $1, i, $2, o, f FROM unnest($3::text[], $4::text[], $5::text[]) AS t(i, o, f)
                 ON CONFLICT (run_id, unit_id) DO UPDATE
                    SET fingerprint = EXCLUDED.fingerprint,
                        status = CASE WHEN u.fingerprint IS DISTINCT FROM EXCLUDED.fingerprint
                                      THEN 'queued' ELSE u.status END", &[&run_id, &kind, &ids, &owners, &prints], format!("queueing units of run {run_id}")).await?;
        Ok(())
    }

    /// Marks the unfinished units of a run that are no longer part of it `skipped`, with the reason
    /// (a bot gone from the registry, or without knowledge now).
    pub async fn skip_units(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        unit_ids: &[String],
        reason: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            client,
            "UPDATE {units} SET status = 'skipped', error = $3, finished_at = now()
                  WHERE run_id = $1 AND unit_id = ANY($2) AND status <> 'succeeded'",
            &[&run_id, &unit_ids, &storable(reason)],
            format!("skipping units of run {run_id}"),
        )
        .await?;
        Ok(())
    }

    /// Adds units to a run as queued; units already recorded keep their state (so a resumed run
    /// keeps what succeeded).
    pub async fn queue_units(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        kind: &str,
        units: &[(String, Option<String>)],
    ) -> Result<(), StoreError> {
        let ids: Vec<&str> = units.iter().map(|(u, _)| u.as_str()).collect();
        let owners: Vec<Option<&str>> = units.iter().map(|(_, o)| o.as_deref()).collect();
        self.execute(
            client,
            "INSERT INTO {units} (run_id, unit_id, unit_kind, owner)
                 SELECT $1, u, $2, o FROM unnest($3::text[], $4::text[]) AS t(u, o)
                 ON CONFLICT (run_id, unit_id) DO NOTHING",
            &[&run_id, &kind, &ids, &owners],
            format!("queueing units of run {run_id}"),
        )
        .await?;
        Ok(())
    }

    /// Marks a unit running and counts the attempt.
    pub async fn mark_running(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        unit_id: &str,
        exec_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.execute(
            client,
            "UPDATE {units}
                    SET status = 'running', attempts = attempts + 1, exec_id = $3,
                        started_at = now(), finished_at = NULL, error = NULL
                  WHERE run_id = $1 AND unit_id = $2",
            &[&run_id, &unit_id, &exec_id],
            format!("marking {unit_id} running"),
        )
        .await?;
        Ok(())
    }

    /// Records a unit's end. Call it inside the transaction that wrote the unit's data, so data and
    /// journal commit together.
    pub async fn mark_finished(
        &self,
        client: &impl GenericClient,
        run_id: &str,
        unit_id: &str,
        status: Status,
        result: &UnitResult,
    ) -> Result<(), StoreError> {
        self.execute(
            client,
            "UPDATE {units}
                    SET status = $3, row_count = $4, checksum = $5, error = $6, detail = $7,
                        finished_at = now()
                  WHERE run_id = $1 AND unit_id = $2",
            &[
                &run_id,
                &unit_id,
                &status.as_str(),
                &result.row_count,
                &result.checksum,
                &result.error.as_deref().map(storable),
                &result.detail.as_ref().map(storable_json),
            ],
            format!("recording the result of {unit_id}"),
        )
        .await?;
        Ok(())
    }

    /// Units of a run, in id order.
    pub async fn units(
        &self,
        client: &impl GenericClient,
        run_id: &str,
    ) -> Result<Vec<UnitRow>, StoreError> {
        let rows = self
            .query(
                client,
                "SELECT unit_id, unit_kind, owner, status, attempts, row_count, checksum, error, exec_id,
                        detail, fingerprint
                   FROM {units} WHERE run_id = $1 ORDER BY unit_id",
                &[&run_id],
                format!("reading units of run {run_id}"),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| UnitRow {
                unit_id: r.get(0),
                unit_kind: r.get(1),
                owner: r.get(2),
                status: Status::parse(r.get(3)).unwrap_or(Status::Queued),
                attempts: r.get(4),
                row_count: r.get(5),
                checksum: r.get(6),
                error: r.get(7),
                exec_id: r.get(8),
                detail: r.get(9),
                fingerprint: r.get(10),
            })
            .collect())
    }

    /// The newest run of `kind` (any kind when `None`).
    pub async fn latest_run(
        &self,
        client: &impl GenericClient,
        kind: Option<&str>,
    ) -> Result<Option<RunRow>, StoreError> {
        let sql = RunRow::select("$1::text IS NULL OR kind = $1 ORDER BY started_at DESC LIMIT 1");
        let row = self
            .query_opt(client, &sql, &[&kind], "reading the latest run")
            .await?;
        Ok(row.as_ref().map(RunRow::from_row))
    }

    /// The run rerunning the same command could resume (see [`ResumeCandidate`]): the newest run
    /// with this selection (and these settings, when given); `None` when it succeeded or there is
    /// none.
    pub async fn resumable_run(
        &self,
        client: &impl GenericClient,
        kind: &str,
        target: &str,
        selection: &serde_json::Value,
        settings: Option<&serde_json::Value>,
    ) -> Result<Option<ResumeCandidate>, StoreError> {
        let sql = ResumeCandidate::select(
            "kind = $1 AND target = $2 AND selection = $3
                    AND ($4::jsonb IS NULL OR settings = $4)
                  ORDER BY started_at DESC LIMIT 1",
        );
        let params: [&(dyn ToSql + Sync); 4] = [
            &kind,
            &storable(target),
            &storable_json(selection),
            &settings.map(storable_json),
        ];
        let row = self
            .query_opt(client, &sql, &params, "looking for a run to resume")
            .await?;
        Ok(row
            .as_ref()
            .map(ResumeCandidate::from_row)
            .filter(|run| run.status != "succeeded"))
    }

    /// A run's recorded settings and age (for an explicit `--resume`).
    pub async fn run_settings(
        &self,
        client: &impl GenericClient,
        run_id: &str,
    ) -> Result<Option<ResumeCandidate>, StoreError> {
        let sql = ResumeCandidate::select("run_id = $1");
        let row = self
            .query_opt(client, &sql, &[&run_id], format!("reading run {run_id}"))
            .await?;
        Ok(row.as_ref().map(ResumeCandidate::from_row))
    }

    /// Whether run `run_id` exists, and its kind.
    pub async fn run_kind(
        &self,
        client: &impl GenericClient,
        run_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .query_opt(
                client,
                "SELECT kind FROM {runs} WHERE run_id = $1",
                &[&run_id],
                format!("reading run {run_id}"),
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// One run by id.
    pub async fn run(
        &self,
        client: &impl GenericClient,
        run_id: &str,
    ) -> Result<Option<RunRow>, StoreError> {
        let sql = RunRow::select("run_id = $1");
        let row = self
            .query_opt(client, &sql, &[&run_id], format!("reading run {run_id}"))
            .await?;
        Ok(row.as_ref().map(RunRow::from_row))
    }
}

/// A timestamp column as RFC 3339 text in UTC, the way the journal's rows report times.
fn utc_text(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

impl RunRow {
    /// The statement reading runs where `filter` holds (it may end with ORDER BY / LIMIT), in
    /// the order [`Self::from_row`] reads them.
    fn select(filter: &str) -> String {
        format!(
            "SELECT run_id, kind, status, {}, {}, error FROM {{runs}} WHERE {filter}",
            utc_text("started_at"),
            utc_text("finished_at"),
        )
    }

    /// A row of [`Self::select`].
    fn from_row(r: &tokio_postgres::Row) -> Self {
        Self {
            run_id: r.get(0),
            kind: r.get(1),
            status: r.get(2),
            started_at: r.get(3),
            finished_at: r.get(4),
            error: r.get(5),
        }
    }
}

impl ResumeCandidate {
    /// The statement reading runs where `filter` holds (it may end with ORDER BY / LIMIT), in
    /// the order [`Self::from_row`] reads them.
    fn select(filter: &str) -> String {
        format!(
            "SELECT run_id, status, settings, {},
                    extract(epoch FROM now() - started_at)::float8
               FROM {{runs}} WHERE {filter}",
            utc_text("started_at"),
        )
    }

    /// A row of [`Self::select`].
    fn from_row(r: &tokio_postgres::Row) -> Self {
        Self {
            run_id: r.get(0),
            status: r.get(1),
            settings: r.get(2),
            started_at: r.get(3),
            age_seconds: r.get(4),
        }
    }
}
