//! Logical replication between two real PostgreSQL clusters: start → initial sync → changes
//! on the source while replicating → catch-up → fenced, verified cutover; a writer running
//! from before start until after cutover loses nothing; a refused cutover lifts the fence and
//! leaves replication running; missing prerequisites create nothing; abort leaves both
//! clusters as they were and removes only what the run recorded creating.

use std::time::{Duration, Instant};

use ragshift_replicate::prerequisites::Level;
use ragshift_replicate::record::ObjectKind;
use ragshift_replicate::{
    abort, cutover, fence, record, start, status, subscription, CutoverOptions, ReplicateErrorKind,
    ReplicationStatus, Sides, StartOptions,
};
use ragshift_store::checksum::bot_checksums;
use ragshift_store::index::{vector_indexes, VectorIndex};
use ragshift_store::schema::init_target;
use ragshift_store::{ConnectSpec, Layout};
use ragshift_testkit::sql::scalar;
use ragshift_testkit::{PgCluster, SeededRng, SourceWriter};
use tokio_postgres::Client;

const DIM: usize = 16;

/// `bots` bots of `rows` rows each, the same on every call.
fn seed_sql(bots: u32, rows: u32) -> String {
    ragshift_testkit::bot_rows(bots, rows, DIM)
}

struct Pair {
    src_url: String,
    _source_cluster: PgCluster,
    _target_cluster: PgCluster,
    sides: Sides,
    source: Client,
    target: Client,
}

/// A logical source cluster with a seeded `items` table, and an empty target cluster.
async fn pair(source_cluster: PgCluster) -> Pair {
    let target_cluster = PgCluster::start();
    let src_url = source_cluster.fresh_database("rep_src");
    let tgt_url = target_cluster.fresh_database("rep_tgt");
    let mut source = source_cluster.connect(&src_url).await;
    init_target(&mut source, &Layout::default(), DIM)
        .await
        .expect("source table");
    source
        .batch_execute(&seed_sql(4, 50))
        .await
        .expect("seed the source");
    let target = target_cluster.connect(&tgt_url).await;
    let sides = Sides {
        source: ConnectSpec::from_url(&src_url, None, None).expect("source url"),
        target: ConnectSpec::from_url(&tgt_url, None, None).expect("target url"),
        layout: Layout::default(),
        source_from_target: None,
        journal: Default::default(),
    };
    Pair {
        src_url,
        _source_cluster: source_cluster,
        _target_cluster: target_cluster,
        sides,
        source,
        target,
    }
}

/// Polls `replicate status` until `done` holds, failing after a minute.
async fn poll_status(sides: &Sides, what: &str, done: impl Fn(&ReplicationStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = status(sides).await.expect("status");
        if done(&st) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {st:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Every row of `items`, every column, as text: an independent comparison of both sides.
async fn all_rows(c: &Client) -> String {
    c.query_one(
        "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '') FROM items t",
        &[],
    )
    .await
    .expect("reading every row")
    .get(0)
}

fn options() -> CutoverOptions {
    CutoverOptions {
        timeout: Duration::from_secs(60),
        poll: Duration::from_millis(100),
        verify: ragshift_verify::Options {
            queries: 3,
            ..ragshift_verify::Options::default()
        },
        index: VectorIndex::Hnsw {
            m: None,
            ef_construction: None,
        },
        index_build: Default::default(),
        fence: true,
        fence_lock_timeout: Duration::from_secs(10),
    }
}

/// Fence triggers and functions on the source.
async fn fences(source: &Client) -> i64 {
    count(
        source,
        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ragshift_fence_%')
              + (SELECT count(*) FROM pg_proc WHERE proname LIKE 'ragshift_fence_%')",
    )
    .await
}

/// Asserts that `e` is the fence's refusal.
fn assert_fenced(e: &tokio_postgres::Error) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    assert_eq!(db.code().code(), fence::SQLSTATE, "{db:?}");
    assert!(
        db.message().starts_with(
            "ragshift cutover: writes to public.items are fenced on this (old) cluster; the application must now use the new cluster"
        ),
        "{}",
        db.message()
    );
}

/// Asserts neither cluster holds a publication, a slot, a subscription or the target table
/// (nor, with `journal`, the target's journal schema): nothing was created, or all was removed.
async fn assert_none_left(p: &Pair, journal: bool) {
    let mut checks = vec![
        (&p.source, "SELECT count(*) FROM pg_publication"),
        (&p.source, "SELECT count(*) FROM pg_replication_slots"),
        (&p.target, "SELECT count(*) FROM pg_subscription"),
        (
            &p.target,
            "SELECT count(*) FROM pg_class WHERE relname = 'items'",
        ),
    ];
    if journal {
        checks.push((
            &p.target,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'ragshift'",
        ));
    }
    for (c, sql) in checks {
        assert_eq!(count(c, sql).await, 0, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn start_sync_changes_catch_up_and_cutover() {
    let p = pair(PgCluster::builder().logical_replication().start()).await;
    let report = start(&p.sides, &StartOptions::default()).await.unwrap();
    let names = report.names.clone().unwrap();
    assert!(names.publication.starts_with("ragshift_pub_"));
    assert!(names.subscription.starts_with("ragshift_sub_"));
    assert!(report.plan.transfer.binary, "{:?}", report.plan.transfer);
    let route = report
        .plan
        .checks
        .iter()
        .find(|c| c.name == "route to the source")
        .expect("a route check");
    assert_eq!(route.level, Level::Ok, "{route:?}");
    assert!(route.detail.contains("reached the source"), "{route:?}");
    let kinds: Vec<&str> = report.created.iter().map(|o| o.kind.as_str()).collect();
    for k in ["table", "publication", "subscription", "slot"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    // The target table has no vector index during the sync.
    assert!(vector_indexes(&p.target, &Layout::default())
        .await
        .unwrap()
        .is_empty());
    // The password went into the subscription only.
    assert_eq!(
        count(&p.target, "SELECT count(*) FROM pg_subscription").await,
        1
    );

    poll_status(&p.sides, "the initial sync", |s| {
        s.synced && s.target_rows == 200
    })
    .await;

    // Changes on the source while replicating.
    let writer = {
        let src_url = p.sides.source.clone();
        tokio::spawn(async move {
            let c = ragshift_store::connect(&src_url, "test writer")
                .await
                .unwrap();
            for i in 0..40 {
                c.batch_execute(&format!(
                    "INSERT INTO items SELECT '77' || lpad('{i}', 24, '0'), botid, 'new ' || content, source, embedding
                       FROM items WHERE id = '01' || lpad('{n}', 24, '0');
                     UPDATE items SET content = content || ' (edited {i})' WHERE id = '02' || lpad('{n}', 24, '0');
                     DELETE FROM items WHERE id = '03' || lpad('{n}', 24, '0');",
                    n = i + 1
                ))
                .await
                .unwrap();
            }
        })
    };
    let during = status(&p.sides).await.unwrap();
    assert!(during.slot.is_some() && during.subscription_exists);
    writer.await.unwrap();
    assert_eq!(count(&p.source, "SELECT count(*) FROM items").await, 200);

    poll_status(&p.sides, "catch-up", |s| {
        s.caught_up && s.target_rows == s.source_rows && s.behind_bytes == Some(0)
    })
    .await;
    let st = status(&p.sides).await.unwrap();
    assert_eq!(st.tables.len(), 1);
    assert_eq!(st.tables[0].state, "r");
    assert_eq!(st.apply_errors, Some(0));

    let mut steps = Vec::new();
    let options = options();
    let report = cutover(&p.sides, &options, &mut |s| steps.push(s.to_string()))
        .await
        .unwrap();
    assert!(report.passed, "{:#?}", report.verify.failures);
    assert!(report.verify.passed());
    assert_eq!(report.verify.retrieval.as_ref().unwrap().overlap_at_k, 1.0);
    assert!(report.index.as_ref().unwrap().built);
    assert!(report.left.is_empty(), "{:?}", report.left);
    // Fence, then verify, then detach, then the index.
    let at = |what: &str| {
        steps
            .iter()
            .position(|s| s.contains(what))
            .unwrap_or_else(|| panic!("no step {what:?}: {steps:?}"))
    };
    assert!(at("fencing writes") < at("verifying"), "{steps:?}");
    assert!(
        at("verifying") < at("dropping the subscription"),
        "{steps:?}"
    );
    assert!(
        at("dropping the subscription") < at("building the vector index"),
        "{steps:?}"
    );
    let f = report.fence.as_ref().expect("fenced");
    assert!(f.in_place && f.lsn.is_some(), "{f:?}");

    // The target equals the source, and no replication object is left anywhere.
    let layout = Layout::default();
    assert_eq!(
        bot_checksums(&p.source, &layout, None).await.unwrap(),
        bot_checksums(&p.target, &layout, None).await.unwrap()
    );
    assert_eq!(vector_indexes(&p.target, &layout).await.unwrap().len(), 1);
    assert_eq!(
        count(&p.source, "SELECT count(*) FROM pg_publication").await,
        0
    );
    assert_eq!(
        count(&p.source, "SELECT count(*) FROM pg_replication_slots").await,
        0
    );
    assert_eq!(
        count(&p.target, "SELECT count(*) FROM pg_subscription").await,
        0
    );
    let (st, _) = record::latest(&p.target, &p.sides.journal)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st, "succeeded");
    let err = status(&p.sides).await.unwrap_err();
    assert_eq!(err.kind(), ReplicateErrorKind::NotStarted);
    assert!(err.to_string().contains("succeeded"), "{err}");

    // The old source stays fenced; abort lifts the fence and touches nothing else.
    let write = "UPDATE items SET content = 'late' WHERE id = '04' || lpad('1', 24, '0')";
    assert_fenced(&p.source.batch_execute(write).await.unwrap_err());
    assert_fenced(&p.source.batch_execute("TRUNCATE items").await.unwrap_err());
    let lifted = abort(&p.sides).await.unwrap();
    assert!(lifted.after_cutover, "{lifted:?}");
    assert!(lifted.left.is_empty(), "{:?}", lifted.left);
    assert!(
        lifted.removed.len() == 1 && lifted.removed[0].contains("write fence ragshift_fence_"),
        "{:?}",
        lifted.removed
    );
    assert_eq!(fences(&p.source).await, 0);
    p.source
        .batch_execute(write)
        .await
        .expect("the source takes writes again");
    assert_eq!(vector_indexes(&p.target, &layout).await.unwrap().len(), 1);
    assert!(abort(&p.sides).await.unwrap().run_id.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_running_from_before_start_until_after_cutover_loses_nothing() {
    let p = pair(PgCluster::builder().logical_replication().start()).await;
    // Inserts, updates and deletes, each its own transaction, from before start until the
    // fence has refused it a few times after cutover returned.
    let writer = SourceWriter::start(&p.src_url, SeededRng::trial_seed("replicate writer"))
        .await
        .unwrap();
    // The writer is under way before replication starts.
    assert!(
        writer.wait_for_writes(5, Duration::from_secs(30)).await,
        "the writer wrote nothing"
    );
    start(&p.sides, &StartOptions::default()).await.unwrap();
    let at_start = writer.committed();
    poll_status(&p.sides, "the initial sync", |s| s.synced).await;
    let report = cutover(&p.sides, &options(), &mut |_| {}).await.unwrap();
    let returned = Instant::now();
    let at_return = writer.committed();
    assert!(report.passed, "{:#?}", report.verify.failures);
    assert!(writer.wait_for_writes(3, Duration::from_secs(30)).await);
    let log = writer.stop().await.unwrap();
    assert!(
        at_return > at_start,
        "the writer must have written while replication ran ({at_start} → {at_return})"
    );
    assert!(log.failed.is_empty(), "{:?}", log.failed);
    assert!(log.refused >= 3, "{}", log.refused);
    let late: Vec<_> = log.committed_after(returned).collect();
    assert!(late.is_empty(), "writes got through the fence: {late:?}");
    let (_, message) = log.first_refused.expect("a refused write");
    assert!(
        message.starts_with(
            "ragshift cutover: writes to public.items are fenced on this (old) cluster; the application must now use the new cluster"
        ),
        "{message}"
    );

    // Every committed write is on the target: every row, every column, compared directly.
    let (source_rows, target_rows) = (all_rows(&p.source).await, all_rows(&p.target).await);
    assert!(
        source_rows.contains("written "),
        "the writes reached the source"
    );
    assert_eq!(source_rows, target_rows);
    assert_eq!(
        count(&p.target, "SELECT count(*) FROM pg_subscription").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_cutover_lifts_the_fence_and_replication_keeps_running() {
    let p = pair(PgCluster::builder().logical_replication().start()).await;
    start(&p.sides, &StartOptions::default()).await.unwrap();
    poll_status(&p.sides, "the initial sync", |s| {
        s.synced && s.target_rows == 200
    })
    .await;
    // A difference on the target that replication doesn't repair.
    let id = "03000000000000000000000007";
    p.target
        .batch_execute(&format!(
            "UPDATE items SET content = 'tampered' WHERE id = '{id}'"
        ))
        .await
        .unwrap();

    let mut steps = Vec::new();
    let report = cutover(&p.sides, &options(), &mut |s| steps.push(s.to_string()))
        .await
        .unwrap();
    assert!(!report.passed);
    assert!(!report.verify.passed());
    let f = report.fence.as_ref().expect("it fenced");
    assert!(!f.in_place, "{f:?}");
    assert!(
        steps.iter().any(|s| s.contains("lifting the write fence")),
        "{steps:?}"
    );
    let next = report.next.join("\n");
    assert!(next.contains("fence on the source was lifted"), "{next}");
    assert!(next.contains("ragshift replicate cutover"), "{next}");
    assert!(report.removed.is_empty() && report.index.is_none());

    // Un-fenced, and still replicating: a new write on the source reaches the target.
    assert_eq!(fences(&p.source).await, 0);
    p.source
        .batch_execute(
            "UPDATE items SET content = 'after the refusal' WHERE id = '01000000000000000000000001'",
        )
        .await
        .expect("the source takes writes again");
    poll_status(&p.sides, "the write after the refusal", |s| s.caught_up).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        &p.target,
        "SELECT count(*) FROM items WHERE content = 'after the refusal'",
    )
    .await
        != 1
    {
        assert!(Instant::now() < deadline, "replication stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let objects = record::objects(&p.target, &p.sides.journal, &report.run_id)
        .await
        .unwrap();
    let fence_unit = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Fence)
        .expect("the fence is journaled");
    assert!(fence_unit.removed && !fence_unit.created, "{fence_unit:?}");

    // Repaired, the next cutover goes through and fences again.
    let original: String = scalar(
        &p.source,
        &format!("SELECT content FROM items WHERE id = '{id}'"),
    )
    .await;
    p.target
        .execute(
            &format!("UPDATE items SET content = $1 WHERE id = '{id}'"),
            &[&original],
        )
        .await
        .unwrap();
    let report = cutover(&p.sides, &options(), &mut |_| {}).await.unwrap();
    assert!(report.passed, "{:#?}", report.verify.failures);
    assert!(report.fence.as_ref().unwrap().in_place);
    assert_eq!(fences(&p.source).await, 2);
    assert_eq!(all_rows(&p.source).await, all_rows(&p.target).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_removes_what_the_run_recorded_not_what_the_configuration_names() {
    let p = pair(PgCluster::builder().logical_replication().start()).await;
    let started = start(&p.sides, &StartOptions::default()).await.unwrap();
    let run = started.names.unwrap().run_id;
    // Another table the configuration now names, which this run never created.
    p.target
        .batch_execute("CREATE TABLE other_items (id text PRIMARY KEY); INSERT INTO other_items VALUES ('keep me')")
        .await
        .unwrap();
    // The extension as if the start had died between creating it and recording that.
    p.target
        .execute(
            "UPDATE ragshift.units SET status = 'queued' WHERE run_id = $1 AND unit_kind = 'extension'",
            &[&run],
        )
        .await
        .unwrap();
    let mut changed = p.sides.clone();
    changed.layout = Layout::default().with_table("other_items");

    let report = abort(&changed).await.unwrap();
    assert_eq!(report.run_id.as_deref(), Some(run.as_str()));
    let removed = report.removed.join("\n");
    assert!(removed.contains("table public.items"), "{removed}");
    assert!(!removed.contains("other_items"), "{removed}");
    assert!(!removed.contains("extension"), "{removed}");
    let left = report.left.join("\n");
    assert!(
        left.contains("extension vector on the target") && left.contains("never recorded"),
        "{left}"
    );
    assert_eq!(
        count(&p.target, "SELECT count(*) FROM other_items").await,
        1,
        "the table the configuration names now is untouched"
    );
    assert_eq!(
        count(
            &p.target,
            "SELECT count(*) FROM pg_class WHERE relname = 'items'"
        )
        .await,
        0,
        "the table the run created is gone"
    );
    assert_eq!(
        count(
            &p.target,
            "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
        )
        .await,
        1
    );
    for (c, sql) in [
        (&p.source, "SELECT count(*) FROM pg_publication"),
        (&p.source, "SELECT count(*) FROM pg_replication_slots"),
        (&p.target, "SELECT count(*) FROM pg_subscription"),
    ] {
        assert_eq!(count(c, sql).await, 0, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_setting_the_user_may_not_change_is_named() {
    let cluster = PgCluster::builder().setting("log_statement", "ddl").start();
    let url = cluster.fresh_database("quiet_log");
    let admin = cluster.connect(&url).await;
    // The superuser keeps the statement out of the log.
    assert_eq!(subscription::quiet_log(&admin).await, Vec::new());
    subscription::loud_log(&admin).await;
    assert_eq!(
        scalar::<String>(&admin, "SHOW log_statement").await,
        "ddl",
        "reset afterwards"
    );

    admin
        .batch_execute("CREATE ROLE plain_user LOGIN PASSWORD 'plain-pw'")
        .await
        .unwrap();
    let db = url.rsplit('/').next().unwrap();
    let plain = cluster
        .connect(&format!(
            "postgres://plain_user:plain-pw@{}:{}/{db}",
            cluster.host(),
            cluster.port()
        ))
        .await;
    let leaks = subscription::quiet_log(&plain).await;
    let statement = leaks
        .iter()
        .find(|l| l.setting == "log_statement")
        .unwrap_or_else(|| panic!("{leaks:?}"));
    assert_eq!(statement.value, "ddl");
    assert!(!statement.on_error_only);
    let warning = subscription::leak_warning(&leaks).unwrap();
    assert!(warning.contains("log_statement = ddl"), "{warning}");
    assert!(warning.contains("password"), "{warning}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_prerequisites_are_named_and_nothing_is_created() {
    // A source without wal_level = logical.
    let p = pair(PgCluster::start()).await;
    let err = start(&p.sides, &StartOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ReplicateErrorKind::Prerequisites);
    let text = err.to_string();
    assert!(text.contains("wal_level is replica"), "{text}");
    assert!(
        text.contains("ALTER SYSTEM SET wal_level = logical"),
        "{text}"
    );
    assert!(text.contains("nothing was created"), "{text}");
    assert!(!text.contains(p.sides.source.libpq_conninfo().expose()));

    assert_none_left(&p, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_the_target_cannot_reach_is_found_before_anything_is_created() {
    let mut p = pair(PgCluster::builder().logical_replication().start()).await;
    // ragshift reaches the source, but the address the target server is told answers nothing.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    p.sides.source_from_target = Some(p.sides.source.with_address("127.0.0.1", Some(closed_port)));
    let err = start(&p.sides, &StartOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ReplicateErrorKind::Prerequisites);
    let text = err.to_string();
    assert!(text.contains("route to the source"), "{text}");
    assert!(text.contains("could not connect"), "{text}");
    assert!(text.contains(&format!(":{closed_port}/")), "{text}");
    assert!(text.contains("nothing was created"), "{text}");
    assert!(!text.contains("ragshift-test-password"), "{text}");
    assert!(!text.contains(p.sides.source.libpq_conninfo().expose()));

    assert_none_left(&p, true).await;

    // The same start through the right address works.
    p.sides.source_from_target = None;
    let report = start(&p.sides, &StartOptions { dry_run: true })
        .await
        .unwrap();
    assert!(report.plan.ready(), "{:?}", report.plan.checks);
    assert_eq!(
        count(&p.target, "SELECT count(*) FROM pg_subscription").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_leaves_both_clusters_as_they_were() {
    let p = pair(PgCluster::builder().logical_replication().start()).await;
    let layout = Layout::default();
    let before = bot_checksums(&p.source, &layout, None).await.unwrap();
    start(&p.sides, &StartOptions::default()).await.unwrap();
    // A second start is refused while one runs.
    let err = start(&p.sides, &StartOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ReplicateErrorKind::AlreadyStarted);

    let report = abort(&p.sides).await.unwrap();
    assert!(report.run_id.is_some());
    assert!(report.left.is_empty(), "{:?}", report.left);
    let removed = report.removed.join("\n");
    assert!(removed.contains("publication ragshift_pub_"), "{removed}");
    assert!(removed.contains("subscription ragshift_sub_"), "{removed}");
    assert!(removed.contains("table public.items"), "{removed}");

    assert_none_left(&p, false).await;
    assert_eq!(
        bot_checksums(&p.source, &layout, None).await.unwrap(),
        before
    );
    // Nothing left to abort; status says none is running.
    assert!(abort(&p.sides).await.unwrap().run_id.is_none());
    assert_eq!(
        status(&p.sides).await.unwrap_err().kind(),
        ReplicateErrorKind::NotStarted
    );
}
