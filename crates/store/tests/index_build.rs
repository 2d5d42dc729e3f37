//! The one index-build engine against a real PostgreSQL with pgvector: the memory it gives a
//! build (the documented estimate, within the server's default and the cap, with a warning
//! exactly when the estimate is over the cap) and the progress it reads from
//! `pg_stat_progress_create_index` while the build runs.

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ragshift_store::index_build::{
    build_index, BuildLimits, IndexBuild, IndexBuildOptions, IndexEvent, IndexShape, MB,
};
use ragshift_store::{connect, ConnectSpec};
use ragshift_testkit::shared_pg;

/// A fresh database whose sessions start with `maintenance_work_mem = 1MB`, so that the
/// estimate (not the server's default) decides; and a table `t` of `rows` random
/// `vector(dims)`.
async fn table(prefix: &str, rows: u64, dims: u32) -> (ConnectSpec, tokio_postgres::Client) {
    let url = shared_pg().fresh_database(prefix);
    let spec = ConnectSpec::from_url(&url, None, None).unwrap();
    let setup = connect(&spec, "ragshift-test").await.unwrap();
    setup
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS vector;
             DO $$ BEGIN
               EXECUTE format('ALTER DATABASE %I SET maintenance_work_mem = %L', current_database(), '1MB');
             END $$;
             CREATE TABLE t (id bigint PRIMARY KEY, e vector({dims}));
             INSERT INTO t SELECT i, (SELECT array_agg(random()::real) FROM generate_series(1, {dims}) WHERE i > 0)::vector
               FROM generate_series(1, {rows}) i;"
        ))
        .await
        .unwrap();
    // A new session, which starts with the database's setting.
    let client = connect(&spec, "ragshift-test").await.unwrap();
    (spec, client)
}

/// Collects what the engine reports.
fn recorder() -> (Arc<Mutex<Vec<IndexEvent>>>, IndexBuildOptions) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = IndexBuildOptions {
        limits: BuildLimits::default(),
        observer: Some(Arc::new(move |e: &IndexEvent| {
            sink.lock().unwrap().push(e.clone())
        })),
    };
    (seen, options)
}

async fn valid(client: &tokio_postgres::Client, index: &str) -> bool {
    client
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
            &[&index],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn memory_is_the_estimate_within_the_cap_and_a_warning_says_when_it_is_over() {
    let (rows, dims, m) = (3000u64, 64u64, 16u64);
    let (spec, mut client) = table("index_memory", rows, dims as u32).await;
    // The documented HNSW estimate: rows × (8 + 4 × dims + 32 × m + 272) + 4 MB.
    let estimate = rows * (8 + 4 * dims + 32 * m + 272) + 4 * MB;
    let chosen = estimate.next_multiple_of(1024);
    let sql = "CREATE INDEX t_e ON public.t USING hnsw (e vector_l2_ops)";
    let build = IndexBuild {
        schema: "public",
        table: "t",
        name: "t_e",
        sql,
        rows: None,
        parallel_workers: None,
    };
    // (cap, what the build gets, whether it fits)
    let cases = [
        (64 * MB, chosen, true),
        (chosen, chosen, true), // the cap exactly the estimate: no warning
        (2 * MB, 2 * MB, false),
    ];
    for (cap, expected, fits) in cases {
        let (seen, mut options) = recorder();
        options.limits = BuildLimits {
            max_memory: Some(cap),
            parallel_workers: Some(0),
            ..BuildLimits::default()
        };
        let built = build_index(&mut client, Some(&spec), &build, &options)
            .await
            .unwrap();
        let plan = &built.memory;
        assert_eq!(plan.shape, IndexShape::Hnsw { m: 16 });
        assert_eq!((plan.rows, plan.value_bytes), (rows, 8 + 4 * dims));
        assert_eq!(plan.estimate_bytes, estimate);
        assert_eq!(plan.server_bytes, MB, "the database's own setting");
        assert_eq!(plan.cap_bytes, cap);
        // As the server reported it back inside the build's transaction.
        assert_eq!(plan.chosen_bytes, expected, "cap {cap}");
        assert_eq!(plan.fits, fits, "cap {cap}");
        match &plan.warning {
            None => assert!(fits, "cap {cap}: no warning though the estimate is over it"),
            Some(w) => {
                assert!(!fits, "cap {cap}: a warning though it fits: {w}");
                for part in [
                    "t_e",
                    "public.t",
                    "needs about 7 MB",
                    "much slower",
                    "[index] max_memory = \"7MB\"",
                    "--index-max-memory 7MB",
                ] {
                    assert!(w.contains(part), "{part:?} missing from: {w}");
                }
            }
        }
        let events = seen.lock().unwrap().clone();
        assert!(
            matches!(events.first(), Some(IndexEvent::IndexMemory(p)) if p == plan),
            "the plan is reported before the build: {events:?}"
        );
        assert!(valid(&client, "public.t_e").await, "cap {cap}");
        assert_eq!(built.tuples, rows);
        client.batch_execute("DROP INDEX t_e").await.unwrap();
    }
}

#[tokio::test]
async fn progress_is_read_from_the_server_while_the_build_runs() {
    let rows = 500u64;
    let (spec, client) = table("index_progress", rows, 3).await;
    // Every row's indexed value passes a gate the test holds closed: the build has started
    // (its progress row is there) and can't finish until the test has seen it.
    client
        .batch_execute(
            "CREATE FUNCTION gate(v vector) RETURNS vector LANGUAGE plpgsql IMMUTABLE AS $$
               BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN v; END $$;",
        )
        .await
        .unwrap();
    let holder = connect(&spec, "ragshift-test gate").await.unwrap();
    holder
        .batch_execute("SELECT pg_advisory_lock(4242)")
        .await
        .unwrap();

    let (seen, mut options) = recorder();
    options.limits.parallel_workers = Some(0);
    let task_spec = spec.clone();
    let mut builder = client;
    let build = tokio::spawn(async move {
        build_index(
            &mut builder,
            Some(&task_spec),
            &IndexBuild {
                schema: "public",
                table: "t",
                name: "t_gated",
                sql: "CREATE INDEX t_gated ON public.t USING hnsw ((gate(e)::vector(3)) vector_l2_ops)",
                rows: None,
                parallel_workers: None,
            },
            &options,
        )
        .await
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let found = seen.lock().unwrap().iter().find_map(|e| match e {
            IndexEvent::IndexProgress(p) if !p.done && p.phase.starts_with("building index") => {
                Some(p.clone())
            }
            _ => None,
        });
        if let Some(p) = found {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no progress while the build waited at the gate: {:?}",
            seen.lock().unwrap()
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!build.is_finished(), "the gate is still closed");
    assert_eq!(
        (running.index.as_str(), running.table.as_str()),
        ("t_gated", "public.t")
    );
    assert!(running.blocks_total > 0, "{running:?}");

    holder
        .batch_execute("SELECT pg_advisory_unlock(4242)")
        .await
        .unwrap();
    let built = build.await.unwrap().unwrap();
    assert_eq!(built.tuples, rows);
    let events = seen.lock().unwrap().clone();
    let last = match events.last() {
        Some(IndexEvent::IndexProgress(p)) => p.clone(),
        other => panic!("the build ends with a progress report: {other:?}"),
    };
    assert!(last.done, "{last:?}");
    assert_eq!((last.tuples_done, last.phase.as_str()), (rows, "done"));
    assert!(valid(&holder, "public.t_gated").await);
}

#[tokio::test]
async fn ivfflat_gets_its_estimate_and_a_refused_build_says_what_to_set() {
    let (spec, mut client) = table("index_ivfflat", 3000, 64).await;
    let sql = "CREATE INDEX t_ivf ON public.t USING ivfflat (e vector_l2_ops) WITH (lists = 50)";
    let build = IndexBuild {
        schema: "public",
        table: "t",
        name: "t_ivf",
        sql,
        rows: None,
        parallel_workers: None,
    };
    // Exactly 1 MB: pgvector's k-means doesn't fit, and the error says what to set.
    let (_, mut options) = recorder();
    options.limits = BuildLimits {
        memory: Some(MB),
        parallel_workers: Some(0),
        ..BuildLimits::default()
    };
    let err = build_index(&mut client, Some(&spec), &build, &options)
        .await
        .unwrap_err()
        .to_string();
    for part in [
        "memory required is",
        "t_ivf",
        "[index] max_memory",
        "--index-max-memory",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    // Its estimate: enough for pgvector.
    options.limits.memory = None;
    options.limits.max_memory = Some(256 * MB);
    let built = build_index(&mut client, Some(&spec), &build, &options)
        .await
        .unwrap();
    assert_eq!(built.memory.shape, IndexShape::Ivfflat { lists: 50 });
    assert!(
        built.memory.fits && built.memory.chosen_bytes > MB,
        "{:?}",
        built.memory
    );
    assert!(valid(&client, "public.t_ivf").await);
}
