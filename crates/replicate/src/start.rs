//! `replicate start`: check, then create in order (target schema, extension, table; source
//! publication; target subscription and slot), journaling each object before creating it. If a
//! step fails, whatever was created is removed again, so a failed start leaves nothing behind.

use ragshift_store::ident::quote_ident;
use ragshift_store::journal::Status;
use ragshift_store::lock::TargetLock;
use ragshift_store::schema::ensure_vector_extension;
use ragshift_store::{connect, StoreError};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{OnSide, Which};
use crate::names::Names;
use crate::prerequisites::{self, Plan};
use crate::record::{self, Mark, Object, ObjectKind, Record};
use crate::{
    abort, publication, subscription, target_table, ReplicateError, ReplicateErrorKind, Sides,
};

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Check and show the plan; create nothing.
    pub dry_run: bool,
}

/// What `start` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct StartReport {
    /// The checks and the plan.
    pub plan: Plan,
    /// Nothing was created.
    pub dry_run: bool,
    /// Names of the run's objects (`None` on a dry run).
    pub names: Option<Names>,
    /// What was created.
    pub created: Vec<Object>,
    /// Where the source's password is kept, and any server log it may have reached.
    pub password: Vec<String>,
}

/// Runs the prerequisite checks only.
pub async fn check(sides: &Sides) -> Result<Plan, ReplicateError> {
    let (source, target) = sides.connect("check").await?;
    check_on(sides, &source, &target).await
}

/// The prerequisite checks on open connections: what `check` reports and `start` requires.
async fn check_on(sides: &Sides, source: &Client, target: &Client) -> Result<Plan, ReplicateError> {
    prerequisites::check_all(source, target, &sides.target, sides.route(), &sides.layout)
        .await
        .map_err(|e| sides.side_error(e))
}

/// Checks the prerequisites, then sets replication up (unless `dry_run`).
pub async fn start(sides: &Sides, options: &StartOptions) -> Result<StartReport, ReplicateError> {
    let (source, mut target) = sides.connect("start").await?;
    refuse_replicating_into_itself(sides, &source, &target).await?;
    let _lock = TargetLock::acquire(&sides.target, &sides.layout, "replicate start")
        .await
        .on(sides, Which::Target)?;
    if let Some(r) = record::active(&target, &sides.journal)
        .await
        .on(sides, Which::Target)?
    {
        return Err(ReplicateError::new(
            ReplicateErrorKind::AlreadyStarted,
            format!(
                "a replication ({}, publication {}, subscription {}) is already running into {}: see `ragshift replicate status`, finish it with `ragshift replicate cutover` or remove it with `ragshift replicate abort`",
                r.names.run_id,
                r.names.publication,
                r.names.subscription,
                sides.target.label()
            ),
        ));
    }
    let plan = check_on(sides, &source, &target).await?;
    if !plan.ready() {
        let lines: Vec<String> = plan
            .failures()
            .map(|c| format!("  {} {}: {}", c.side, c.name, c.detail))
            .collect();
        return Err(ReplicateError::new(
            ReplicateErrorKind::Prerequisites,
            format!(
                "replication can't start, nothing was created; fix these first:\n{}",
                lines.join("\n")
            ),
        ));
    }
    if options.dry_run {
        return Ok(StartReport {
            plan,
            dry_run: true,
            names: None,
            created: Vec::new(),
            password: Vec::new(),
        });
    }

    let names = Names::new();
    let record = Record {
        names: names.clone(),
        source: sides.source.label().to_owned(),
        source_database: sides.source.dbname().to_owned(),
        schema: sides.layout.schema.clone(),
        table: sides.layout.table.clone(),
        binary: plan.transfer.binary,
    };
    // From here on the journal holds the run: a failure is one of work that started.
    record::begin(&target, &sides.journal, &record)
        .await
        .on(sides, Which::Target)
        .map_err(ReplicateError::after_work)?;
    match create_all(sides, &source, &mut target, &plan, &names).await {
        Ok(leaks) => {
            let mut password = vec![subscription::PASSWORD_STORED.to_owned()];
            if let Some(w) = subscription::leak_warning(&leaks) {
                tracing::warn!("{w}");
                password.push(w);
            }
            let created = record::objects(&target, &sides.journal, &names.run_id)
                .await
                .on(sides, Which::Target)
                .map_err(ReplicateError::after_work)?;
            tracing::info!(run = %names.run_id, "replication started: {}", plan.transfer.reason);
            Ok(StartReport {
                plan,
                dry_run: false,
                names: Some(names),
                created,
                password,
            })
        }
        Err(e) => {
            // Leave nothing behind: remove what this start created, then report the cause;
            // on fresh connections where the fault closed this start's.
            let app = "ragshift replicate start";
            let fresh_target = match target.is_closed() {
                true => connect(&sides.target, app).await.ok(),
                false => None,
            };
            let fresh_source = match source.is_closed() {
                true => connect(&sides.source, app).await.ok(),
                false => None,
            };
            let target = fresh_target.as_ref().unwrap_or(&target);
            let source = fresh_source.as_ref().unwrap_or(&source);
            let objects = record::objects(target, &sides.journal, &names.run_id).await;
            let outcome = match &objects {
                Ok(objects) => {
                    abort::remove(Some(source), target, &sides.journal, &record, objects).await
                }
                Err(_) => abort::AbortReport::default(),
            };
            let finished = record::finish(
                target,
                &sides.journal,
                &names.run_id,
                Status::Failed,
                &serde_json::json!({ "outcome": "start failed", "error": e.to_string(),
                                     "removed": outcome.removed, "left": outcome.left }),
            )
            .await;
            let mut message = format!("{e}; everything this start created was removed again");
            if objects.is_err() || finished.is_err() {
                message = format!(
                    "{e}; the target's journal could not be read or updated, so what this start created may be left: run `ragshift replicate abort` to remove it"
                );
            } else if !outcome.left.is_empty() {
                message = format!("{e}; could not remove: {}", outcome.left.join("; "));
            }
            Err(ReplicateError::new(e.kind(), message).after_work())
        }
    }
}

/// Creates objects the way every object is created: recorded as planned, created, then
/// recorded as created, so that after a crash in between `abort` knows they may exist.
async fn step<T>(
    sides: &Sides,
    target: &mut Client,
    run_id: &str,
    objects: &[(ObjectKind, &str)],
    create: impl AsyncFnOnce(&mut Client) -> Result<T, ReplicateError>,
) -> Result<T, ReplicateError> {
    for &object in objects {
        record::mark(&*target, &sides.journal, run_id, object, Mark::Planned)
            .await
            .on(sides, Which::Target)?;
    }
    let out = create(&mut *target).await?;
    for &object in objects {
        let created = record::mark(&*target, &sides.journal, run_id, object, Mark::Created);
        created.await.on(sides, Which::Target)?;
    }
    Ok(out)
}

async fn create_all(
    sides: &Sides,
    source: &Client,
    target: &mut Client,
    plan: &Plan,
    names: &Names,
) -> Result<Vec<subscription::LogLeak>, ReplicateError> {
    let layout = &sides.layout;
    let run = names.run_id.as_str();
    if plan.create_schema {
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(&layout.schema)
        );
        let object = (ObjectKind::Schema, layout.schema.as_str());
        step(sides, target, run, &[object], async |t: &mut Client| {
            t.batch_execute(&sql)
                .await
                .map_err(|e| StoreError::query("creating the schema", e))
                .on(sides, Which::Target)
        })
        .await?;
    }
    if plan.create_extension {
        let object = (ObjectKind::Extension, "vector");
        step(sides, target, run, &[object], async |t: &mut Client| {
            ensure_vector_extension(&*t).await.on(sides, Which::Target)
        })
        .await?;
    }
    if plan.create_table {
        let Some(shape) = &plan.source_shape else {
            return Err(ReplicateError::new(
                ReplicateErrorKind::Config,
                "the source table's shape is unknown",
            ));
        };
        let table = layout.display_name();
        let (dimension, platform_key) = (plan.dimension, plan.platform_key);
        step(
            sides,
            target,
            run,
            &[(ObjectKind::Table, table.as_str())],
            async |t: &mut Client| {
                target_table::create(source, t, layout, shape, dimension, platform_key)
                    .await
                    .on(sides, Which::Target)
            },
        )
        .await?;
    }
    // The tables it refers to (LangChain's collections) travel with it, or its rows point at
    // nothing on the target.
    for r in plan.referenced.iter().filter(|r| r.create) {
        let name = r.layout.qualified();
        let object = (ObjectKind::ReferencedTable, name.as_str());
        step(sides, target, run, &[object], async |t: &mut Client| {
            target_table::create_like(source, t, &r.layout)
                .await
                .on(sides, Which::Target)
        })
        .await?;
    }
    let mut published = vec![layout.clone()];
    published.extend(plan.referenced.iter().map(|r| r.layout.clone()));
    let object = (ObjectKind::Publication, names.publication.as_str());
    step(sides, target, run, &[object], async |_: &mut Client| {
        publication::create(source, &names.publication, &published)
            .await
            .on(sides, Which::Source)
    })
    .await?;

    // One statement creates the subscription and its slot.
    let objects = [
        (ObjectKind::Subscription, names.subscription.as_str()),
        (ObjectKind::Slot, names.slot.as_str()),
    ];
    let conninfo = sides.route().libpq_conninfo();
    step(sides, target, run, &objects, async |t: &mut Client| {
        let binary = plan.transfer.binary;
        subscription::create(t, names, conninfo.expose(), binary, sides.source.label())
            .await
            .on(sides, Which::Target)
    })
    .await
}

/// Refuses a replication whose source and target are the same database, however they are
/// reached (`localhost` and `127.0.0.1`, an alias, a tunnel): the subscription would apply the
/// table's changes onto itself, and cutover would fence the only copy. Compared by
/// [`ragshift_store::identity`], not by URL text.
async fn refuse_replicating_into_itself(
    sides: &Sides,
    source: &Client,
    target: &Client,
) -> Result<(), ReplicateError> {
    use ragshift_store::identity::{identify, same_database};
    let s = identify(source).await.on(sides, Which::Source)?;
    let t = identify(target).await.on(sides, Which::Target)?;
    if same_database(&s, &t) {
        return Err(ReplicateError::new(
            ReplicateErrorKind::Prerequisites,
            format!(
                "source and target are the same database ({s}), reached as {} and {}; nothing was created. Give the new cluster as --target",
                sides.source.label(),
                sides.target.label()
            ),
        ));
    }
    Ok(())
}
