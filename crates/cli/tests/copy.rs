//! `ragshift copy` end to end between two real PostgreSQL clusters (a source database on the
//! shared server, a private target cluster): every row and column arrives, the copy is the
//! source's snapshot even while it is written to, a SIGKILLed run resumes without duplicates,
//! and verification names the bots and rows that differ.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ragshift_store::checksum::{bot_checksums, BotChecksum};
use ragshift_store::journal::Journal;
use ragshift_store::Layout;
use ragshift_testkit::{shared_pg, PgCluster};
use serde_json::{json, Value};

/// The platform's table with awkward rows: empty and NULL content, NULL sources and vectors,
/// long and non-ASCII texts, rows without a bot, one big bot (split by id) and many small ones.
fn fixture() -> String {
    ragshift_testkit::awkward_items_indexed()
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = ragshift_testkit::env::isolated_command(env!("CARGO_BIN_EXE_ragshift"), dir);
    cmd.args(args);
    cmd
}

fn ragshift(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run ragshift")
}

/// Starts `ragshift copy` of `p` in one job with `partition_rows` rows a partition and
/// `flags`; its output piped (to read at its end) or dropped.
fn spawn_copy(dir: &Path, p: &Pair, partition_rows: &str, flags: &[&str], piped: bool) -> Child {
    let mut args = vec![
        "copy",
        "--source",
        &p.src_url,
        "--target",
        &p.tgt_url,
        "--jobs",
        "1",
        "--partition-rows",
        partition_rows,
    ];
    args.extend_from_slice(flags);
    let output = || if piped { Stdio::piped() } else { Stdio::null() };
    command(dir, &args)
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("start ragshift copy")
}

/// `ragshift copy` from `src` to `tgt` with `flags`.
fn copy(dir: &Path, src: &str, tgt: &str, flags: &[&str]) -> Output {
    let mut args = vec!["copy", "--source", src, "--target", tgt];
    args.extend_from_slice(flags);
    ragshift(dir, &args)
}

/// `ragshift copy` from `src` to `tgt` with `flags`, which must exit with `code` (1: the run
/// started and failed; 2: refused before anything): what it said on stderr.
#[track_caller]
fn copy_exits(dir: &Path, src: &str, tgt: &str, flags: &[&str], code: i32) -> String {
    let out = copy(dir, src, tgt, flags);
    assert_exit(&out, code);
    stderr_text(&out)
}

use ragshift_testkit::env::{assert_exit, stderr_text};
use ragshift_testkit::env::{json_summary as summary, output_text as text};
use ragshift_testkit::gate;
use ragshift_testkit::sql::{column, scalar};

struct Pair {
    _target: PgCluster,
    src_url: String,
    tgt_url: String,
    src: tokio_postgres::Client,
    tgt: tokio_postgres::Client,
}

async fn pair(name: &str) -> Pair {
    let (src_url, src) = shared_pg()
        .seeded_database(&format!("{name}_src"), &fixture())
        .await;
    let target = PgCluster::start();
    let tgt_url = target.fresh_database(&format!("{name}_tgt"));
    let tgt = target.connect(&tgt_url).await;
    Pair {
        _target: target,
        src_url,
        tgt_url,
        src,
        tgt,
    }
}

/// A source with the fixture and an empty target, both on the shared server: their URLs and a
/// client of the target.
async fn shared_pair(name: &str) -> (String, String, tokio_postgres::Client) {
    let (src_url, _) = shared_pg()
        .seeded_database(&format!("{name}_src"), &fixture())
        .await;
    let tgt_url = shared_pg().fresh_database(&format!("{name}_tgt"));
    let tgt = shared_pg().connect(&tgt_url).await;
    (src_url, tgt_url, tgt)
}

async fn checksums(c: &tokio_postgres::Client) -> Vec<BotChecksum> {
    bot_checksums(c, &Layout::default(), None).await.unwrap()
}

/// Closes the journal gate (see [`gate`]) in the target's journal, creating the journal.
async fn install_gate(tgt: &tokio_postgres::Client) {
    install_gate_in(tgt, &Journal::default()).await;
}

async fn install_gate_in(tgt: &tokio_postgres::Client, journal: &Journal) {
    journal.ensure_schema(tgt).await.unwrap();
    gate::close(tgt, &ragshift_store::quote_ident(journal.schema())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_every_row_and_column_then_refuses_a_filled_target() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_all").await;

    let out = copy(dir.path(), &p.src_url, &p.tgt_url, &["--dry-run"]);
    assert_exit(&out, 0);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("would copy 3000 rows"), "{plan}");
    assert!(
        plan.contains("USING ivfflat (embedding) WITH (lists='10')"),
        "{plan}"
    );
    assert!(!plan.contains(shared_pg().password()), "{plan}");
    assert_eq!(
        scalar::<i64>(
            &p.tgt,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'items'",
        )
        .await,
        0,
        "a dry run changes nothing"
    );

    let out = copy(
        dir.path(),
        &p.src_url,
        &p.tgt_url,
        &["--json", "--jobs", "3", "--partition-rows", "300"],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["rows"], 3000);
    assert_eq!(s["verify"]["mismatches"].as_array().unwrap().len(), 0);
    assert!(s["partitions"].as_u64().unwrap() >= 10, "{s}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(shared_pg().password()));
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(events.contains("\"event\":\"planned\""), "{events}");
    assert!(events.contains("\"event\":\"progress\""), "{events}");
    // The vector index went through the build engine: its memory, then its end.
    let index_events: Vec<Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["index"] == "idx_items_embedding")
        .collect();
    let memory = index_events
        .iter()
        .find(|v| v["event"] == "index_memory")
        .unwrap_or_else(|| panic!("no index_memory event: {events}"));
    assert_eq!(
        (&memory["method"], &memory["lists"]),
        (&json!("ivfflat"), &json!(10))
    );
    assert_eq!(memory["rows"], 3000);
    let vectors: i64 = scalar(&p.tgt, "SELECT count(embedding) FROM items").await;
    let done = index_events
        .iter()
        .find(|v| v["event"] == "index_progress" && v["done"] == true)
        .unwrap_or_else(|| panic!("no end of the index build: {events}"));
    assert_eq!(done["tuples_done"], vectors);

    // Independently of ragshift's own verification: the same rows on both sides.
    assert_eq!(checksums(&p.src).await, checksums(&p.tgt).await);
    assert_eq!(scalar::<i64>(&p.tgt, "SELECT count(*) FROM items WHERE content = repeat('long text ', 3000) OR content LIKE 'héllo wörld 日本語 🚀%'").await, 858);
    let indexes: Vec<String> = column(&p.tgt, "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'items'::regclass ORDER BY 1").await;
    assert_eq!(
        indexes,
        ["idx_items_botid", "idx_items_embedding", "items_pkey"]
    );

    let err = copy_exits(dir.path(), &p.src_url, &p.tgt_url, &[], 2);
    assert!(
        err.contains("already holds rows") && err.contains("--resume") && err.contains("--replace"),
        "{err}"
    );
    assert!(!err.contains(shared_pg().password()), "{err}");

    let err = copy_exits(
        dir.path(),
        &p.src_url,
        &p.tgt_url,
        &["--source-table", "nope"],
        2,
    );
    assert!(err.contains("source table public.nope not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_is_the_snapshot_while_the_source_is_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_live").await;
    let before = checksums(&p.src).await;
    install_gate(&p.tgt).await;
    let child = spawn_copy(dir.path(), &p, "200", &["--json"], true);
    gate::wait_held(&p.tgt, "two partitions are done and the third waits").await;

    // The application writes while the copy runs: new rows in every bot and a new bot,
    // changed rows, deleted rows.
    p.src
        .batch_execute(
            "INSERT INTO items SELECT 'NEW' || lpad(i::text, 23, '0'), botid, 'written during the copy', 's', embedding
               FROM (SELECT DISTINCT ON (botid) botid, embedding FROM items WHERE botid IS NOT NULL) b,
                    generate_series(1, 2) i
              ON CONFLICT DO NOTHING;
             INSERT INTO items VALUES ('NEWBOT000000000000000000X1', 'NEWBOT00000000000000000000', 'x', 's', NULL);
             UPDATE items SET content = 'changed during the copy' WHERE id IN (SELECT min(id) FROM items GROUP BY botid);
             DELETE FROM items WHERE id IN (SELECT max(id) FROM items WHERE id NOT LIKE 'NEW%' GROUP BY botid);",
        )
        .await
        .unwrap();
    assert_ne!(checksums(&p.src).await, before, "the source did change");
    gate::open(&p.tgt).await;
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(summary(&out)["verify"]["source_rows"], 3000);

    assert_eq!(
        checksums(&p.tgt).await,
        before,
        "the target is the source as of the snapshot"
    );
    assert_eq!(
        scalar::<i64>(
            &p.tgt,
            "SELECT count(*) FROM items WHERE id LIKE 'NEW%' OR content LIKE '%during the copy'",
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_copy_resumes_without_duplicates_or_gaps() {
    killed_copy_resumes("copy_kill", &Journal::default(), &[]).await;
}

/// The same with the journal in a schema whose name needs quoting, given as a flag: every
/// journal row is there, resuming with the same setting finds the run, and the default
/// schema is never created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_keeps_its_journal_in_the_schema_given_and_resumes_from_it() {
    let journal = Journal::new("Journal-1");
    let p = killed_copy_resumes("copy_journal", &journal, &["--journal-schema", "Journal-1"]).await;
    let runs: Vec<(String, String)> = p
        .tgt
        .query("SELECT kind, status FROM \"Journal-1\".runs", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(runs, [("copy".to_owned(), "succeeded".to_owned())]);
    let schemas: Vec<String> = column(
        &p.tgt,
        "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('ragshift', 'Journal-1')",
    )
    .await;
    assert_eq!(
        schemas,
        ["Journal-1"],
        "the default journal schema was created"
    );
}

/// SIGKILLs a copy mid-partition, then resumes it with the same `flags`; returns the pair.
async fn killed_copy_resumes(name: &str, journal: &Journal, flags: &[&str]) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(name).await;
    install_gate_in(&p.tgt, journal).await;
    let (runs, units) = (journal.runs_table(), journal.units_table());
    let mut child = spawn_copy(dir.path(), &p, "250", flags, false);
    gate::wait_held(&p.tgt, "the third partition is mid-transaction").await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    gate::open(&p.tgt).await;
    // Waits for the killed run's open transaction to end (it holds a lock on the journal).
    gate::remove(&p.tgt, &ragshift_store::quote_ident(journal.schema())).await;

    let row = p
        .tgt
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM items),
                        (SELECT coalesce(sum(row_count), 0)::bigint FROM {units} WHERE status = 'succeeded'),
                        (SELECT count(*) FROM {units} WHERE status = 'succeeded')"
            ),
            &[],
        )
        .await
        .unwrap();
    let (rows, journal_rows, done): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(done, 2, "two partitions committed before the kill");
    assert_eq!(
        rows, journal_rows,
        "the killed partition left no rows behind"
    );
    assert!(rows > 0 && rows < 3000);

    let resume = [
        "copy", "--json", "--source", &p.src_url, "--target", &p.tgt_url, "--resume", "--jobs", "2",
    ];
    if !flags.is_empty() {
        // Without the setting, the run is not found: nothing is touched.
        let out = ragshift(dir.path(), &resume);
        assert_exit(&out, 2);
        assert!(
            text(&out).contains("no copy run to resume"),
            "{}",
            text(&out)
        );
        assert!(
            scalar::<bool>(&p.tgt, "SELECT to_regclass('ragshift.runs') IS NULL").await,
            "a resume without the setting created the default journal"
        );
    }
    let mut args = resume.to_vec();
    args.extend(flags);
    let out = ragshift(dir.path(), &args);
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["resumed"], true);
    assert_eq!(s["partitions_skipped"], 2);
    assert_eq!(
        s["rows"].as_i64().unwrap(),
        3000 - rows,
        "only the rest was copied"
    );
    assert_eq!(s["verify"]["mismatches"].as_array().unwrap().len(), 0);

    assert_eq!(
        scalar::<i64>(&p.tgt, "SELECT count(*) - count(DISTINCT id) FROM items").await,
        0
    );
    assert_eq!(checksums(&p.src).await, checksums(&p.tgt).await);
    assert_eq!(
        scalar::<i64>(
            &p.tgt,
            &format!("SELECT count(*) FROM {units} WHERE attempts = 2"),
        )
        .await,
        1,
        "the partition killed mid-transaction was redone"
    );
    assert_eq!(
        scalar::<String>(
            &p.tgt,
            &format!("SELECT status FROM {runs} WHERE kind = 'copy'"),
        )
        .await,
        "succeeded"
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_names_a_changed_float_a_missing_row_and_an_extra_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_verify").await;
    let out = copy(
        dir.path(),
        &p.src_url,
        &p.tgt_url,
        &["--jobs", "2", "--no-index"],
    );
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("match"),
        "{}",
        text(&out)
    );

    p.tgt
        .batch_execute(
            "UPDATE items SET embedding = (ARRAY[(embedding::real[])[1] + 0.0001]
                                           || (embedding::real[])[2:8])::vector
              WHERE id = lpad('1301', 26, '0');
             DELETE FROM items WHERE id = lpad('1302', 26, '0');
             INSERT INTO items VALUES ('EXTRA000000000000000000001', 'BOT' || lpad('3', 23, '0'), 'extra', NULL, NULL);",
        )
        .await
        .unwrap();
    let out = copy(dir.path(), &p.src_url, &p.tgt_url, &["--resume"]);
    assert_exit(&out, 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("VERIFICATION FAILED: 3 of"), "{stdout}");
    assert!(
        stdout.contains("00000000000000000000001301 changed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("00000000000000000000001302 missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("EXTRA000000000000000000001 extra"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("bot BOT{:0>23}", 1301 % 60)),
        "{stdout}"
    );
}

/// A trigger in the target's journal that refuses new units: the copy has recorded its run
/// (its work has started) when queueing its partitions fails.
const REFUSE_UNITS: &str = "
CREATE FUNCTION ragshift.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'test: units refused'; END $$;
CREATE TRIGGER test_refuse BEFORE INSERT ON ragshift.units
  FOR EACH ROW EXECUTE FUNCTION ragshift.test_refuse();
";

async fn has_items(c: &tokio_postgres::Client) -> bool {
    c.query_one("SELECT to_regclass('public.items') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_matches_nothing_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, tgt_url, tgt) = shared_pair("copy_nobot").await;
    let err = copy_exits(
        dir.path(),
        &src_url,
        &tgt_url,
        &[
            "--bot",
            "BIGBOT00000000000000000000",
            "--bot",
            "NOSUCHBOT0000000000000000X",
        ],
        2,
    );
    assert!(err.contains("NOSUCHBOT0000000000000000X"), "{err}");
    assert!(
        !err.contains("BIGBOT0"),
        "only the unknown id is named: {err}"
    );
    assert!(!has_items(&tgt).await, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_maintenance_work_mem_is_refused_before_the_data_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, tgt_url, tgt) = shared_pair("copy_mwm").await;
    let out = copy(
        dir.path(),
        &src_url,
        &tgt_url,
        &["--maintenance-work-mem", "lots"],
    );
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lots"),
        "{}",
        text(&out)
    );
    assert!(!has_items(&tgt).await, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_after_the_copy_started_exits_1_and_the_journal_records_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, tgt_url, tgt) = shared_pair("copy_stop").await;
    ragshift_store::journal::Journal::default()
        .ensure_schema(&tgt)
        .await
        .unwrap();
    tgt.batch_execute(REFUSE_UNITS).await.unwrap();
    let err = copy_exits(dir.path(), &src_url, &tgt_url, &[], 1);
    assert!(err.contains("units refused"), "{err}");
    let runs = tgt
        .query(
            "SELECT status, error FROM ragshift.runs WHERE kind = 'copy'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].get::<_, String>(0), "failed", "never left running");
    let reason: Option<String> = runs[0].get(1);
    assert!(
        reason
            .as_deref()
            .unwrap_or_default()
            .contains("units refused"),
        "{reason:?}"
    );
}

/// An all-column fingerprint of a table computed by the server itself, independent of
/// ragshift's checksums: the md5 of every row's text form in id order, and the row count.
async fn fingerprint(c: &tokio_postgres::Client) -> (String, i64) {
    let r = c
        .query_one(
            "SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY id)), ''), count(*) FROM items t",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn duplicates(c: &tokio_postgres::Client) -> i64 {
    c.query_one("SELECT count(*) - count(DISTINCT id) FROM items", &[])
        .await
        .unwrap()
        .get(0)
}

/// `url` reaching the same server through `localhost` instead of `127.0.0.1`.
fn via_localhost(url: &str) -> String {
    url.replacen("@127.0.0.1:", "@localhost:", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_itself_is_refused_before_anything() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_pg().fresh_database("copy_self");
    let c = shared_pg().connect(&url).await;
    c.batch_execute(&fixture()).await.unwrap();
    let before = fingerprint(&c).await;
    let other_name = via_localhost(&url);
    assert_ne!(other_name, url);
    for target in [url.as_str(), other_name.as_str()] {
        let err = copy_exits(dir.path(), &url, target, &["--replace"], 2);
        assert!(
            err.contains("source and target are the same table"),
            "{err}"
        );
        assert!(!err.contains(shared_pg().password()), "{err}");
    }
    assert_eq!(fingerprint(&c).await, before, "nothing changed");
    let journal: bool = scalar(&c, "SELECT to_regclass('ragshift.runs') IS NOT NULL").await;
    assert!(!journal, "not even the journal was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_blocked_by_another_session_gives_up_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_blocked").await;
    p.tgt.batch_execute(&fixture()).await.unwrap();
    let before = fingerprint(&p.tgt).await;
    let (blocker, conn) = tokio_postgres::connect(
        &format!("{}?application_name=nightly-report", p.tgt_url),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    blocker
        .batch_execute("BEGIN; LOCK TABLE items IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let out = copy(
        dir.path(),
        &p.src_url,
        &p.tgt_url,
        &["--replace", "--lock-timeout", "2"],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // The run was recorded before emptying: it failed (1) and the journal says why.
    assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("emptying public.items: gave up after waiting 2s")
            && err.contains("\"nightly-report\"")
            && err.contains("LOCK TABLE items"),
        "{err}"
    );
    assert_eq!(fingerprint(&p.tgt).await, before, "nothing was emptied");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let run = p
        .tgt
        .query_one(
            "SELECT status, error FROM ragshift.runs WHERE kind = 'copy'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.get::<_, String>(0), "failed");
    let reason: String = run.get::<_, Option<String>>(1).unwrap_or_default();
    assert!(reason.contains("gave up after waiting 2s"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_empties_nothing_when_the_run_cannot_be_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_replace_unrecorded").await;
    p.tgt.batch_execute(&fixture()).await.unwrap();
    ragshift_store::journal::Journal::default()
        .ensure_schema(&p.tgt)
        .await
        .unwrap();
    p.tgt
        .batch_execute(
            "CREATE FUNCTION ragshift.test_refuse_runs() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'test: runs refused'; END $$;
             CREATE TRIGGER test_refuse_runs BEFORE INSERT ON ragshift.runs
               FOR EACH ROW EXECUTE FUNCTION ragshift.test_refuse_runs();",
        )
        .await
        .unwrap();
    let before = fingerprint(&p.tgt).await;
    let out = copy(dir.path(), &p.src_url, &p.tgt_url, &["--replace"]);
    assert_exit(&out, 2);
    assert!(text(&out).contains("runs refused"), "{}", text(&out));
    assert_eq!(fingerprint(&p.tgt).await, before, "nothing was emptied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_loses_its_lock_commits_nothing_more_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_lock_lost").await;
    install_gate(&p.tgt).await;
    let child = spawn_copy(dir.path(), &p, "250", &[], true);
    gate::wait_held(&p.tgt, "the third partition is about to commit").await;
    assert_eq!(
        scalar::<i64>(
            &p.tgt,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE application_name LIKE 'ragshift copy run %'",
        )
        .await,
        1,
        "the lock's session"
    );
    gate::open(&p.tgt).await;
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    assert!(
        text(&out).contains("lost its lock on target table public.items"),
        "{}",
        text(&out)
    );
    gate::remove(&p.tgt, "ragshift").await;
    let row = p
        .tgt
        .query_one(
            "SELECT (SELECT count(*) FROM items),
                    (SELECT coalesce(sum(row_count), 0)::bigint FROM ragshift.units WHERE status = 'succeeded'),
                    (SELECT count(*) FROM ragshift.units WHERE status = 'succeeded'),
                    (SELECT status FROM ragshift.runs)",
            &[],
        )
        .await
        .unwrap();
    let (rows, journal_rows, done, status): (i64, i64, i64, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(done, 2, "nothing committed after the lock was lost");
    assert_eq!(rows, journal_rows);
    assert_eq!(status, "failed");

    let out = copy(dir.path(), &p.src_url, &p.tgt_url, &["--resume"]);
    assert_exit(&out, 0);
    assert_eq!(fingerprint(&p.src).await, fingerprint(&p.tgt).await);
}

/// A target cluster reached through a fault proxy, with one database per trial.
struct Proxied {
    target: PgCluster,
    proxy: ragshift_testkit::FaultProxy,
}

impl Proxied {
    fn start() -> Self {
        let target = PgCluster::start();
        let proxy = ragshift_testkit::FaultProxy::in_front_of(&target).unwrap();
        Self { target, proxy }
    }

    /// A new empty target database: its direct URL and its URL through the proxy.
    fn database(&self, name: &str) -> (String, String) {
        let url = self.target.fresh_database(name);
        let via = self.proxy.url_for(&url);
        (url, via)
    }
}

fn copy_through(dir: &Path, src: &str, via: &str, extra: &[&str]) -> Output {
    let mut flags = vec![
        "--jobs",
        "2",
        "--partition-rows",
        "250",
        "--retry-budget",
        "60",
    ];
    flags.extend_from_slice(extra);
    copy(dir, src, via, &flags)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_through_cuts_mid_copy_and_mid_commit_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, src) = shared_pg()
        .seeded_database("copy_cuts_src", &fixture())
        .await;
    let expected = fingerprint(&src).await;
    let t = Proxied::start();
    let seed = ragshift_testkit::SeededRng::trial_seed("copy cut trials");
    let mut rng = ragshift_testkit::SeededRng::new(seed);
    for trial in 0..4 {
        let (url, via) = t.database(&format!("copy_cuts_{trial}"));
        let before = t.proxy.cuts();
        let what = match trial {
            // Mid-COPY: the connection carrying a random byte of the data stream.
            0 | 1 => {
                let at = 200_000 + rng.below(7_800_000);
                t.proxy.cut_one_after_bytes(at);
                format!("byte {at}")
            }
            // Mid-COMMIT: the server committed, the answer never came.
            2 => {
                let nth = 1 + rng.below(10) as u32;
                t.proxy
                    .cut_on_query("COMMIT", ragshift_testkit::CutWhen::AfterReply, nth);
                format!("COMMIT {nth} after the reply")
            }
            // Mid-COMMIT: the COMMIT never reached the server.
            _ => {
                let nth = 1 + rng.below(10) as u32;
                t.proxy
                    .cut_on_query("COMMIT", ragshift_testkit::CutWhen::BeforeServer, nth);
                format!("COMMIT {nth} before the server")
            }
        };
        let out = copy_through(dir.path(), &src_url, &via, &["--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "trial {trial} ({what}): {}",
            text(&out)
        );
        assert_eq!(
            t.proxy.cuts(),
            before + 1,
            "trial {trial} ({what}): the fault fired"
        );
        let tgt = t.target.connect(&url).await;
        assert_eq!(fingerprint(&tgt).await, expected, "trial {trial} ({what})");
        assert_eq!(duplicates(&tgt).await, 0, "trial {trial} ({what})");
        if trial == 2 {
            // The partition whose COMMIT's answer was lost was found committed, not redone.
            assert_eq!(
                scalar::<i32>(&tgt, "SELECT max(attempts) FROM ragshift.units").await,
                1,
                "{}",
                text(&out)
            );
            assert!(
                text(&out).contains("an earlier attempt had committed it"),
                "{}",
                text(&out)
            );
        }
        t.proxy.heal();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_failover_is_ridden_out_and_a_dead_one_fails_the_run_in_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, src) = shared_pg()
        .seeded_database("copy_failover_src", &fixture())
        .await;
    let expected = fingerprint(&src).await;
    let t = Proxied::start();

    // A worker's connection cut mid-COPY and new connections refused for 3 s.
    let (url, via) = t.database("copy_failover");
    t.proxy
        .failover_on_query("FROM STDIN", 2, Duration::from_secs(3));
    let out = copy_through(dir.path(), &src_url, &via, &[]);
    assert_exit(&out, 0);
    assert!(t.proxy.refused() >= 1, "reconnections were refused");
    let tgt = t.target.connect(&url).await;
    assert_eq!(fingerprint(&tgt).await, expected);
    assert_eq!(duplicates(&tgt).await, 0);

    // The same, refused for good: each partition that needs a new connection gives up after
    // the budget; the run ends failed in the journal, with the reason.
    t.proxy.heal();
    let (url, via) = t.database("copy_dead");
    t.proxy
        .failover_on_query("FROM STDIN", 2, Duration::from_secs(3600));
    let started = Instant::now();
    let out = copy(
        dir.path(),
        &src_url,
        &via,
        &[
            "--jobs",
            "1",
            "--partition-rows",
            "1000",
            "--retry-budget",
            "2",
        ],
    );
    assert_exit(&out, 1);
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(
        text(&out).contains("the retry budget of 2s was used up"),
        "{}",
        text(&out)
    );
    t.proxy.heal();
    let tgt = t.target.connect(&url).await;
    let row = tgt
        .query_one(
            "SELECT r.status, r.report->'failures'->0->>'error',
                    (SELECT count(*) FROM ragshift.units u WHERE u.status = 'failed' AND u.error LIKE '%retry budget%')
               FROM ragshift.runs r",
            &[],
        )
        .await
        .unwrap();
    let (status, reason, failed): (String, Option<String>, i64) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(status, "failed");
    assert!(
        reason.unwrap_or_default().contains("cannot connect"),
        "the run's reason is recorded"
    );
    assert!(failed >= 1);
}

/// `args` with both sides' table and bot column given by flags.
fn on_table(args: &[&str], table: &str, bot: &str) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    for side in ["source", "target"] {
        v.extend([
            format!("--{side}-table"),
            table.to_owned(),
            format!("--{side}-bot-column"),
            bot.to_owned(),
        ]);
    }
    v
}

fn run_args(dir: &Path, args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ragshift(dir, &args)
}

/// A LlamaIndex-shaped table (bigserial id, halfvec, json metadata, a generated tsvector) and
/// one with an identity id, defaults and uuid: what the application relies on beyond the rows.
const SHAPES: &str = "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE data_docs (id bigserial PRIMARY KEY, text varchar NOT NULL, metadata_ json,
  node_id varchar, embedding halfvec(8),
  text_search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED);
INSERT INTO data_docs (text, metadata_, node_id, embedding)
SELECT 'chunk ' || i || ' über', json_build_object('doc', i % 4, 'tags', json_build_array('a', i)),
       'n' || (i % 4), array_fill((i % 7)::real / 8, ARRAY[8])::halfvec
  FROM generate_series(1, 120) i;
DELETE FROM data_docs WHERE id % 10 = 0;
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, node_id text, text text,
  embedding vector(3), created timestamptz DEFAULT now(), u uuid DEFAULT gen_random_uuid());
INSERT INTO ident (node_id, text, embedding) SELECT 'b' || (i % 3), 't' || i, '[1,2,3]'
  FROM generate_series(1, 30) i;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_defaults_generated_columns_and_halfvec_arrive_working() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, src) = shared_pg().seeded_database("copy_shapes_src", SHAPES).await;
    let target = PgCluster::start();
    let tgt_url = target.fresh_database("copy_shapes_tgt");
    let tgt = target.connect(&tgt_url).await;
    let digest = |table: &'static str| {
        format!("SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM {table} t")
    };
    for table in ["data_docs", "ident"] {
        let out = run_args(
            dir.path(),
            &on_table(
                &["copy", "--source", &src_url, "--target", &tgt_url, "--json"],
                table,
                "node_id",
            ),
        );
        assert_eq!(out.status.code(), Some(0), "{table}: {}", text(&out));
        let s: Option<String> = scalar(&src, &digest(table)).await;
        let t: Option<String> = scalar(&tgt, &digest(table)).await;
        assert_eq!(s, t, "{table}: every column of every row");
        assert!(s.is_some());
    }
    // verify checks the sequences too: one left behind is named.
    let verify = |dir: &Path| {
        run_args(
            dir,
            &on_table(
                &[
                    "verify",
                    "--source",
                    &src_url,
                    "--target",
                    &tgt_url,
                    "--queries",
                    "0",
                ],
                "data_docs",
                "node_id",
            ),
        )
    };
    let out = verify(dir.path());
    assert_exit(&out, 0);
    tgt.batch_execute("SELECT setval('data_docs_id_seq', 5)")
        .await
        .unwrap();
    let out = verify(dir.path());
    assert_exit(&out, 1);
    assert!(
        text(&out).contains("data_docs_id_seq") && text(&out).contains("duplicate key"),
        "{}",
        text(&out)
    );
    tgt.batch_execute("SELECT setval('data_docs_id_seq', 120)")
        .await
        .unwrap();

    // The application's next inserts work as on the source: new ids past the copied ones,
    // the generated column computed, defaults applied.
    for (sql, want) in [
        ("INSERT INTO data_docs (text, node_id) VALUES ('fresh words', 'n9') RETURNING id::bigint", 121i64),
        ("INSERT INTO ident (node_id) VALUES ('x') RETURNING id::bigint", 31),
    ] {
        assert_eq!(scalar::<i64>(&tgt, sql).await, want, "{sql}");
    }
    assert_eq!(scalar::<i64>(&tgt,
        "SELECT count(*) FROM data_docs WHERE text_search_tsv @@ to_tsquery('english', 'fresh')",).await, 1, "the generated tsvector of a new row");
    assert!(
        scalar::<bool>(
            &tgt,
            "SELECT created IS NOT NULL AND u IS NOT NULL FROM ident WHERE node_id = 'x'",
        )
        .await
    );
    let generated: String = scalar(&tgt, "SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'data_docs'::regclass AND attname = 'text_search_tsv'").await;
    assert_eq!(generated, "s", "still a generated column");
}

/// LangChain's v1 layout: chunks keyed by the collection they belong to, by foreign key.
const LANGCHAIN_V1: &str = "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE langchain_pg_collection (uuid uuid PRIMARY KEY, name varchar NOT NULL UNIQUE, cmetadata json);
CREATE TABLE langchain_pg_embedding (id varchar PRIMARY KEY,
  collection_id uuid REFERENCES langchain_pg_collection(uuid) ON DELETE CASCADE,
  embedding vector, document varchar, cmetadata jsonb);
INSERT INTO langchain_pg_collection
SELECT md5('c' || i)::uuid, 'collection ' || i, json_build_object('i', i) FROM generate_series(1, 3) i;
INSERT INTO langchain_pg_embedding
SELECT 'e' || i, md5('c' || (1 + i % 3))::uuid, ARRAY[i, 1, 2]::real[]::vector,
       CASE WHEN i % 17 = 0 THEN '' ELSE 'doc ' || i || ' ünïcödé' END,
       jsonb_build_object('source', 'f' || i, 'nested', jsonb_build_object('page', i))
  FROM generate_series(1, 200) i;
";

fn langchain_copy(dir: &Path, src: &str, tgt: &str) -> Output {
    copy(dir, src, tgt, &["--layout", "langchain", "--json"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collection_table_a_chunk_table_refers_to_moves_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (src_url, src) = shared_pg()
        .seeded_database("copy_langchain_src", LANGCHAIN_V1)
        .await;
    let target = PgCluster::start();
    let tgt_url = target.fresh_database("copy_langchain_tgt");
    let tgt = target.connect(&tgt_url).await;
    let out = langchain_copy(dir.path(), &src_url, &tgt_url);
    assert_exit(&out, 0);
    let parents = &summary(&out)["parents"];
    assert_eq!(
        parents[0]["table"], "public.langchain_pg_collection",
        "{parents}"
    );
    assert_eq!(parents[0]["action"], "copied");
    for table in ["langchain_pg_collection", "langchain_pg_embedding"] {
        let digest =
            format!("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t");
        let s: Option<String> = scalar(&src, &digest).await;
        let t: Option<String> = scalar(&tgt, &digest).await;
        assert_eq!(s, t, "{table}");
    }
    // `verify` over a uuid key and an untyped vector column: every column compared, the
    // retrieval check skipped with its reason; one nested metadata value changed is caught.
    let verify = |dir: &Path| {
        ragshift(
            dir,
            &[
                "verify",
                "--layout",
                "langchain",
                "--source",
                &src_url,
                "--target",
                &tgt_url,
                "--json",
            ],
        )
    };
    let out = verify(dir.path());
    assert_exit(&out, 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["retrieval_skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("vector(n)"),
        "{v}"
    );
    tgt.batch_execute(
        "UPDATE langchain_pg_embedding SET cmetadata = jsonb_set(cmetadata, '{nested,page}', '0') WHERE id = 'e7'",
    )
    .await
    .unwrap();
    let out = verify(dir.path());
    assert_exit(&out, 1);
    assert!(text(&out).contains("e7"), "{}", text(&out));
    // The collections are compared too.
    tgt.batch_execute(
        "UPDATE langchain_pg_collection SET cmetadata = '{\"i\": 9}' WHERE name = 'collection 1'",
    )
    .await
    .unwrap();
    let out = verify(dir.path());
    assert!(
        text(&out).contains("referenced table public.langchain_pg_collection differs"),
        "{}",
        text(&out)
    );

    // The foreign key holds on the target: deleting a collection deletes its chunks.
    tgt.batch_execute("DELETE FROM langchain_pg_collection WHERE name = 'collection 2'")
        .await
        .unwrap();
    let left: i64 = scalar(&tgt, "SELECT count(*) FROM langchain_pg_embedding").await;
    assert_eq!(left, 200 - 67, "ON DELETE CASCADE came along");

    // A collection table on the target with other rows is refused, naming it.
    let other_url = target.fresh_database("copy_langchain_other");
    let other = target.connect(&other_url).await;
    other
        .batch_execute(
            "CREATE TABLE langchain_pg_collection (uuid uuid PRIMARY KEY, name varchar NOT NULL UNIQUE, cmetadata json);
             INSERT INTO langchain_pg_collection VALUES (gen_random_uuid(), 'someone else''s', NULL);",
        )
        .await
        .unwrap();
    let out = langchain_copy(dir.path(), &src_url, &other_url);
    assert_exit(&out, 1);
    assert!(
        text(&out).contains("public.langchain_pg_collection")
            && text(&out).contains("already holds 1 rows"),
        "{}",
        text(&out)
    );
    assert_eq!(
        scalar::<i64>(&other, "SELECT count(*) FROM langchain_pg_collection").await,
        1,
        "left as it was"
    );
    assert!(
        !scalar::<bool>(
            &other,
            "SELECT to_regclass('langchain_pg_embedding') IS NOT NULL",
        )
        .await,
        "the empty chunk table the failed run created was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_type_the_target_lacks_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_missing_type").await;
    p.src
        .batch_execute(
            "CREATE TYPE mood AS ENUM ('calm', 'tense');
             ALTER TABLE items ADD COLUMN feeling mood DEFAULT 'calm';",
        )
        .await
        .unwrap();
    let err = copy_exits(dir.path(), &p.src_url, &p.tgt_url, &[], 2);
    assert!(
        err.contains("feeling mood") && err.contains("nothing was created"),
        "{err}"
    );
    assert_eq!(
        scalar::<i64>(
            &p.tgt,
            "SELECT count(*) FROM pg_class WHERE relname IN ('items', 'runs')",
        )
        .await,
        0
    );
}

/// A target table that exists with other columns is refused before anything moves, the message
/// showing both shapes, and the table is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_table_of_another_shape_is_refused_showing_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair("copy_other_shape").await;
    p.tgt
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE TABLE items (id character(26) PRIMARY KEY, botid text, embedding vector(3));
             INSERT INTO items VALUES ('A', 'B', '[1,2,3]');",
        )
        .await
        .unwrap();
    let err = copy_exits(dir.path(), &p.src_url, &p.tgt_url, &[], 2);
    assert!(
        err.contains("has another shape")
            && err.contains("source: (id character(26), botid character(26)")
            && err.contains("target: (id character(26), botid text, embedding vector(3))"),
        "{err}"
    );
    assert_eq!(
        scalar::<i64>(&p.tgt, "SELECT count(*) FROM items").await,
        1,
        "the target's table is untouched"
    );
}

/// Stored bytes of one row as the plan counts them (an independent spelling of the plan's own
/// expression: the heap tuple's header and line pointer, and every column's stored size).
const ROW_BYTES: &str =
    "28 + coalesce(pg_column_size(id), 0) + coalesce(pg_column_size(botid), 0) \
    + coalesce(pg_column_size(content), 0) + coalesce(pg_column_size(source), 0) \
    + coalesce(pg_column_size(embedding), 0)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_sized_by_bytes_and_a_big_bot_is_split_evenly() {
    let dir = tempfile::tempdir().unwrap();
    let src_url = shared_pg().fresh_database("copy_bytes_src");
    let src = shared_pg().connect(&src_url).await;
    // One big bot whose first half has short texts and second half 4 KB texts (so equal row
    // counts would be very unequal bytes), each row with a vector(384) kept in TOAST; and 300
    // tiny bots.
    src.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE items(id CHAR(26) PRIMARY KEY, botid CHAR(26), content text, source text,
                            embedding vector(384));
         INSERT INTO items
         SELECT lpad(i::text, 26, '0'), 'BIGBOT00000000000000000000',
                CASE WHEN i <= 20000 THEN 'chunk ' || i
                     ELSE (SELECT string_agg(md5(i::text || '-' || j), '') FROM generate_series(1, 128) j) END,
                's3://bucket/doc-' || (i % 13) || '.pdf',
                (SELECT array_agg(sin(i * 0.001 + j))::real[] FROM generate_series(1, 384) j)::vector
           FROM generate_series(1, 40000) i;
         INSERT INTO items
         SELECT 'T' || lpad(i::text, 25, '0'), 'BOT' || lpad((i % 300)::text, 23, '0'),
                'tiny ' || i, NULL, array_fill(0.5::real, ARRAY[384])::vector
           FROM generate_series(1, 900) i;
         ANALYZE items;",
    )
    .await
    .unwrap();
    let target = PgCluster::start();
    let tgt_url = target.fresh_database("copy_bytes_tgt");
    let tgt = target.connect(&tgt_url).await;

    let out = copy(
        dir.path(),
        &src_url,
        &tgt_url,
        &["--json", "--dry-run", "--jobs", "4"],
    );
    assert_exit(&out, 0);
    let s = summary(&out);
    let target_bytes = s["partition_bytes"].as_i64().unwrap();
    let plan = s["plan"].as_array().unwrap();
    let bytes = |p: &Value| p["bytes"].as_i64().unwrap();
    // Every byte is planned once: the partitions add up to the table as the server sizes it.
    let total: i64 = scalar(&src, &format!("SELECT sum({ROW_BYTES})::int8 FROM items")).await;
    assert_eq!(plan.iter().map(bytes).sum::<i64>(), total, "{s}");
    assert_eq!(s["planned_bytes"].as_i64().unwrap(), total);
    assert!(total > 100 << 20, "the big bot is big: {total} bytes");
    for p in plan {
        assert!(
            bytes(p) <= 2 * target_bytes,
            "{} holds {} bytes, the target is {target_bytes}: {s}",
            p["id"],
            bytes(p)
        );
    }
    // The big bot is cut into several id ranges of about equal bytes, and each range's bytes
    // and rows are what the source holds in it.
    let ranges: Vec<&Value> = plan
        .iter()
        .filter(|p| p["slice"]["kind"] == "ids")
        .collect();
    assert!(ranges.len() >= 4, "{s}");
    let (lo, hi) = (
        ranges.iter().map(|p| bytes(p)).min().unwrap(),
        ranges.iter().map(|p| bytes(p)).max().unwrap(),
    );
    assert!(hi <= 2 * lo, "ranges from {lo} to {hi} bytes: {s}");
    for r in &ranges {
        let bound = |k: &str| r["slice"][k].as_str().map(str::to_owned);
        let (after, upto) = (bound("after"), bound("upto"));
        let row: tokio_postgres::Row = src
            .query_one(
                &format!(
                    "SELECT count(*), sum({ROW_BYTES})::int8 FROM items
                      WHERE botid = 'BIGBOT00000000000000000000'
                        AND ($1::text IS NULL OR id > $1) AND ($2::text IS NULL OR id <= $2)"
                ),
                &[&after, &upto],
            )
            .await
            .unwrap();
        assert_eq!(r["rows"].as_i64(), Some(row.get::<_, i64>(0)), "{r}");
        assert_eq!(r["bytes"].as_i64(), Some(row.get::<_, i64>(1)), "{r}");
    }
    // The tiny bots are grouped, not one partition each.
    assert!(plan.len() < ranges.len() + 10, "{s}");
    let human = copy(dir.path(), &src_url, &tgt_url, &["--dry-run"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("MiB") && human.contains("partitions of about"),
        "{human}"
    );

    let out = copy(dir.path(), &src_url, &tgt_url, &["--json", "--jobs", "4"]);
    assert_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["rows"], 40900);
    assert_eq!(
        s["verify"]["mismatches"].as_array().unwrap().len(),
        0,
        "{s}"
    );
    assert_eq!(checksums(&src).await, checksums(&tgt).await);
}
