//! The store against a real PostgreSQL with pgvector (started by ragshift-testkit).

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should panic loudly.
#![allow(clippy::unwrap_used)]

use ragshift_config::SslMode;
use ragshift_model::StoredRow;
use ragshift_store::index::{ensure_vector_index, vector_indexes, IndexOutcome, VectorIndex};
use ragshift_store::journal::{Journal, Status, UnitResult};
use ragshift_store::lock::TargetLock;
use ragshift_store::schema::{init_target, read_shape, InitOutcome};
use ragshift_store::search::search;
use ragshift_store::writer::{replace_bot, BotReplacement};
use ragshift_store::BotRows;
use ragshift_store::{connect, ConnectSpec, Layout, StoreErrorKind};
use ragshift_testkit::sql::{column, scalar};
use ragshift_testkit::{shared_pg, PgCluster};

fn ulid(n: u64) -> String {
    // 26 characters from Crockford's alphabet, distinct per n.
    format!("01J{n:0>23}")
}

fn bot(n: u64) -> String {
    format!("B{n:0>25}")
}

fn row(bot_id: &str, n: u64, embedding: Vec<f32>) -> StoredRow {
    StoredRow {
        id: ulid(n),
        bot_id: bot_id.to_owned(),
        content: format!("chunk {n} of {bot_id}: Xin chào thế giới"),
        source: format!("s3://bucket/{bot_id}/doc{n}.txt"),
        embedding,
    }
}

async fn fresh(prefix: &str) -> (ConnectSpec, tokio_postgres::Client) {
    let url = shared_pg().fresh_database(prefix);
    let spec = ConnectSpec::from_url(&url, None, None).unwrap();
    let client = connect(&spec, "ragshift-test").await.unwrap();
    (spec, client)
}

/// Replaces `bot_id`'s rows with `rows` in the bot-keyed table `layout` names.
async fn write_bot(
    client: &mut tokio_postgres::Client,
    layout: &Layout,
    bot_id: &str,
    rows: Vec<StoredRow>,
) -> ragshift_store::writer::ReplaceCounts {
    replace_bot(client, &BotRows::bot_column(layout.clone()), bot_id, rows)
        .await
        .unwrap()
}

/// A fresh store of the default layout with `vector(3)` embeddings holding bot 1's rows
/// 1..=`a_rows` (row n's vector `[n, tail…]`) and bot 2's one row `b` (number, vector); returns
/// the client, the layout and both bot ids.
async fn two_bots(
    prefix: &str,
    a_rows: u64,
    tail: [f32; 2],
    b: (u64, [f32; 3]),
) -> (tokio_postgres::Client, Layout, String, String) {
    let (_, mut client) = fresh(prefix).await;
    let layout = Layout::default();
    init_target(&mut client, &layout, 3).await.unwrap();
    let (a_id, b_id) = (bot(1), bot(2));
    let a_rows = (1..=a_rows)
        .map(|n| row(&a_id, n, vec![n as f32, tail[0], tail[1]]))
        .collect();
    write_bot(&mut client, &layout, &a_id, a_rows).await;
    write_bot(
        &mut client,
        &layout,
        &b_id,
        vec![row(&b_id, b.0, b.1.to_vec())],
    )
    .await;
    (client, layout, a_id, b_id)
}

async fn ids_of(client: &tokio_postgres::Client, bot_id: &str) -> Vec<String> {
    client
        .query(
            "SELECT id::text FROM items WHERE botid = $1 ORDER BY id",
            &[&bot_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn init_target_creates_once_then_leaves_the_table_alone() {
    let (_, mut client) = fresh("init").await;
    let layout = Layout::default();
    assert_eq!(
        init_target(&mut client, &layout, 4).await.unwrap(),
        InitOutcome::Created
    );
    let shape = read_shape(&client, &layout).await.unwrap().unwrap();
    assert_eq!(
        shape.to_string(),
        "(id character(26), botid character(26), content text, source text, embedding vector(4))"
    );
    // The btree on botid exists; no vector index is built on the empty table.
    let idx: Vec<String> = column(
        &client,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'items' ORDER BY indexname",
    )
    .await;
    assert!(idx.iter().any(|d| d.contains("(botid)")), "{idx:?}");
    assert!(
        !idx.iter()
            .any(|d| d.contains("hnsw") || d.contains("ivfflat")),
        "{idx:?}"
    );

    write_bot(
        &mut client,
        &layout,
        &bot(1),
        vec![row(&bot(1), 1, vec![0.0; 4])],
    )
    .await;
    assert_eq!(
        init_target(&mut client, &layout, 4).await.unwrap(),
        InitOutcome::AlreadyPresent
    );
    assert_eq!(
        ids_of(&client, &bot(1)).await.len(),
        1,
        "rows survive a second init"
    );
}

#[tokio::test]
async fn init_target_accepts_a_pre_created_table_with_other_text_types() {
    let (_, mut client) = fresh("shape_text").await;
    client
        .batch_execute(
            "CREATE EXTENSION vector;
             CREATE TABLE items (id varchar PRIMARY KEY, botid text, content text, source varchar(400),
                                 embedding vector(4));",
        )
        .await
        .unwrap();
    let layout = Layout::default();
    assert_eq!(
        init_target(&mut client, &layout, 4).await.unwrap(),
        InitOutcome::AlreadyPresent
    );
    let err = init_target(&mut client, &layout, 8).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::DimensionMismatch, "{err}");
}

#[tokio::test]
async fn init_target_refuses_a_table_of_another_shape_and_changes_nothing() {
    let (_, mut client) = fresh("shape").await;
    client
        .batch_execute(
            "CREATE EXTENSION vector;
             CREATE TABLE items (id text PRIMARY KEY, bot text, body text);
             INSERT INTO items VALUES ('a', 'b', 'c');",
        )
        .await
        .unwrap();
    let layout = Layout::default();
    let before = read_shape(&client, &layout).await.unwrap().unwrap();
    let err = init_target(&mut client, &layout, 4).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::ShapeMismatch);
    let msg = err.to_string();
    assert!(
        msg.contains("found:    (id text, bot text, body text)"),
        "{msg}"
    );
    assert!(msg.contains("expected: (id character(26)"), "{msg}");
    assert_eq!(read_shape(&client, &layout).await.unwrap().unwrap(), before);
    assert_eq!(
        scalar::<i64>(&client, "SELECT count(*) FROM items").await,
        1
    );
}

#[tokio::test]
async fn dimension_mismatch_is_its_own_error() {
    let (_, mut client) = fresh("dims").await;
    let layout = Layout::default();
    init_target(&mut client, &layout, 1024).await.unwrap();
    let err = init_target(&mut client, &layout, 384).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::DimensionMismatch);
    assert!(err.to_string().contains("vector(1024)"), "{err}");
    assert!(err.to_string().contains("384"), "{err}");
}

#[tokio::test]
async fn configured_names_are_quoted() {
    let (_, mut client) = fresh("quoted").await;
    let layout = Layout {
        schema: "Rag Schema".into(),
        table: "Items; DROP TABLE x".into(),
        bot: "Bot Id".into(),
        ..Layout::default()
    };
    init_target(&mut client, &layout, 3).await.unwrap();
    write_bot(
        &mut client,
        &layout,
        &bot(1),
        vec![row(&bot(1), 1, vec![1.0, 0.0, 0.0])],
    )
    .await;
    assert_eq!(
        scalar::<i64>(
            &client,
            "SELECT count(*) FROM \"Rag Schema\".\"Items; DROP TABLE x\"",
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_failure_mid_copy_leaves_the_old_rows() {
    let (mut client, layout, a, b) = two_bots("atomic", 3, [0.0, 0.0], (50, [0.0, 1.0, 0.0])).await;
    let old_a = ids_of(&client, &a).await;
    assert_eq!(old_a.len(), 3);

    // New rows for bot A: the 2nd batch carries a row the server rejects (a NUL byte in text),
    // after the DELETE ran and other rows were streamed.
    let failed = {
        let mut rep = BotReplacement::begin(&mut client, &BotRows::bot_column(layout.clone()), &a)
            .await
            .unwrap();
        rep.write((10..20).map(|n| row(&a, n, vec![0.5; 3])).collect())
            .await
            .unwrap();
        let mut bad = row(&a, 20, vec![0.5; 3]);
        bad.content = "broken \0 text".into();
        match rep.write(vec![bad, row(&a, 21, vec![0.5; 3])]).await {
            Err(e) => Some(e),
            Ok(()) => rep.finish().await.err(),
        }
    };
    assert!(failed.is_some(), "the bad row must fail the replacement");

    assert_eq!(ids_of(&client, &a).await, old_a, "old rows of A are intact");
    assert_eq!(ids_of(&client, &b).await.len(), 1, "other bots untouched");

    // A good replacement then swaps the rows completely.
    let counts = write_bot(
        &mut client,
        &layout,
        &a,
        (30..35).map(|n| row(&a, n, vec![0.1; 3])).collect(),
    )
    .await;
    assert_eq!((counts.written, counts.deleted), (5, 3));
    assert_eq!(
        ids_of(&client, &a).await,
        (30..35).map(ulid).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn rows_of_the_wrong_dimension_are_refused_before_sending() {
    let (_, mut client) = fresh("rowdim").await;
    let layout = Layout::default();
    init_target(&mut client, &layout, 3).await.unwrap();
    let a = bot(1);
    let err = replace_bot(
        &mut client,
        &BotRows::bot_column(layout.clone()),
        &a,
        vec![row(&a, 1, vec![1.0; 5])],
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::DimensionMismatch);
    assert!(err.to_string().contains(&a), "{err}");
}

#[tokio::test]
async fn filtered_search_returns_k_rows_through_an_approximate_index() {
    let (_, mut client) = fresh("search").await;
    let layout = Layout::default();
    init_target(&mut client, &layout, 8).await.unwrap();
    // 40 bots x 60 rows: an HNSW scan (ef_search 40) filtered to one bot would find ~1 row
    // without iterative scans.
    let mut n = 0u64;
    for b in 0..40u64 {
        let id = bot(b);
        let rows = (0..60)
            .map(|i| {
                n += 1;
                let v: Vec<f32> = (0..8)
                    .map(|d| ((n * 31 + d * 7 + i) % 97) as f32 / 97.0)
                    .collect();
                row(&id, n, v)
            })
            .collect();
        replace_bot(&mut client, &BotRows::bot_column(layout.clone()), &id, rows)
            .await
            .unwrap();
    }
    let built = ensure_vector_index(
        &mut client,
        &layout,
        VectorIndex::Hnsw {
            m: None,
            ef_construction: None,
        },
        "64MB",
    )
    .await
    .unwrap();
    assert!(matches!(built, IndexOutcome::Built { .. }));
    let again = ensure_vector_index(
        &mut client,
        &layout,
        VectorIndex::Ivfflat { lists: None },
        "64MB",
    )
    .await
    .unwrap();
    assert!(matches!(again, IndexOutcome::Present(ref i) if i.method == "hnsw"));

    // An untyped `vector` (LangChain's default column) can't be indexed as it is: said, not
    // attempted.
    let untyped = layout.with_table("untyped_items");
    client
        .batch_execute(
            "CREATE TABLE untyped_items (id text, botid text, content text, source text, embedding vector);
             INSERT INTO untyped_items VALUES ('a', 'b', 'c', 'd', '[1,2,3]')",
        )
        .await
        .unwrap();
    let err = ensure_vector_index(
        &mut client,
        &untyped,
        VectorIndex::Ivfflat { lists: None },
        "64MB",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("without dimensions"), "{err}");
    assert!(vector_indexes(&client, &untyped).await.unwrap().is_empty());

    // Make the HNSW scan the only plan, as on a big table: no btree on botid, no seq scan.
    client
        .batch_execute("DROP INDEX idx_items_botid; SET enable_seqscan = off;")
        .await
        .unwrap();
    let q = vec![0.5f32; 8];
    let hits = search(&mut client, &layout, &bot(7), &q, 20).await.unwrap();
    assert_eq!(hits.len(), 20);
    assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
    assert_eq!(hits[0].rank, 1);
    // Same answer as an exact scan.
    client
        .batch_execute(
            "RESET enable_seqscan; SET enable_indexscan = off; SET enable_bitmapscan = off;",
        )
        .await
        .unwrap();
    let exact: Vec<String> = client
        .query(
            "SELECT id::text FROM items WHERE botid = $1 ORDER BY embedding <-> $2 LIMIT 20",
            &[&bot(7), &pgvector::Vector::from(q.clone())],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let found: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
    let overlap = found.iter().filter(|id| exact.contains(id)).count();
    assert!(overlap >= 18, "recall {overlap}/20");
    assert!(search(&mut client, &layout, &bot(99), &q, 5)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_second_run_on_the_same_target_fails_fast_naming_the_holder() {
    let (spec, _client) = fresh("lock").await;
    let layout = Layout::default();
    let first = TargetLock::acquire(&spec, &layout, "rebuild run 01JRUNONE")
        .await
        .unwrap();
    let err = match TargetLock::acquire(&spec, &layout, "rebuild run 01JRUNTWO").await {
        Err(e) => e,
        Ok(_) => panic!("second lock must fail"),
    };
    assert_eq!(err.kind(), StoreErrorKind::Locked);
    assert!(err.to_string().contains("rebuild run 01JRUNONE"), "{err}");
    // Another table is another lock.
    let other = TargetLock::acquire(&spec, &layout.with_table("items_v2"), "copy")
        .await
        .unwrap();
    first.release().await.unwrap();
    let again = TargetLock::acquire(&spec, &layout, "rebuild run 01JRUNTWO")
        .await
        .unwrap();
    again.release().await.unwrap();
    other.release().await.unwrap();
}

#[tokio::test]
async fn the_journal_keeps_units_across_resumes() {
    journal_keeps_units_across_resumes(Journal::default()).await;
}

/// A schema name that needs quoting holds the whole journal, and nothing goes to `ragshift`.
#[tokio::test]
async fn the_journal_lives_in_the_configured_schema() {
    let client = journal_keeps_units_across_resumes(Journal::new("Journal-1")).await;
    let tables: Vec<String> = column(
        &client,
        "SELECT table_schema || '.' || table_name FROM information_schema.tables
              WHERE table_schema IN ('Journal-1', 'ragshift') ORDER BY 1",
    )
    .await;
    assert_eq!(
        tables,
        ["Journal-1.budgets", "Journal-1.runs", "Journal-1.units"]
    );
    assert!(
        !scalar::<bool>(&client, "SELECT to_regnamespace('ragshift') IS NOT NULL").await,
        "the default schema was created"
    );
    assert!(Journal::new("Journal-1").exists(&client).await.unwrap());
    assert!(!Journal::default().exists(&client).await.unwrap());
}

/// Works unit `unit` of run `run1` as a worker does: marks it running (as `exec_id`), then
/// records its end.
async fn work_unit(
    journal: &Journal,
    client: &tokio_postgres::Client,
    unit: &str,
    exec_id: Option<&str>,
    status: Status,
    result: &UnitResult,
) {
    journal
        .mark_running(client, "run1", unit, exec_id)
        .await
        .unwrap();
    journal
        .mark_finished(client, "run1", unit, status, result)
        .await
        .unwrap();
}

async fn journal_keeps_units_across_resumes(journal: Journal) -> tokio_postgres::Client {
    let (_, client) = fresh("journal").await;
    journal.ensure_schema(&client).await.unwrap();
    journal.ensure_schema(&client).await.unwrap();
    let sel = serde_json::json!({"bots": "all"});
    journal
        .start_run(&client, "run1", "rebuild", "db", &sel)
        .await
        .unwrap();
    let units = vec![
        ("b1".to_owned(), Some("u1".to_owned())),
        ("b2".to_owned(), None),
    ];
    journal
        .queue_units(&client, "run1", "bot", &units)
        .await
        .unwrap();
    let ok = UnitResult {
        row_count: Some(7),
        ..Default::default()
    };
    work_unit(
        &journal,
        &client,
        "b1",
        Some("task-1"),
        Status::Succeeded,
        &ok,
    )
    .await;
    let failed = UnitResult {
        error: Some("boom".into()),
        ..Default::default()
    };
    work_unit(&journal, &client, "b2", None, Status::Failed, &failed).await;
    // Resuming re-queues nothing that is already recorded.
    journal
        .start_run(&client, "run1", "rebuild", "db", &sel)
        .await
        .unwrap();
    journal
        .queue_units(&client, "run1", "bot", &units)
        .await
        .unwrap();
    let got = journal.units(&client, "run1").await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].status, got[0].row_count, got[0].attempts),
        (Status::Succeeded, Some(7), 1)
    );
    assert_eq!(got[0].owner.as_deref(), Some("u1"));
    assert_eq!(
        (got[1].status, got[1].error.as_deref()),
        (Status::Failed, Some("boom"))
    );
    journal
        .finish_run(
            &client,
            "run1",
            Status::Failed,
            &serde_json::json!({"failed": 1}),
            Some("1 unit failed"),
        )
        .await
        .unwrap();
    let latest = journal
        .latest_run(&client, Some("rebuild"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.run_id.as_str(), latest.status.as_str()),
        ("run1", "failed")
    );
    client
}

#[tokio::test]
async fn wrong_password_and_unreachable_hosts_are_clear_and_masked() {
    let pg = shared_pg();
    let url = format!(
        "postgres://{}:not-the-password@{}:{}/postgres",
        pg.user(),
        pg.host(),
        pg.port()
    );
    let spec = ConnectSpec::from_url(&url, Some(SslMode::Disable), None).unwrap();
    let err = connect(&spec, "t").await.err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Auth);
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    assert!(err.to_string().contains("****"), "{err}");

    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let spec = ConnectSpec::from_url(
        &format!("postgres://u:secretpw@127.0.0.1:{port}/db"),
        None,
        None,
    )
    .unwrap();
    let err = connect(&spec, "t").await.err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Connect);
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    assert!(!err.to_string().contains("secretpw"), "{err}");

    let missing_db = pg.url("no_such_database_here");
    let spec = ConnectSpec::from_url(&missing_db, None, None).unwrap();
    let err = connect(&spec, "t").await.err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Config);
    assert!(err.to_string().contains("no_such_database_here"), "{err}");
}

#[tokio::test]
async fn creating_the_extension_without_permission_says_who_can() {
    let pg = shared_pg();
    let admin_url = pg.fresh_database("noperm");
    let admin = pg.connect(&admin_url).await;
    let role = ragshift_testkit::unique_name("app");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'apppw'; GRANT CREATE ON SCHEMA public TO {role};"
        ))
        .await
        .unwrap();
    let dbname = admin_url.rsplit('/').next().unwrap();
    let url = format!(
        "postgres://{role}:apppw@{}:{}/{dbname}",
        pg.host(),
        pg.port()
    );
    let spec = ConnectSpec::from_url(&url, None, None).unwrap();
    let mut client = connect(&spec, "t").await.unwrap();
    let err = init_target(&mut client, &Layout::default(), 4)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Permission);
    assert!(err.to_string().contains("CREATE EXTENSION vector"), "{err}");
    assert!(
        !scalar::<bool>(&admin, "SELECT to_regclass('public.items') IS NOT NULL").await,
        "nothing was written"
    );
}

#[tokio::test]
async fn tls_verify_full_accepts_the_right_ca_and_refuses_another() {
    let cluster = PgCluster::builder().tls().start();
    let tls = cluster.tls().expect("tls files").clone();
    let server = cluster.server();
    let url = format!(
        "postgres://{}:{}@localhost:{}/postgres",
        server.user(),
        server.password(),
        server.port()
    );
    let ok = ConnectSpec::from_url(&url, Some(SslMode::VerifyFull), Some(&tls.ca_cert)).unwrap();
    let client = connect(&ok, "t").await.unwrap();
    assert!(
        scalar::<bool>(
            &client,
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .await,
        "the connection is encrypted"
    );

    let wrong =
        ConnectSpec::from_url(&url, Some(SslMode::VerifyFull), Some(&tls.other_ca_cert)).unwrap();
    let err = connect(&wrong, "t").await.err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Connect);

    // require encrypts without checking; verify-ca checks the chain but not the name.
    let require = ConnectSpec::from_url(&url, Some(SslMode::Require), None).unwrap();
    connect(&require, "t").await.unwrap();
    let by_ip = url.replace("localhost", "127.0.0.1");
    let ca_only =
        ConnectSpec::from_url(&by_ip, Some(SslMode::VerifyCa), Some(&tls.ca_cert)).unwrap();
    connect(&ca_only, "t").await.unwrap();
    let ca_wrong =
        ConnectSpec::from_url(&by_ip, Some(SslMode::VerifyCa), Some(&tls.other_ca_cert)).unwrap();
    assert!(connect(&ca_wrong, "t").await.is_err());
}

#[tokio::test]
async fn checksums_see_a_changed_float_a_missing_row_and_an_extra_row() {
    use ragshift_store::checksum::{bot_checksums, row_hashes};
    let (mut client, layout, a, b) =
        two_bots("checksum", 4, [0.5, 0.25], (9, [0.0, 0.0, 1.0])).await;
    let before = bot_checksums(&client, &layout, None).await.unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!((before[0].bot_id.as_str(), before[0].rows), (a.as_str(), 4));

    // Same rows written again in another order: same checksum.
    write_bot(
        &mut client,
        &layout,
        &a,
        (1..=4)
            .rev()
            .map(|n| row(&a, n, vec![n as f32, 0.5, 0.25]))
            .collect(),
    )
    .await;
    assert_eq!(bot_checksums(&client, &layout, None).await.unwrap(), before);

    let hashes_before = row_hashes(&client, &layout, &a).await.unwrap();
    client
        .batch_execute(&format!(
            "UPDATE items SET embedding = '[2,0.5,0.2500001]' WHERE id = '{}'",
            ulid(2)
        ))
        .await
        .unwrap();
    let changed = bot_checksums(&client, &layout, Some(std::slice::from_ref(&a)))
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].rows, 4);
    assert_ne!(changed[0].checksum, before[0].checksum, "one float changed");
    let hashes_after = row_hashes(&client, &layout, &a).await.unwrap();
    let differing: Vec<&String> = hashes_before
        .iter()
        .zip(&hashes_after)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| &x.0)
        .collect();
    assert_eq!(differing, vec![&ulid(2)]);

    client
        .batch_execute(&format!("DELETE FROM items WHERE id = '{}'", ulid(3)))
        .await
        .unwrap();
    let missing = bot_checksums(&client, &layout, Some(std::slice::from_ref(&a)))
        .await
        .unwrap();
    assert_eq!(missing[0].rows, 3);

    // NULL and empty text are different rows.
    client
        .batch_execute(&format!(
            "INSERT INTO items VALUES ('{}', '{b}', NULL, '', '[0,0,1]'), ('{}', '{b}', '', NULL, '[0,0,1]')",
            ulid(70),
            ulid(71)
        ))
        .await
        .unwrap();
    let extra = bot_checksums(&client, &layout, Some(std::slice::from_ref(&b)))
        .await
        .unwrap();
    assert_eq!(extra[0].rows, 3);
    let h = row_hashes(&client, &layout, &b).await.unwrap();
    assert_ne!(h[1].1, h[2].1);
}
