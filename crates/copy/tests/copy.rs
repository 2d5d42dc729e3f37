//! The copy engine against two real PostgreSQL clusters: a source database on the shared
//! server and a private target cluster.

use std::sync::{Arc, Mutex};

use ragshift_copy::{copy, CopyOptions, Endpoints, Event};
use ragshift_store::{ConnectSpec, Layout};
use ragshift_testkit::sql::{column, scalar};
use ragshift_testkit::{shared_pg, PgCluster};

fn spec(url: &str) -> ConnectSpec {
    ConnectSpec::from_url(url, None, None).expect("test URL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_everything_with_indexes_and_verifies() {
    // The platform's table with awkward rows: empty and NULL content, NULL sources and
    // vectors, long and non-ASCII texts, rows without a bot, one big bot and many small ones.
    let (src_url, _) = shared_pg()
        .seeded_database("copy_src", &ragshift_testkit::awkward_items_indexed())
        .await;
    let target = PgCluster::start();
    let tgt_url = target.fresh_database("copy_tgt");
    let ep = Endpoints {
        source: spec(&src_url),
        source_layout: Layout::default(),
        target: spec(&tgt_url),
        target_layout: Layout::default(),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let opts = CopyOptions {
        jobs: 3,
        partition_rows: Some(300),
        ..CopyOptions::default()
    };
    let report = copy(&ep, &opts, Arc::new(move |e| sink.lock().unwrap().push(e)))
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(report.rows, 3000);
    assert!(report.partitions >= 10, "{}", report.partitions);
    let v = report.verify.as_ref().unwrap();
    assert_eq!((v.source_rows, v.target_rows), (3000, 3000));
    let verified = seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Verified { passed: true, .. }));
    assert!(verified);

    let t = target.connect(&tgt_url).await;
    let defs: Vec<String> = column(&t, "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'items'::regclass ORDER BY 1").await;
    assert_eq!(
        defs,
        vec![
            "CREATE INDEX idx_items_botid ON public.items USING btree (botid)",
            "CREATE INDEX idx_items_embedding ON public.items USING ivfflat (embedding) WITH (lists='10')",
            "CREATE UNIQUE INDEX items_pkey ON public.items USING btree (id)",
        ]
    );
    assert_eq!(scalar::<i64>(&t,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'p'",).await, 1,
        "the primary key is a constraint again, not only an index"
    );
    let stats: Vec<String> = column(
        &t,
        "SELECT attname::text FROM pg_stats WHERE tablename = 'items' ORDER BY 1",
    )
    .await;
    assert_eq!(
        stats,
        ["botid", "content", "id", "source"],
        "analyzed for the planner, without detoasting every vector"
    );

    // A second copy into the filled table is refused, naming the way out.
    let err = copy(&ep, &CopyOptions::default(), Arc::new(|_| {}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already holds rows") && err.contains("--resume"),
        "{err}"
    );
}
