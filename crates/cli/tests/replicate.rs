//! `ragshift replicate` end to end between two real clusters: start, status until caught up,
//! cutover (fenced; `--no-fence` alone refused), abort lifting the fence afterwards; a source
//! without wal_level = logical exits 2 with the fix; the source's password never shows, not
//! with `-vv`, not in the journal, not in the target's server log.
//!
//! Under real faults (a fault proxy in front of each cluster, SIGKILL), with a writer on the
//! source from before `start` until after `cutover` returns: seeded trials (seed printed;
//! replay with `RAGSHIFT_TEST_SEED`), a cutover cut off after it detached, the exit codes of a
//! start that never began (2) or failed once begun (1), and a cutover that loses the target
//! after fencing (fence lifted, replication left running, 1). Each ends with every write
//! committed before the cutover on the target, every column identical, and later ones refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ragshift_testkit::{
    all_columns, awkward_items, row_diff, sigkill_at_random, three_bots, AwkwardItems, CutWhen,
    FaultProxy, PgCluster, RowDiff, SeededRng, SourceWriter,
};
use serde_json::Value;

fn ragshift(dir: &Path, args: &[&str]) -> Output {
    ragshift_testkit::env::run_isolated(env!("CARGO_BIN_EXE_ragshift"), dir, args)
}

use ragshift_testkit::env::assert_exit;
use ragshift_testkit::env::stdout_json as json;
use ragshift_testkit::sql::scalar;

async fn clusters(logical: bool) -> (PgCluster, PgCluster, String, String) {
    let source = if logical {
        PgCluster::builder().logical_replication().start()
    } else {
        PgCluster::start()
    };
    let target = PgCluster::start();
    let s = source.fresh_database("cli_rep_src");
    let t = target.fresh_database("cli_rep_tgt");
    source.execute(&s, &three_bots(30)).await;
    (source, target, s, t)
}

#[tokio::test(flavor = "multi_thread")]
async fn start_status_cutover() {
    let dir = tempfile::tempdir().unwrap();
    let (source, target, s, t) = clusters(true).await;
    let sides = ["--source", s.as_str(), "--target", t.as_str()];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&sides);
        ragshift(dir.path(), &all)
    };

    let out = run(&["replicate", "start", "--dry-run"]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry run: nothing was created"), "{text}");
    assert!(text.contains("binary transfer"), "{text}");

    let out = run(&["replicate", "start", "--json"]);
    assert_exit(&out, 0);
    let started = json(&out);
    let sub = started["names"]["subscription"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sub.starts_with("ragshift_sub_"));
    let all_output = ragshift_testkit::env::all_output(&out);
    assert!(!all_output.contains(source.password()), "{all_output}");

    // Poll `status` until the initial copy is done and nothing is behind.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(&["replicate", "status", "--json"]);
        assert_exit(&out, 0);
        let st = json(&out);
        if st["caught_up"] == true && st["target_rows"] == 90 {
            assert_eq!(st["tables"][0]["state"], "r");
            assert_eq!(st["behind_bytes"], 0);
            assert_eq!(st["subscription"], sub.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {st:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = run(&["replicate", "status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("caught up: yes"));

    // Without the fence, only with the acknowledgement: refused before anything is done.
    let out = run(&["replicate", "cutover", "--no-fence"]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--accept-losing-writes"), "{err}");
    assert!(err.contains("nothing was done"), "{err}");

    let out = run(&["replicate", "cutover", "--timeout", "60s", "--queries", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("verified: everything matches"), "{text}");
    assert!(text.contains("point the application at"), "{text}");
    // The index went through the build engine, which said what memory it gave the build.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("maintenance_work_mem") && log.contains("built in"),
        "{log}"
    );
    assert!(!text.contains(source.password()));

    let tgt = target.connect(&t).await;
    assert_eq!(
        scalar::<i64>(&tgt, "SELECT count(*) FROM pg_subscription").await,
        0
    );
    let out = run(&["verify", "--json", "--queries", "2"]);
    assert_exit(&out, 0);
    assert!(json(&out)["retrieval"]["index"]["method"] == "hnsw");

    let out = run(&["replicate", "status"]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no replication is running"), "{err}");
    assert!(
        err.contains("was cut over") && err.contains("build-index"),
        "{err}"
    );

    // The old source refuses writes until the fence is lifted.
    assert!(text.contains("stays fenced"), "{text}");
    let src = source.connect(&s).await;
    let write = "DELETE FROM items WHERE id = '01000000000000000000000001'";
    let e = src.batch_execute(write).await.unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "25006");
    assert!(
        db.message().contains("writes to public.items are fenced"),
        "{db:?}"
    );
    let out = run(&["replicate", "abort"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("already cut over"), "{text}");
    assert!(text.contains("removed write fence"), "{text}");
    src.batch_execute(write)
        .await
        .expect("writes are accepted again");
}

/// `[run] journal_schema` from the configuration file: the replication records its objects in
/// that schema only; without the setting it is not seen (and nothing is removed); `abort` with
/// it removes everything the journal there recorded.
#[tokio::test(flavor = "multi_thread")]
async fn a_replication_is_recorded_in_the_configured_journal_schema() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ragshift.toml"),
        "[run]\njournal_schema = \"Journal-1\"\n",
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (source, target, s, t) = clusters(true).await;
    let sides = ["--source", s.as_str(), "--target", t.as_str()];
    let run_in = |dir: &Path, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&sides);
        ragshift(dir, &all)
    };
    let out = run_in(dir.path(), &["replicate", "start", "--json"]);
    assert_exit(&out, 0);
    let run_id = json(&out)["names"]["run_id"].as_str().unwrap().to_owned();
    let tgt = target.connect(&t).await;
    let count = |sql: &'static str| {
        let tgt = &tgt;
        async move { tgt.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM pg_subscription").await, 1);
    let objects: Vec<String> = tgt
        .query(
            "SELECT unit_kind FROM \"Journal-1\".units WHERE run_id = $1 ORDER BY unit_kind",
            &[&run_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        ["publication", "slot", "subscription"]
            .iter()
            .all(|k| objects.iter().any(|o| o == k)),
        "{objects:?}"
    );

    // Without the setting the replication is not seen, and nothing is removed or created.
    let out = run_in(elsewhere.path(), &["replicate", "abort"]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nothing to remove"), "{text}");
    assert_eq!(count("SELECT count(*) FROM pg_subscription").await, 1);

    let out = run_in(dir.path(), &["replicate", "abort"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("aborted {run_id}")), "{text}");
    assert_eq!(count("SELECT count(*) FROM pg_subscription").await, 0);
    let src = source.connect(&s).await;
    assert_eq!(scalar::<i64>(&src, "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_replication_slots)").await, 0, "publication and slot removed from the source");
    let status: String = tgt
        .query_one(
            "SELECT status FROM \"Journal-1\".runs WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "failed", "an aborted replication ends failed");
    assert_eq!(
        count("SELECT count(*) FROM pg_namespace WHERE nspname = 'ragshift'").await,
        0,
        "the default journal schema was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_password_reaches_no_output_journal_or_server_log() {
    let dir = tempfile::tempdir().unwrap();
    let source = PgCluster::builder().logical_replication().start();
    // The target logs every statement.
    let target = PgCluster::builder().setting("log_statement", "all").start();
    let s = source.fresh_database("cli_rep_pw_src");
    let t = target.fresh_database("cli_rep_pw_tgt");
    let password = "Pw#?/@:%'x9";
    let src = source.connect(&s).await;
    src.batch_execute(&three_bots(30)).await.expect("seed");
    src.batch_execute(&format!(
        "CREATE ROLE odd_user LOGIN SUPERUSER PASSWORD '{}'",
        password.replace('\'', "''")
    ))
    .await
    .unwrap();
    let db = s.rsplit('/').next().unwrap();
    let s_odd = format!(
        "postgres://odd_user:{}@{}:{}/{db}?sslmode=disable",
        ragshift_testkit::percent_encoded(password),
        source.host(),
        source.port()
    );
    let sides = ["--source", s_odd.as_str(), "--target", t.as_str()];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&sides);
        ragshift(dir.path(), &all)
    };
    let mut output = String::new();
    for args in [
        &["replicate", "start", "-vv"][..],
        &["replicate", "status", "-vv"],
        &["replicate", "status", "-vv", "--json"],
    ] {
        let out = run(args);
        let text = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
        output.push_str(&text);
    }
    assert!(
        output.contains("pg_subscription.subconninfo"),
        "says where the password is kept: {output}"
    );
    assert!(output.contains("ok   target server log"), "{output}");

    // The target server holds the password (so it was sent), and logged statements...
    let tgt = target.connect(&t).await;
    let conninfo: String = scalar(&tgt, "SELECT subconninfo FROM pg_subscription").await;
    assert!(
        conninfo.contains("Pw#?/@:%"),
        "the subscription uses odd_user"
    );
    let journal: String = scalar(
        &tgt,
        "SELECT (SELECT string_agg(r::text, ' ') FROM ragshift.runs r)
                 || (SELECT string_agg(u::text, ' ') FROM ragshift.units u)",
    )
    .await;
    let out = run(&["replicate", "abort", "-vv"]);
    assert_exit(&out, 0);
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(target.log_file()).unwrap();
    assert!(log.contains("ragshift.units"), "the target logs statements");
    assert!(log.contains("DROP SUBSCRIPTION"), "the target logs DDL");

    // ...but the password is in none of them.
    for form in [
        password.to_owned(),
        ragshift_testkit::percent_encoded(password),
        "Pw#?/@".to_owned(),
    ] {
        assert!(!output.contains(&form), "output holds {form:?}: {output}");
        assert!(
            !journal.contains(&form),
            "journal holds {form:?}: {journal}"
        );
        assert!(!log.contains(&form), "target log holds {form:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_without_logical_wal_exits_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (source, target, s, t) = clusters(false).await;
    let out = ragshift(
        dir.path(),
        &["replicate", "start", "--source", &s, "--target", &t],
    );
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wal_level is replica"), "{err}");
    assert!(err.contains("nothing was created"), "{err}");
    assert!(!err.contains(source.password()), "{err}");
    let tgt = target.connect(&t).await;
    assert_eq!(
        scalar::<i64>(
            &tgt,
            "SELECT count(*) FROM pg_class WHERE relname IN ('items', 'runs')",
        )
        .await,
        0
    );
}

/// Both clusters behind fault proxies: the source (logical replication) and the target. The
/// subscription connects to the source through its proxy too (it uses the source URL ragshift
/// was given), so source faults strike the apply worker as well.
struct Faulted {
    source: PgCluster,
    target: PgCluster,
    source_proxy: FaultProxy,
    target_proxy: FaultProxy,
}

/// One trial's databases: direct URLs (for the writer and the checks) and through the proxies
/// (for ragshift).
struct Pair {
    src: String,
    tgt: String,
    via: [String; 2],
}

impl Faulted {
    fn start() -> Self {
        let source = PgCluster::builder().logical_replication().start();
        let target = PgCluster::start();
        let proxy = |c: &PgCluster| FaultProxy::in_front_of(c).expect("the trial's servers answer");
        Self {
            source_proxy: proxy(&source),
            target_proxy: proxy(&target),
            source,
            target,
        }
    }

    /// A source database holding awkward rows and an empty target database.
    async fn pair(&self, name: &str) -> Pair {
        let src = self.source.fresh_database(name);
        let tgt = self.target.fresh_database(name);
        self.source
            .execute(
                &src,
                &awkward_items(AwkwardItems {
                    rows: 800,
                    big_bot_rows: 300,
                    small_bots: 8,
                    long_repeat: 300,
                }),
            )
            .await;
        let via = [
            self.source_proxy.url_for(&src),
            self.target_proxy.url_for(&tgt),
        ];
        Pair { src, tgt, via }
    }

    fn heal(&self) {
        self.source_proxy.heal();
        self.target_proxy.heal();
    }

    /// Whether a ragshift write fence is on the source table.
    async fn fenced(&self, p: &Pair) -> bool {
        self.source
            .connect(&p.src)
            .await
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname LIKE 'ragshift\\_fence\\_%')",
                &[],
            )
            .await
            .expect("the trial's servers answer")
            .get(0)
    }

    /// Whether the subscription is on the target.
    async fn subscribed(&self, p: &Pair) -> bool {
        self.target
            .connect(&p.tgt)
            .await
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
                                 WHERE d.datname = current_database())",
                &[],
            )
            .await
            .expect("the trial's servers answer")
            .get(0)
    }

    /// The writer goes on after the cutover: its writes are refused, none committed after the
    /// cutover reported success, and the target holds every row of the (fenced) source with
    /// every column identical, nothing more.
    async fn nothing_lost(&self, p: &Pair, writer: SourceWriter, cut_over_at: Instant, what: &str) {
        assert!(
            writer.wait_for_writes(5, Duration::from_secs(10)).await,
            "{what}: the writer goes on"
        );
        let log = writer.stop().await.expect("the trial's servers answer");
        assert!(log.failed.is_empty(), "{what}: {:?}", log.failed);
        assert!(
            log.refused >= 5,
            "{what}: writes after the cutover are refused"
        );
        let late: Vec<&str> = log
            .committed_after(cut_over_at)
            .map(|w| w.id.as_str())
            .collect();
        assert!(
            late.is_empty(),
            "{what}: committed after the cutover: {late:?}"
        );
        assert!(log.committed.len() > 20, "{what}: the writer wrote");
        let s = self.source.connect(&p.src).await;
        let t = self.target.connect(&p.tgt).await;
        let diff = row_diff(&s, &t, &all_columns("items", "id"))
            .await
            .expect("the trial's servers answer");
        assert_eq!(diff, RowDiff::default(), "{what}");
    }
}

fn replicate(dir: &Path, p: &Pair, args: &[&str]) -> Output {
    ragshift(dir, &with_sides(args, p))
}

fn with_sides<'a>(args: &[&'a str], p: &'a Pair) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--source", &p.via[0], "--target", &p.via[1]]);
    all
}

const CUTOVER: &[&str] = ragshift_testkit::FAULT_TRIAL_CUTOVER;

use ragshift_testkit::env::all_output as text;

/// Replicate runs in the journal.
async fn runs(f: &Faulted, p: &Pair) -> Vec<(String, Option<Value>)> {
    let t = f.target.connect(&p.tgt).await;
    match t
        .query(
            "SELECT status, report FROM ragshift.runs WHERE kind = 'replicate' ORDER BY started_at",
            &[],
        )
        .await
    {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(_) => Vec::new(),
    }
}

/// Cutover until it exits 0 (at most `tries` times), each exit 0, 1 or 2; the moment it did.
fn cut_over(dir: &Path, p: &Pair, tries: usize, what: &str) -> Instant {
    for _ in 0..tries {
        let out = replicate(dir, p, CUTOVER);
        match out.status.code() {
            Some(0) => return Instant::now(),
            Some(1 | 2) => {}
            other => panic!("{what}: cutover exited {other:?}: {}", text(&out)),
        }
    }
    panic!("{what}: no cutover succeeded in {tries} tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_in_start_and_cutover_with_a_writer_lose_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let f = Faulted::start();
    let seed = SeededRng::trial_seed("replicate fault trials");
    let mut rng = SeededRng::new(seed);

    // 1. `start` with its target connection cut at a random byte of its traffic.
    let p = f.pair("rep_fault_start").await;
    let writer = SourceWriter::start(&p.src, rng.next_u64()).await.unwrap();
    let at = 2_000 + rng.below(12_000);
    let what = format!("start, target cut at byte {at}");
    f.target_proxy.cut_one_after_bytes(at);
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_eq!(f.target_proxy.cuts(), 1, "{what}: the fault struck");
    f.heal();
    let code = out.status.code();
    assert!(
        matches!(code, Some(1 | 2)),
        "{what}: {code:?} {}",
        text(&out)
    );
    if code == Some(2) {
        assert!(
            runs(&f, &p).await.is_empty(),
            "{what}: 2 only before the journal: {}",
            text(&out)
        );
    }
    // What an operator does after a failed start: abort, start again.
    let out = replicate(dir.path(), &p, &["replicate", "abort"]);
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
    let done = cut_over(dir.path(), &p, 1, &what);
    f.nothing_lost(&p, writer, done, &what).await;

    // 2. The fence's COMMIT is carried out but its answer lost: the cutover can't know it
    //    fenced, so it lifts whatever is there, keeps replication running and exits 1.
    let p = f.pair("rep_fault_fence").await;
    let writer = SourceWriter::start(&p.src, rng.next_u64()).await.unwrap();
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_exit(&out, 0);
    let what = "cutover, the fence's answer lost";
    f.source_proxy
        .cut_on_query("CREATE TRIGGER", CutWhen::AfterReply, 1);
    let out = replicate(dir.path(), &p, CUTOVER);
    assert_eq!(f.source_proxy.cuts(), 1, "{what}: the fault struck");
    f.heal();
    assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
    assert!(
        text(&out).contains("the source is not fenced"),
        "{}",
        text(&out)
    );
    assert!(!f.fenced(&p).await, "{what}: the fence was lifted");
    assert!(f.subscribed(&p).await, "{what}: replication keeps running");
    let before = writer.committed();
    assert!(writer.wait_for_writes(10, Duration::from_secs(10)).await);
    assert!(
        writer.committed() > before,
        "{what}: the source takes writes again"
    );
    let done = cut_over(dir.path(), &p, 1, what);
    f.nothing_lost(&p, writer, done, what).await;

    // 3. `cutover` SIGKILLed at a random moment, then run again.
    let p = f.pair("rep_fault_kill").await;
    let writer = SourceWriter::start(&p.src, rng.next_u64()).await.unwrap();
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_exit(&out, 0);
    let kill_seed = rng.next_u64();
    let what = format!("cutover SIGKILLed (seed {kill_seed})");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ragshift"))
        .args(with_sides(CUTOVER, &p))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = sigkill_at_random(
        &mut child,
        kill_seed,
        Duration::from_millis(200)..Duration::from_secs(6),
    )
    .unwrap();
    let status = child.wait().unwrap();
    let done = if killed.is_some() {
        cut_over(dir.path(), &p, 3, &what)
    } else {
        assert_eq!(status.code(), Some(0), "{what}: it ended before the kill");
        Instant::now()
    };
    f.nothing_lost(&p, writer, done, &what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cutover_cut_off_after_it_detached_is_finished_by_the_next_one() {
    // The answer to DROP SUBSCRIPTION is lost and the target connection with it: the source is
    // fenced, the subscription gone, the journal still says running. The next cutover must
    // not call that "broken replication" forever, but verify again and finish.
    let dir = tempfile::tempdir().unwrap();
    let f = Faulted::start();
    let p = f.pair("rep_detach_cut").await;
    let writer = SourceWriter::start(&p.src, SeededRng::trial_seed("detach cut writer"))
        .await
        .unwrap();
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_exit(&out, 0);
    f.target_proxy
        .cut_on_query("DROP SUBSCRIPTION", CutWhen::AfterReply, 1);
    let out = replicate(dir.path(), &p, CUTOVER);
    assert_eq!(f.target_proxy.cuts(), 1, "the fault struck");
    f.heal();
    assert_exit(&out, 1);
    assert!(
        f.fenced(&p).await,
        "the fence stays: the target has every write"
    );
    assert!(
        text(&out).contains("the source stays fenced"),
        "{}",
        text(&out)
    );
    assert!(!f.subscribed(&p).await);

    let out = replicate(dir.path(), &p, CUTOVER);
    assert_exit(&out, 0);
    let done = Instant::now();
    assert!(
        text(&out).contains("verified: everything matches"),
        "{}",
        text(&out)
    );
    assert_eq!(runs(&f, &p).await.last().unwrap().0, "succeeded");
    f.nothing_lost(&p, writer, done, "detach cut").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_exits_2_when_nothing_started_and_1_once_it_had_begun() {
    let dir = tempfile::tempdir().unwrap();
    let f = Faulted::start();

    // The target unreachable: nothing starts anywhere.
    let p = f.pair("rep_exit_2").await;
    f.target_proxy.refuse();
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    f.heal();
    assert_exit(&out, 2);
    let src = f.source.connect(&p.src).await;
    assert_eq!(
        scalar::<i64>(&src, "SELECT count(*) FROM pg_publication").await,
        0
    );
    assert!(runs(&f, &p).await.is_empty());

    // The source's connection lost while creating the publication, after the target table was
    // created: exit 1, the journal says the start failed and why, and what it created is gone.
    let p = f.pair("rep_exit_1").await;
    f.source_proxy
        .cut_on_query("CREATE PUBLICATION", CutWhen::BeforeServer, 1);
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_eq!(f.source_proxy.cuts(), 1, "the fault struck");
    f.heal();
    assert_exit(&out, 1);
    assert!(text(&out).contains("removed again"), "{}", text(&out));
    let runs = runs(&f, &p).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].0, "failed");
    let report = runs[0].1.clone().unwrap_or_default();
    assert_eq!(report["outcome"], "start failed", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap_or_default()
            .contains("source"),
        "{report}"
    );
    assert!(
        report["removed"].to_string().contains("table"),
        "the table it created was removed: {report}"
    );
    let tgt = f.target.connect(&p.tgt).await;
    assert!(!scalar::<bool>(&tgt, "SELECT to_regclass('public.items') IS NOT NULL").await);
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a new start works: {}",
        text(&out)
    );
    let out = replicate(dir.path(), &p, &["replicate", "abort"]);
    assert_exit(&out, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cutover_losing_the_target_after_fencing_lifts_the_fence_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = Faulted::start();
    let p = f.pair("rep_cut_after_fence").await;
    let writer = SourceWriter::start(&p.src, SeededRng::trial_seed("cut after fence writer"))
        .await
        .unwrap();
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_exit(&out, 0);
    // The first journal update after the fence is in place (recording it) never reaches the
    // target, and the target refuses new connections for a while.
    f.target_proxy
        .failover_on_query("finished_at = now()", 1, Duration::from_secs(3));
    let out = replicate(dir.path(), &p, CUTOVER);
    assert_eq!(f.target_proxy.cuts(), 1, "the fault struck");
    f.heal();
    assert_exit(&out, 1);
    assert!(
        text(&out).contains("the fence was lifted again"),
        "{}",
        text(&out)
    );
    assert!(!f.fenced(&p).await, "the fence was lifted");
    assert!(f.subscribed(&p).await, "replication keeps running");
    let out = replicate(dir.path(), &p, &["replicate", "status"]);
    assert_exit(&out, 0);
    let before = writer.committed();
    assert!(writer.wait_for_writes(10, Duration::from_secs(10)).await);
    assert!(writer.committed() > before, "the source takes writes again");
    let done = cut_over(dir.path(), &p, 1, "after the lost target");
    f.nothing_lost(&p, writer, done, "after the lost target")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cutover_losing_the_source_while_detaching_reconnects_and_leaves_no_slot() {
    // The source's connection dies as the cutover looks for the slot to drop, and the source
    // refuses connections for 2 s (a failover): the slot and publication would stay on the
    // old cluster (the slot keeping WAL for ever) unless the cutover reaches it again.
    let dir = tempfile::tempdir().unwrap();
    let f = Faulted::start();
    let p = f.pair("rep_detach_failover").await;
    let writer = SourceWriter::start(&p.src, SeededRng::trial_seed("detach failover writer"))
        .await
        .unwrap();
    let out = replicate(dir.path(), &p, &["replicate", "start"]);
    assert_exit(&out, 0);
    f.source_proxy
        .failover_on_query("starts_with(slot_name", 1, Duration::from_secs(2));
    let out = replicate(dir.path(), &p, CUTOVER);
    assert_eq!(f.source_proxy.cuts(), 1, "the fault struck");
    assert!(
        f.source_proxy.refused() >= 1,
        "the source refused a reconnection"
    );
    f.heal();
    assert_exit(&out, 0);
    assert!(!text(&out).contains("LEFT"), "{}", text(&out));
    let done = Instant::now();
    let src = f.source.connect(&p.src).await;
    let left: i64 = scalar(
        &src,
        "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database())
                  + (SELECT count(*) FROM pg_publication)",
    )
    .await;
    assert_eq!(left, 0, "no slot or publication left on the source");
    assert!(f.fenced(&p).await);
    f.nothing_lost(&p, writer, done, "detach failover").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicating_a_database_into_itself_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _target, s, _t) = clusters(true).await;
    let itself = s.replacen("@127.0.0.1:", "@localhost:", 1);
    assert_ne!(itself, s, "the same database, named another way");
    let out = ragshift(
        dir.path(),
        &["replicate", "start", "--source", &s, "--target", &itself],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("same database"), "{err}");
    assert!(!err.contains(source.password()), "{err}");
    let c = source.connect(&s).await;
    assert_eq!(
        scalar::<i64>(
            &c,
            "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)
                  + (SELECT count(*) FROM pg_replication_slots)
                  + (SELECT count(*) FROM pg_namespace WHERE nspname = 'ragshift')",
        )
        .await,
        0,
        "nothing was created"
    );
}
