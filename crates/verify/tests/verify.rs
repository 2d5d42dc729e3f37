//! Verification against real PostgreSQL + pgvector: identical stores pass with overlap@k 1.0;
//! a changed float, a missing row, an extra row, an orphan bot and a registry bot without rows
//! are each caught and named.

use ragshift_model::{Bot, BotKey, Knowledge};
use ragshift_store::index::{ensure_vector_index, VectorIndex};
use ragshift_store::schema::init_target;
use ragshift_store::Layout;
use ragshift_testkit::shared_pg;
use ragshift_verify::{verify, Options, Store};

const DIM: usize = 8;

/// `bots` bots of `rows` rows each, the same on every call.
fn seed_sql(bots: u32, rows: u32) -> String {
    ragshift_testkit::bot_rows(bots, rows, DIM)
}

fn bot_id(n: u32) -> String {
    format!("BOT{n:023}")
}

fn row_id(bot: u32, n: u32) -> String {
    format!("{bot:02}{n:024}")
}

async fn store_with_rows(prefix: &str) -> tokio_postgres::Client {
    store_with_rows_at(prefix).await.0
}

/// [`store_with_rows`], with the database's URL for more connections.
async fn store_with_rows_at(prefix: &str) -> (tokio_postgres::Client, String) {
    let pg = shared_pg();
    let url = pg.fresh_database(prefix);
    let mut client = pg.connect(&url).await;
    init_target(&mut client, &Layout::default(), DIM)
        .await
        .expect("create the table");
    client
        .batch_execute(&seed_sql(3, 40))
        .await
        .expect("seed rows");
    (client, url)
}

/// `source` and `target` as verify's two sides, both in `layout`.
fn stores<'a>(
    source: &'a tokio_postgres::Client,
    target: &'a tokio_postgres::Client,
    layout: &'a Layout,
) -> (Store<'a>, Store<'a>) {
    let side = |client, label| Store {
        client,
        layout,
        label,
        beside: None,
    };
    (side(source, "source"), side(target, "target"))
}

fn registry(bots: &[u32]) -> Vec<Bot> {
    bots.iter()
        .map(|n| {
            let mut b = Bot::new(BotKey::new("u1", bot_id(*n)), format!("bot {n}"));
            b.knowledge = Knowledge {
                filenames: vec!["f.pdf".into()],
                ..Knowledge::default()
            };
            b
        })
        .collect()
}

#[tokio::test]
async fn identical_stores_pass_with_full_overlap_and_report_index_recall() {
    let source = store_with_rows("verify_same_src").await;
    let (mut target, target_url) = store_with_rows_at("verify_same_tgt").await;
    let layout = Layout::default();
    ensure_vector_index(
        &mut target,
        &layout,
        VectorIndex::Ivfflat { lists: Some(4) },
        "64MB",
    )
    .await
    .unwrap();
    let (s, t) = stores(&source, &target, &layout);
    let options = Options {
        registry: Some(registry(&[1, 2, 3])),
        queries: 4,
        k: 10,
        ..Options::default()
    };
    let report = verify(&s, &t, &options).await.unwrap();
    assert!(report.passed(), "{:#?}", report.failures);
    assert_eq!(report.checksums.bots_matching, 3);
    assert_eq!(report.checksums.source_rows, 120);
    let r = report.retrieval.as_ref().unwrap();
    assert_eq!(r.overlap_at_k, 1.0);
    assert_eq!(r.queries, 12);
    assert_eq!(r.bots, 3);
    assert_eq!(
        r.overlap_by_checksum, 3,
        "equal checksums: exact search ran once"
    );
    let index = r.index.as_ref().expect("the ivfflat index is reported");
    assert_eq!(index.method, "ivfflat");
    assert!(
        r.settings.contains_key("ivfflat.probes"),
        "{:?}",
        r.settings
    );
    assert!((0.0..=1.0).contains(&r.recall_at_k));
    let cov = report.coverage.as_ref().unwrap();
    assert_eq!(cov.with_knowledge, 3);
    assert!(cov.without_rows.is_empty() && cov.orphans.is_empty());

    // The platform's query is run only where its plan uses the vector index; a plan without it
    // is an exact search, recall 1 by construction. Steer the target session's planner each
    // way (verify runs on the session it is given).
    target
        .batch_execute("SET enable_indexscan = off")
        .await
        .unwrap();
    let exact_plans = verify(&s, &t, &options).await.unwrap();
    let r = exact_plans.retrieval.as_ref().unwrap();
    assert_eq!((r.exact_by_plan, r.index_used_bots), (12, 0));
    assert_eq!((r.recall_at_k, r.short_results), (1.0, 0));
    target
        .batch_execute("RESET enable_indexscan; SET enable_sort = off; SET enable_seqscan = off")
        .await
        .unwrap();
    let index_plans = verify(&s, &t, &options).await.unwrap();
    let r = index_plans.retrieval.as_ref().unwrap();
    assert_eq!((r.exact_by_plan, r.index_used_bots), (0, 3));
    // ivfflat with 4 lists and one probe sees about a quarter of a bot's 40 rows: fewer than
    // k = 10 answers for some queries, and recall below 1.
    assert!(r.short_results > 0 && r.recall_at_k < 1.0, "{r:#?}");

    // Given a second connection, the platform's queries run there, beside the checksums: that
    // session's planner decides, and the report is the one-connection report.
    let beside = shared_pg().connect(&target_url).await;
    beside
        .batch_execute("SET enable_sort = off; SET enable_seqscan = off")
        .await
        .unwrap();
    target
        .batch_execute("RESET enable_sort; RESET enable_seqscan; SET enable_indexscan = off")
        .await
        .unwrap();
    let t2 = Store {
        beside: Some(&beside),
        ..t
    };
    let two = verify(&s, &t2, &options).await.unwrap();
    assert!(two.passed(), "{:#?}", two.failures);
    let r2 = two.retrieval.as_ref().unwrap();
    assert_eq!(
        (r2.exact_by_plan, r2.index_used_bots, r2.short_results),
        (r.exact_by_plan, r.index_used_bots, r.short_results)
    );
    assert_eq!(
        (r2.recall_at_k, r2.overlap_at_k),
        (r.recall_at_k, r.overlap_at_k)
    );
    assert_eq!(two.checksums.bots_matching, 3);
}

#[tokio::test]
async fn each_kind_of_difference_is_caught_and_named() {
    let source = store_with_rows("verify_diff_src").await;
    let target = store_with_rows("verify_diff_tgt").await;
    // One float of one vector of bot 1, a missing row of bot 2, an extra row of bot 3.
    let changed = row_id(1, 5);
    target
        .execute(
            "UPDATE items SET embedding = (SELECT (array_agg(CASE WHEN o = 3 THEN v + 1e-6 ELSE v END ORDER BY o))::vector
                 FROM unnest(embedding::real[]) WITH ORDINALITY AS x(v, o)) WHERE id = $1",
            &[&changed],
        )
        .await
        .unwrap();
    let missing = row_id(2, 7);
    target
        .execute("DELETE FROM items WHERE id = $1", &[&missing])
        .await
        .unwrap();
    let extra = row_id(3, 99);
    target
        .execute(
            "INSERT INTO items SELECT $1, botid, content, source, embedding FROM items WHERE id = $2",
            &[&extra, &row_id(3, 1)],
        )
        .await
        .unwrap();
    // An orphan bot in the target (on the source too, as a copy would bring it along).
    for c in [&source, &target] {
        c.batch_execute(
            "INSERT INTO items SELECT '99' || substr(id, 3), 'BOT' || lpad('9', 23, '0'), content, source, embedding
               FROM items WHERE botid = 'BOT' || lpad('1', 23, '0') AND id <= '01' || lpad('3', 24, '0')",
        )
        .await
        .unwrap();
    }
    let layout = Layout::default();
    let (s, t) = stores(&source, &target, &layout);
    // Bot 4 has knowledge but no rows anywhere.
    let options = Options {
        registry: Some(registry(&[1, 2, 3, 4])),
        queries: 40,
        k: 40,
        ..Options::default()
    };
    let report = verify(&s, &t, &options).await.unwrap();
    assert!(!report.passed());
    let diffs = &report.checksums.different;
    let by_bot = |n: u32| diffs.iter().find(|d| d.bot_id == bot_id(n)).unwrap();
    assert_eq!(by_bot(1).changed_ids, vec![changed.clone()]);
    assert!(by_bot(1).missing_ids.is_empty() && by_bot(1).extra_ids.is_empty());
    assert_eq!(by_bot(2).missing_ids, vec![missing]);
    assert_eq!((by_bot(2).source_rows, by_bot(2).target_rows), (40, 39));
    assert_eq!(by_bot(3).extra_ids, vec![extra]);
    assert_eq!(diffs.len(), 3);

    let cov = report.coverage.as_ref().unwrap();
    assert_eq!(cov.without_rows, vec![BotKey::new("u1", bot_id(4))]);
    assert_eq!(cov.orphans.len(), 1);
    assert_eq!(cov.orphans[0].bot_id, bot_id(9));
    assert_eq!(cov.orphans[0].rows, 3);
    let text = report.failures.join("\n");
    assert!(
        text.contains("orphan") && text.contains(&bot_id(4)),
        "{text}"
    );

    // Exact answers disagree for bots 2 and 3 (a row fewer / more among k = all rows); the
    // changed float moves a distance by ~1e-6, which may or may not reorder bot 1.
    let r = report.retrieval.as_ref().unwrap();
    let disagreeing: Vec<&str> = r.disagreeing.iter().map(|b| b.bot_id.as_str()).collect();
    assert!(disagreeing.contains(&bot_id(2).as_str()), "{disagreeing:?}");
    assert!(disagreeing.contains(&bot_id(3).as_str()), "{disagreeing:?}");
    // Only the orphan bot 9 is the same on both sides; the three that differ were searched on
    // both.
    assert_eq!(r.overlap_by_checksum, 1);

    // Orphans may be allowed; narrowing to one good bot passes.
    let narrowed = Options {
        bots: Some(vec![bot_id(9)]),
        registry: Some(registry(&[1, 2, 3])),
        allow_orphans: true,
        ..Options::default()
    };
    let report = verify(&s, &t, &narrowed).await.unwrap();
    assert!(report.passed(), "{:#?}", report.failures);
    assert_eq!(report.coverage.unwrap().orphans.len(), 1);
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_the_side_and_table() {
    let source = store_with_rows("verify_notable_src").await;
    let pg = shared_pg();
    let target = pg.connect(&pg.fresh_database("verify_notable_tgt")).await;
    let layout = Layout::default();
    let s = Store {
        client: &source,
        layout: &layout,
        label: "source",
        beside: None,
    };
    let t = Store {
        client: &target,
        layout: &layout,
        label: "postgres://u:****@new/db",
        beside: None,
    };
    let err = verify(&s, &t, &Options::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("target") && text.contains("public.items"),
        "{text}"
    );
}

/// The target's checksums come from the same read as its exact answers; they must be the
/// checksums the source's side computes alone, NULLs and a bot filter included.
#[tokio::test]
async fn checksums_read_with_the_exact_answers_equal_those_read_alone() {
    use ragshift_store::checksum::{group_checksums, Grouping};
    use ragshift_verify::retrieval;
    let client = store_with_rows("verify_onepass").await;
    client
        .batch_execute(
            "INSERT INTO items VALUES ('n1', NULL, 'no bot', 's', '[1,2,3,4,5,6,7,8]'),
                                      ('n2', 'BOT00000000000000000000002', NULL, NULL, NULL),
                                      ('n3', 'BOT00000000000000000000003', 'x', 's', '[-1,0,0,0,0,0,0,1]')",
        )
        .await
        .expect("add rows with NULLs");
    let layout = Layout::default();
    let store = Store {
        client: &client,
        layout: &layout,
        label: "target",
        beside: None,
    };
    let two = [bot_id(2), bot_id(3)];
    let statements = retrieval::prepare(&store, ragshift_verify::Side::Target)
        .await
        .expect("prepare");
    for wanted in [None, Some(&two[..])] {
        let alone = group_checksums(&client, &layout, &Grouping::Bot, wanted)
            .await
            .expect("checksums alone");
        let sample = retrieval::sample(&store, &statements, wanted, 2)
            .await
            .expect("sample");
        let (together, answers) =
            retrieval::checksums_and_exact(&store, &statements, &Grouping::Bot, wanted, &sample, 4)
                .await
                .expect("checksums with answers");
        assert_eq!(together, alone, "bots {wanted:?}");
        assert_eq!(sample.bots.len(), if wanted.is_some() { 2 } else { 3 });
        assert!(alone.len() >= sample.bots.len());
        // Each answer is the one a full sort by distance (then id, bytewise) gives.
        for (b, (queries, answers)) in sample.bots.iter().zip(sample.queries.iter().zip(&answers)) {
            assert_eq!((queries.len(), answers.len()), (2, 2), "{b}");
            for (q, answer) in queries.iter().zip(answers) {
                let sorted: Vec<String> = client
                    .query(
                        "SELECT rtrim(id::text) FROM items
                          WHERE botid = $1::text::character(26) AND embedding IS NOT NULL
                          ORDER BY l2_distance(embedding, $2), rtrim(id::text) COLLATE \"C\" LIMIT 4",
                        &[b, q],
                    )
                    .await
                    .expect("sort by distance")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                assert_eq!(answer, &sorted, "{b}");
            }
        }
    }
}
