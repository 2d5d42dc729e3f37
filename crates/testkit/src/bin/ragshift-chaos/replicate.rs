//! The replicate strategy: a writer inserts, updates and deletes rows on the source from before
//! `ragshift replicate start` until after `ragshift replicate cutover` returns, while one fault
//! chosen by the trial's seed strikes `start` or `cutover`: a connection cut at a random byte,
//! every connection cut, a COMMIT committed with its answer lost, a COMMIT lost on the way, a
//! failover refusing connections for seconds (each through a [`FaultProxy`] in front of the
//! target or of the source; the subscription connects to the source through the same proxy,
//! so the apply worker is faulted too), or a SIGKILL of ragshift at a random moment.
//!
//! Then the failed step is run again the way an operator would (a start that didn't succeed:
//! `replicate abort`, then `start` again; a cutover that didn't: `cutover` again) until the
//! cutover exits 0, and the source and target tables are compared, every column of every row.
//! The source stays fenced after the cutover, so it holds exactly the writes that committed
//! before the fence: a row missing or different on the target is lost, a row only on the
//! target is extra, and a write the writer saw commit after the cutover reported success is
//! lost unless the target has it.
//!
//! Wrong exit codes: 2 once the command had written to the journal (2 means nothing started);
//! anything but 0, 1 or 2; a failed cutover (1) that left the source fenced without saying so
//! (it may, once the target has every row: then it says the source stays fenced);
//! an `abort` that didn't exit 0 (no fault is armed then); a step still failing after
//! [`RERUNS`] reruns; 0 from a cutover that left rows lost or extra.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ragshift_testkit::{
    all_columns, awkward_items, row_diff, sigkill_at_random, writes_missing_on, AwkwardItems,
    CutWhen, FaultProxy, PgCluster, SeededRng, SourceWriter, Write, FAULT_TRIAL_CUTOVER,
};
use tokio::runtime::Runtime;

use super::{command, start_cluster, wait_or_exit, Args, Tally, TrialResult, RERUNS};

/// The source table at the start of a trial (the writer adds to it, changes and removes rows).
fn fixture() -> String {
    awkward_items(AwkwardItems {
        rows: 1500,
        big_bot_rows: 500,
        small_bots: 12,
        long_repeat: 400,
    })
}

/// A command that runs longer than this is killed and counted as a wrong exit (hung).
const HANG: Duration = Duration::from_secs(300);

/// The two clusters, each behind its own fault proxy.
struct Servers {
    source: PgCluster,
    target: PgCluster,
    source_proxy: FaultProxy,
    target_proxy: FaultProxy,
}

/// Runs `a.trials` replicate trials; each draws its seed from `master`.
pub(super) fn trials(
    a: &Args,
    master: &mut SeededRng,
    dir: &Path,
    rt: &Runtime,
) -> anyhow::Result<Tally> {
    let source = start_cluster(
        PgCluster::builder().logical_replication(),
        "the replicate source",
    )?;
    let target = start_cluster(PgCluster::builder(), "the replicate target")?;
    let source_proxy = FaultProxy::in_front_of(&source)?;
    let target_proxy = FaultProxy::in_front_of(&target)?;
    let servers = Servers {
        source,
        target,
        source_proxy,
        target_proxy,
    };
    let mut tally = Tally::default();
    for trial in 0..a.trials {
        let seed = master.next_u64();
        let t = Trial {
            servers: &servers,
            seed,
            ragshift: &a.ragshift,
            dir,
            rt,
            name: format!("chaos_replicate_{trial}"),
        };
        let r = t.run()?;
        servers.source_proxy.heal();
        servers.target_proxy.heal();
        tally.add("replicate", trial, seed, &r);
    }
    Ok(tally)
}

/// The step a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Start,
    Cutover,
}

/// The fault of a trial.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// The connection carrying this byte (counted from the step's start) is cut.
    CutOne(u64),
    /// Every connection is cut at this byte.
    CutAll(u64),
    /// The nth COMMIT runs; its answer is lost and the connection cut.
    CommitAnswerLost(u32),
    /// The nth COMMIT never reaches the server.
    CommitLost(u32),
    /// After this long every connection is cut and new ones refused for the second duration.
    Failover(Duration, Duration),
    /// SIGKILL at a moment drawn from this seed.
    Kill(u64),
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    step: Step,
    /// Through the source's proxy (else the target's); unused for a kill.
    source_side: bool,
    kind: Kind,
}

impl Fault {
    fn describe(&self) -> String {
        let step = match self.step {
            Step::Start => "start",
            Step::Cutover => "cutover",
        };
        let side = if self.source_side { "source" } else { "target" };
        let what = match self.kind {
            Kind::CutOne(b) => format!("the {side} connection carrying byte {b} cut"),
            Kind::CutAll(b) => format!("every {side} connection cut at byte {b}"),
            Kind::CommitAnswerLost(n) => {
                format!("{side} COMMIT {n} committed, its answer lost")
            }
            Kind::CommitLost(n) => format!("{side} COMMIT {n} lost on the way"),
            Kind::Failover(at, refuse) => {
                format!("{side} failover after {at:?} refusing for {refuse:?}")
            }
            Kind::Kill(seed) => format!("SIGKILL (seed {seed})"),
        };
        format!("{step}: {what}")
    }
}

struct Trial<'a> {
    servers: &'a Servers,
    seed: u64,
    ragshift: &'a Path,
    dir: &'a Path,
    rt: &'a Runtime,
    name: String,
}

/// How one command ended.
struct Ran {
    /// `None` when killed (by the fault, or as hung).
    code: Option<i32>,
    stderr: String,
    /// Whether the target's journal changed while it ran.
    journal_changed: bool,
    hung: bool,
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Cutover,
    Done,
}

impl Trial<'_> {
    fn choose(&self, rng: &mut SeededRng) -> Fault {
        let step = if rng.below(5) < 2 {
            Step::Start
        } else {
            Step::Cutover
        };
        let source_side = rng.below(2) == 0;
        // Bytes a clean step moves through each proxy, roughly (the source's include the
        // apply worker's stream).
        let bytes = match (step, source_side) {
            (Step::Start, false) => 20_000,
            (Step::Start, true) => 8_000,
            (Step::Cutover, false) => 150_000,
            (Step::Cutover, true) => 200_000,
        };
        // A clean start takes under a second, a clean cutover about three.
        let lasts = match step {
            Step::Start => Duration::from_millis(800),
            Step::Cutover => Duration::from_secs(3),
        };
        let kind = match rng.below(6) {
            0 => Kind::CutOne(1_000 + rng.below(bytes)),
            1 => Kind::CutAll(1_000 + rng.below(bytes)),
            2 => Kind::CommitAnswerLost(1 + rng.below(2) as u32),
            3 => Kind::CommitLost(1 + rng.below(2) as u32),
            4 => Kind::Failover(
                rng.duration_in(Duration::from_millis(50), lasts),
                rng.duration_in(Duration::from_millis(500), Duration::from_secs(4)),
            ),
            _ => Kind::Kill(rng.next_u64()),
        };
        Fault {
            step,
            source_side,
            kind,
        }
    }

    fn run(&self) -> anyhow::Result<TrialResult> {
        let s = self.servers;
        let src_url = s.source.fresh_database(&self.name);
        let tgt_url = s.target.fresh_database(&self.name);
        self.rt.block_on(async {
            let c = s.source.connect(&src_url).await;
            c.batch_execute(&fixture()).await
        })?;
        let via = [
            s.source_proxy.url_for(&src_url),
            s.target_proxy.url_for(&tgt_url),
        ];
        let mut rng = SeededRng::new(self.seed);
        let fault = self.choose(&mut rng);
        let mut result = TrialResult::new(fault.describe());
        let writer_seed = rng.next_u64();
        let writer = self.rt.block_on(async {
            let w = SourceWriter::start(&src_url, writer_seed).await?;
            w.wait_for_writes(20, Duration::from_secs(10)).await;
            anyhow::Ok(w)
        })?;

        let mut phase = Phase::Start;
        let mut armed = Some(fault);
        let (mut starts, mut cutovers) = (0usize, 0usize);
        let mut cut_over_at = None;
        while phase != Phase::Done {
            let step = if phase == Phase::Start {
                Step::Start
            } else {
                Step::Cutover
            };
            let fault = armed.filter(|f| f.step == step);
            if fault.is_some() {
                armed = None;
            }
            let began = Instant::now();
            let bytes = (s.source_proxy.forwarded(), s.target_proxy.forwarded());
            let cuts = s.source_proxy.cuts() + s.target_proxy.cuts();
            let r = self.step(step, &via, &tgt_url, fault.as_ref())?;
            if let Some(f) = fault {
                let fired = match f.kind {
                    Kind::Kill(_) => r.code.is_none(),
                    _ => s.source_proxy.cuts() + s.target_proxy.cuts() > cuts,
                };
                if !fired {
                    result
                        .fault
                        .push_str(" (did not strike: the step ended first)");
                }
            }
            s.source_proxy.heal();
            s.target_proxy.heal();
            let label = match step {
                Step::Start => "start",
                Step::Cutover => "cutover",
            };
            // With its time and the bytes through the source's and the target's proxy, so
            // the faults' moments and bytes can be kept within a step's.
            result.exits.push(format!(
                "{label} {} in {:.1}s, {}/{} kB",
                r.code.map_or("killed".to_owned(), |c| c.to_string()),
                began.elapsed().as_secs_f64(),
                (s.source_proxy.forwarded() - bytes.0) / 1000,
                (s.target_proxy.forwarded() - bytes.1) / 1000,
            ));
            if r.hung {
                result.wrong_exit(format_args!(
                    "chaos: replicate {label} hung for {HANG:?}: {}",
                    r.stderr
                ));
            }
            match r.code {
                Some(0..=2) | None => {}
                Some(c) => {
                    result.wrong_exit(format_args!(
                        "chaos: replicate {label} exited {c}: {}",
                        r.stderr
                    ));
                }
            }
            if r.code == Some(2) && r.journal_changed {
                result.wrong_exit(format_args!(
                    "chaos: replicate {label} exited 2 (nothing started) after writing to the journal: {}",
                    r.stderr
                ));
            }
            match (step, r.code) {
                (Step::Start, Some(0)) => phase = Phase::Cutover,
                (Step::Start, _) => {
                    starts += 1;
                    if starts > RERUNS {
                        break;
                    }
                    // An operator removes what a failed or killed start may have left.
                    let a = self.command(&["replicate", "abort"], &via, None)?;
                    result.exits.push(format!(
                        "abort {}",
                        a.code.map_or("killed".to_owned(), |c| c.to_string())
                    ));
                    if a.code != Some(0) {
                        result.wrong_exit(format_args!(
                            "chaos: replicate abort exited {:?}: {}",
                            a.code, a.stderr
                        ));
                    }
                }
                (Step::Cutover, Some(0)) => {
                    cut_over_at = Some(Instant::now());
                    phase = Phase::Done;
                }
                (Step::Cutover, Some(1 | 2)) if self.latest_run_succeeded(&tgt_url)? => {
                    // It cut over but left something it says (1), or a killed cutover had
                    // finished (2): there is nothing left to cut over.
                    cut_over_at = Some(Instant::now());
                    phase = Phase::Done;
                }
                (Step::Cutover, code) => {
                    let says_so = ["STILL FENCED", "the source stays fenced"]
                        .iter()
                        .any(|m| r.stderr.contains(m));
                    if code == Some(1) && self.fenced(&src_url)? && !says_so {
                        result.wrong_exit(format_args!(
                            "chaos: replicate cutover failed (1) and left the source fenced without saying so: {}",
                            r.stderr
                        ));
                    }
                    cutovers += 1;
                    if cutovers > RERUNS {
                        break;
                    }
                }
            }
        }
        if phase != Phase::Done {
            result.wrong_exit(format_args!(
                "chaos: replicate never cut over after {RERUNS} reruns"
            ));
        }

        // Writes go on after the cutover: they must be refused.
        let log = self.rt.block_on(async {
            writer.wait_for_writes(5, Duration::from_secs(5)).await;
            writer.stop().await
        })?;
        result.compared(
            self.compare(&src_url, &tgt_url, &log, cut_over_at)?,
            phase == Phase::Done,
        );
        if !log.failed.is_empty() {
            result.fault.push_str(&format!(
                "; {} writes failed otherwise, e.g. {}",
                log.failed.len(),
                log.failed[0]
            ));
        }
        result.fault.push_str(&format!(
            "; {} writes committed, {} refused",
            log.committed.len(),
            log.refused
        ));
        if phase != Phase::Done {
            let _ = self.command(&["replicate", "abort"], &via, None);
        }
        let left = self.leftovers(&src_url, &tgt_url)?;
        if !left.is_empty() {
            result
                .fault
                .push_str(&format!("; LEFT {}", left.join(", ")));
        }
        Ok(result)
    }

    fn step(
        &self,
        step: Step,
        via: &[String; 2],
        tgt_url: &str,
        fault: Option<&Fault>,
    ) -> anyhow::Result<Ran> {
        let args: Vec<&str> = match step {
            Step::Start => vec!["replicate", "start"],
            Step::Cutover => [FAULT_TRIAL_CUTOVER, &["--fence-lock-timeout", "10s"]].concat(),
        };
        let before = self.journal(tgt_url)?;
        let mut r = self.command(&args, via, fault)?;
        r.journal_changed = self.journal(tgt_url)? != before;
        Ok(r)
    }

    /// Runs ragshift with `args` and both sides through the proxies, `fault` striking it.
    fn command(
        &self,
        args: &[&str],
        via: &[String; 2],
        fault: Option<&Fault>,
    ) -> anyhow::Result<Ran> {
        let mut argv = args.to_vec();
        argv.extend(["--source", &via[0], "--target", &via[1]]);
        let err_path: PathBuf = self.dir.join(format!("{}.stderr", self.name));
        let mut cmd = command(self.ragshift, self.dir, &argv);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&err_path)?));
        if let Some(f) = fault {
            let proxy = if f.source_side {
                &self.servers.source_proxy
            } else {
                &self.servers.target_proxy
            };
            match f.kind {
                Kind::CutOne(b) => proxy.cut_one_after_bytes(b),
                Kind::CutAll(b) => proxy.cut_after_bytes(b),
                Kind::CommitAnswerLost(n) => proxy.cut_on_query("COMMIT", CutWhen::AfterReply, n),
                Kind::CommitLost(n) => proxy.cut_on_query("COMMIT", CutWhen::BeforeServer, n),
                Kind::Failover(..) | Kind::Kill(_) => {}
            }
        }
        let mut child = cmd.spawn().context("running ragshift")?;
        match fault.map(|f| (f.kind, f.source_side)) {
            Some((Kind::Failover(at, refuse), source_side)) => {
                wait_or_exit(&mut child, at)?;
                if source_side {
                    self.servers.source_proxy.failover(refuse);
                } else {
                    self.servers.target_proxy.failover(refuse);
                }
            }
            Some((Kind::Kill(seed), _)) => {
                let window = match args.get(1) {
                    Some(&"start") => Duration::from_millis(50)..Duration::from_millis(700),
                    _ => Duration::from_millis(100)..Duration::from_secs(3),
                };
                sigkill_at_random(&mut child, seed, window)?;
            }
            _ => {}
        }
        let deadline = Instant::now() + HANG;
        let mut hung = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                hung = true;
                child.kill()?;
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Ran {
            code: status.code(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
            journal_changed: false,
            hung,
        })
    }

    /// The target's journal as text ("" when there is none yet).
    fn journal(&self, tgt_url: &str) -> anyhow::Result<String> {
        self.rt.block_on(async {
            let t = self.servers.target.connect(tgt_url).await;
            let row = t
                .query_one(
                    "SELECT to_regclass('ragshift.runs') IS NOT NULL AND to_regclass('ragshift.units') IS NOT NULL",
                    &[],
                )
                .await?;
            if !row.get::<_, bool>(0) {
                return anyhow::Ok(String::new());
            }
            Ok(t.query_one(
                "SELECT coalesce((SELECT string_agg(r::text, '|' ORDER BY run_id) FROM ragshift.runs r), '')
                     || coalesce((SELECT string_agg(u::text, '|' ORDER BY run_id, unit_id) FROM ragshift.units u), '')",
                &[],
            )
            .await?
            .get(0))
        })
    }

    fn latest_run_succeeded(&self, tgt_url: &str) -> anyhow::Result<bool> {
        self.rt.block_on(async {
            let t = self.servers.target.connect(tgt_url).await;
            let status: Option<String> = t
                .query_opt(
                    "SELECT status FROM ragshift.runs WHERE kind = 'replicate'
                      ORDER BY started_at DESC, run_id DESC LIMIT 1",
                    &[],
                )
                .await?
                .map(|r| r.get(0));
            anyhow::Ok(status.as_deref() == Some("succeeded"))
        })
    }

    /// Whether a ragshift fence is on the source table.
    fn fenced(&self, src_url: &str) -> anyhow::Result<bool> {
        self.rt.block_on(async {
            let c = self.servers.source.connect(src_url).await;
            anyhow::Ok(
                c.query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname LIKE 'ragshift\\_fence\\_%')",
                    &[],
                )
                .await?
                .get(0),
            )
        })
    }

    /// Rows lost (missing or different on the target, or written after the cutover and not
    /// there) and rows extra on the target.
    fn compare(
        &self,
        src_url: &str,
        tgt_url: &str,
        log: &ragshift_testkit::WriteLog,
        cut_over_at: Option<Instant>,
    ) -> anyhow::Result<(u64, u64)> {
        self.rt.block_on(async {
            let s = self.servers.source.connect(src_url).await;
            let t = self.servers.target.connect(tgt_url).await;
            let diff = row_diff(&s, &t, &all_columns("items", "id")).await?;
            let mut lost = diff.lost;
            if let Some(at) = cut_over_at {
                // The last write to each row after the cutover reported success.
                let late: BTreeMap<&str, &Write> = log
                    .committed_after(at)
                    .map(|w| (w.id.as_str(), w))
                    .collect();
                let late: Vec<&Write> = late.into_values().collect();
                if !late.is_empty() {
                    eprintln!(
                        "chaos: {} writes committed on the source after the cutover reported success",
                        late.len()
                    );
                }
                lost.extend(writes_missing_on(&t, &late).await?);
            }
            anyhow::Ok((lost.len() as u64, diff.extra))
        })
    }

    /// Replication objects left behind on either side (dropped, so the next trials don't
    /// inherit them), by name.
    fn leftovers(&self, src_url: &str, tgt_url: &str) -> anyhow::Result<Vec<String>> {
        self.rt.block_on(async {
            let s = self.servers.source.connect(src_url).await;
            let t = self.servers.target.connect(tgt_url).await;
            let mut left = Vec::new();
            for r in t
                .query(
                    "SELECT subname::text FROM pg_subscription
                      WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    &[],
                )
                .await?
            {
                let name: String = r.get(0);
                let q = format!("\"{}\"", name.replace('"', "\"\""));
                t.batch_execute(&format!(
                    "ALTER SUBSCRIPTION {q} DISABLE; ALTER SUBSCRIPTION {q} SET (slot_name = NONE); DROP SUBSCRIPTION {q}"
                ))
                .await?;
                left.push(format!("subscription {name}"));
            }
            for r in s
                .query(
                    "SELECT slot_name::text, active_pid FROM pg_replication_slots WHERE database = current_database()",
                    &[],
                )
                .await?
            {
                let name: String = r.get(0);
                if let Some(pid) = r.get::<_, Option<i32>>(1) {
                    let _ = s
                        .execute("SELECT pg_terminate_backend($1)", &[&pid])
                        .await;
                }
                // The walsender may take a moment to go; a slot still active is named only.
                let _ = s
                    .execute("SELECT pg_drop_replication_slot($1)", &[&name])
                    .await;
                left.push(format!("slot {name}"));
            }
            for r in s.query("SELECT pubname::text FROM pg_publication", &[]).await? {
                left.push(format!("publication {}", r.get::<_, String>(0)));
            }
            anyhow::Ok(left)
        })
    }
}
