//! Logical replication between two real PostgreSQL clusters: start → initial sync → changes
//! on the source while replicating → catch-up → verified cutover; missing prerequisites create
//! nothing; abort leaves both clusters as they were.

use std::time::{Duration, Instant};

use ragshift_replicate::prerequisites::Level;
use ragshift_replicate::{
    abort, cutover, record, start, status, CutoverOptions, ReplicateErrorKind, ReplicationStatus,
    Sides, StartOptions,
};
use ragshift_store::checksum::bot_checksums;
use ragshift_store::index::{vector_indexes, VectorIndex};
use ragshift_store::schema::init_target;
use ragshift_store::{ConnectSpec, Layout};
use ragshift_testkit::PgCluster;
use tokio_postgres::Client;

const DIM: usize = 16;

fn seed_sql(bots: u32, rows: u32) -> String {
    format!(
        "INSERT INTO items
         SELECT lpad(b::text, 2, '0') || lpad(i::text, 24, '0'),
                'BOT' || lpad(b::text, 23, '0'),
                'chunk ' || i || ' of bot ' || b,
                's3://docs/u1/' || b || '/documents/f.pdf',
                (SELECT array_agg(sin(b * 100 + i * 7 + d)::real ORDER BY d) FROM generate_series(1, {DIM}) d)::vector
           FROM generate_series(1, {bots}) b, generate_series(1, {rows}) i"
    )
}

struct Pair {
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
    };
    Pair {
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
    let options = CutoverOptions {
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
        maintenance_work_mem: "64MB".into(),
    };
    let report = cutover(&p.sides, &options, &mut |s| steps.push(s.to_string()))
        .await
        .unwrap();
    assert!(report.passed, "{:#?}", report.verify.failures);
    assert!(report.verify.passed());
    assert_eq!(report.verify.retrieval.as_ref().unwrap().overlap_at_k, 1.0);
    assert!(report.index.as_ref().unwrap().built);
    assert!(report.left.is_empty(), "{:?}", report.left);
    assert!(steps.iter().any(|s| s.contains("verifying")), "{steps:?}");

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
    let (st, _) = record::latest(&p.target).await.unwrap().unwrap();
    assert_eq!(st, "succeeded");
    let err = status(&p.sides).await.unwrap_err();
    assert_eq!(err.kind(), ReplicateErrorKind::NotStarted);
    assert!(err.to_string().contains("succeeded"), "{err}");
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
    assert_eq!(
        count(
            &p.target,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'ragshift'"
        )
        .await,
        0,
        "not even the journal"
    );
    assert_eq!(
        count(
            &p.target,
            "SELECT count(*) FROM pg_class WHERE relname = 'items'"
        )
        .await,
        0
    );
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

    for (c, sql) in [
        (&p.source, "SELECT count(*) FROM pg_publication"),
        (&p.source, "SELECT count(*) FROM pg_replication_slots"),
        (&p.target, "SELECT count(*) FROM pg_subscription"),
        (
            &p.target,
            "SELECT count(*) FROM pg_class WHERE relname = 'items'",
        ),
        (
            &p.target,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'ragshift'",
        ),
    ] {
        assert_eq!(count(c, sql).await, 0, "{sql}");
    }

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
    assert_eq!(
        count(
            &p.target,
            "SELECT count(*) FROM pg_class WHERE relname = 'items'"
        )
        .await,
        0
    );
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
