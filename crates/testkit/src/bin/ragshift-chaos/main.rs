//! Chaos trials of ragshift's strategies under real faults, run by `scripts/chaos`.
//!
//! It starts its own PostgreSQL clusters (a source and a target) and puts a
//! [`FaultProxy`](ragshift_testkit::FaultProxy) in front of the target. Each trial draws a seed,
//! injects one fault chosen by it (a connection cut at a random byte, a COMMIT whose answer is
//! lost or that never arrives, a failover refusing connections for seconds, every connection
//! cut, or a SIGKILL of ragshift at a random moment), then runs the same command again until it
//! succeeds, and compares source and target independently of ragshift (every column of every
//! row, by the server's own text form; a rebuild's target with a clean rebuild, see
//! [`rebuild`]). It prints, per strategy, the trials, rows lost, rows duplicated (or extra)
//! and wrong exit codes, and exits 1 unless all are zero. Replicate trials (`replicate.rs`) run
//! their own clusters, with a writer on the source throughout.
//!
//! ```text
//! ragshift-chaos --ragshift target/debug/ragshift [--trials 20] [--strategies copy,import,rebuild,replicate] [--seed S]
//! ```
//!
//! A wrong exit code is: 2 once work had started (it means "nothing started"), anything but
//! 0/1 from a run that wasn't killed, 0 from a run that left the target different from the
//! source, or a trial that doesn't reach 0 within a few reruns.

// The tally is this program's output.
#![allow(clippy::print_stdout)]

mod rebuild;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use ragshift_testkit::{sigkill_at_random, CutWhen, FaultProxy, PgCluster, PgOptions, SeededRng};

mod replicate;

/// The chunk table: the platform's layout with awkward rows (NULLs, long and non-ASCII texts,
/// a big bot split by id range, many small ones).
fn fixture() -> String {
    ragshift_testkit::awkward_items(ragshift_testkit::AwkwardItems {
        rows: 4000,
        big_bot_rows: 1500,
        small_bots: 40,
        long_repeat: 2000,
    })
}

/// Every row as the server prints it (layout columns, so an import's table compares too).
const ROWS: &str = "SELECT id::text, md5(row(id::text, botid::text, content, source, embedding::text)::text) FROM items";

/// Where in a strategy's run its faults land: a byte cut somewhere in `bytes` of what the run
/// sends and receives through the proxy, a failover or SIGKILL within `run` of its start.
#[derive(Debug, Clone)]
pub struct Scale {
    bytes: std::ops::Range<u64>,
    run: Duration,
}

/// The scale of a copy or an import of [`fixture`].
fn table_scale() -> Scale {
    Scale {
        bytes: 100_000..6_100_000,
        run: Duration::from_secs(5),
    }
}

/// Reruns after the faulted run before a trial counts as not recovering.
const RERUNS: usize = 4;

#[derive(Default, Debug)]
struct Tally {
    trials: u32,
    lost: u64,
    duplicated: u64,
    wrong_exit: u32,
    bad_seeds: Vec<String>,
}

impl Tally {
    /// Counts one trial and prints its line.
    fn add(&mut self, strategy: &str, trial: u32, seed: u64, r: &TrialResult) {
        self.trials += 1;
        self.lost += r.lost;
        self.duplicated += r.duplicated;
        self.wrong_exit += r.wrong_exit;
        let bad = r.lost + r.duplicated + u64::from(r.wrong_exit) > 0;
        eprintln!(
            "chaos: {strategy} trial {trial} seed {seed}: {} → exits {:?}: lost {}, duplicated {}, wrong exits {}{}",
            r.fault, r.exits, r.lost, r.duplicated, r.wrong_exit, if bad { "  <-- BAD" } else { "" }
        );
        if bad {
            self.bad_seeds.push(format!("{seed} ({})", r.fault));
        }
    }

    /// Nothing lost, duplicated or wrongly reported.
    fn good(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.wrong_exit == 0
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ragshift-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    ragshift: PathBuf,
    trials: u32,
    strategies: Vec<String>,
    seed: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        ragshift: PathBuf::new(),
        trials: 20,
        strategies: vec![
            "copy".into(),
            "import".into(),
            "rebuild".into(),
            "replicate".into(),
        ],
        seed: SeededRng::fresh_seed(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--ragshift" => a.ragshift = PathBuf::from(v()?),
            "--trials" => a.trials = v()?.parse().context("--trials")?,
            "--strategies" => a.strategies = v()?.split(',').map(str::to_owned).collect(),
            "--seed" => a.seed = v()?.parse().context("--seed")?,
            other => bail!("unknown argument {other}"),
        }
    }
    if !a.ragshift.is_file() {
        bail!("--ragshift must name the ragshift binary");
    }
    Ok(a)
}

/// Starts a private cluster with `options`; `what` names it in an error.
fn start_cluster(options: PgOptions, what: &str) -> anyhow::Result<PgCluster> {
    options
        .try_start()
        .with_context(|| format!("starting {what}"))
}

fn run() -> anyhow::Result<bool> {
    let a = args()?;
    eprintln!(
        "chaos: master seed {} ({} trials per strategy)",
        a.seed, a.trials
    );
    let source = start_cluster(PgCluster::builder(), "the source")?;
    let target = start_cluster(PgCluster::builder(), "the target")?;
    let proxy = FaultProxy::in_front_of(&target)?;
    let src_url = source.create_database("chaos_src");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let c = source.connect(&src_url).await;
        c.batch_execute(&fixture()).await
    })?;
    let work = tempfile::tempdir()?;
    let export_dir = work.path().join("export");
    let mut rebuild_fixture: Option<rebuild::Rebuild> = None;
    let mut master = SeededRng::new(a.seed);
    let mut results = Vec::new();
    let mut all_good = true;
    for strategy in &a.strategies {
        let mut tally = Tally::default();
        match strategy.as_str() {
            "copy" | "import" | "rebuild" => {}
            "replicate" => {
                let tally = replicate::trials(&a, &mut master, work.path(), &rt)?;
                all_good &= tally.good();
                results.push((strategy.clone(), tally));
                continue;
            }
            other => {
                println!("{other}: not covered (copy, import, rebuild and replicate are)");
                continue;
            }
        }
        if strategy == "import" && !export_dir.exists() {
            let out = ragshift(
                &a.ragshift,
                work.path(),
                &[
                    "export",
                    "--source",
                    &src_url,
                    "--to",
                    &export_dir.display().to_string(),
                ],
            )?;
            if out.status.code() != Some(0) {
                bail!("the export for the import trials failed: {}", text(&out));
            }
        }
        if strategy == "rebuild" && rebuild_fixture.is_none() {
            rebuild_fixture = Some(rebuild::Rebuild::prepare(
                &a.ragshift,
                work.path(),
                &target,
                &proxy,
                &rt,
            )?);
        }
        let scale = match (strategy.as_str(), &rebuild_fixture) {
            ("rebuild", Some(r)) => r.scale.clone(),
            _ => table_scale(),
        };
        for trial in 0..a.trials {
            let seed = master.next_u64();
            let t = Trial {
                strategy,
                seed,
                ragshift: &a.ragshift,
                dir: work.path(),
                src_url: &src_url,
                export_dir: &export_dir,
                target: &target,
                proxy: &proxy,
                rt: &rt,
                name: format!("chaos_{strategy}_{trial}"),
                scale: scale.clone(),
                rebuild: rebuild_fixture.as_ref(),
            };
            let r = t.run()?;
            proxy.heal();
            tally.add(strategy, trial, seed, &r);
        }
        all_good &= tally.good();
        results.push((strategy.clone(), tally));
    }
    println!("strategy  trials  lost rows  duplicated rows  wrong exit codes");
    for (s, t) in &results {
        println!(
            "{s:<8}  {:>6}  {:>9}  {:>15}  {:>16}",
            t.trials, t.lost, t.duplicated, t.wrong_exit
        );
        for b in &t.bad_seeds {
            println!("  bad trial: seed {b}");
        }
    }
    Ok(all_good)
}

fn ragshift(bin: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    command(bin, dir, args).output().context("running ragshift")
}

fn command(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = ragshift_testkit::env::isolated_command(bin, dir);
    cmd.args(args);
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Trial<'a> {
    strategy: &'a str,
    seed: u64,
    ragshift: &'a Path,
    dir: &'a Path,
    src_url: &'a str,
    export_dir: &'a Path,
    target: &'a PgCluster,
    proxy: &'a FaultProxy,
    rt: &'a tokio::runtime::Runtime,
    name: String,
    scale: Scale,
    rebuild: Option<&'a rebuild::Rebuild>,
}

/// What one trial found: its fault, the exit of each run, rows lost or duplicated, and exit codes
/// that did not tell the truth.
struct TrialResult {
    fault: String,
    exits: Vec<String>,
    lost: u64,
    duplicated: u64,
    wrong_exit: u32,
}

impl TrialResult {
    /// A trial of `fault` before its first run.
    fn new(fault: String) -> Self {
        Self {
            fault,
            exits: Vec::new(),
            lost: 0,
            duplicated: 0,
            wrong_exit: 0,
        }
    }

    /// Counts an exit code that did not tell the truth, saying why.
    fn wrong_exit(&mut self, why: std::fmt::Arguments<'_>) {
        self.wrong_exit += 1;
        eprintln!("{why}");
    }

    /// Records the rows the final comparison found lost and duplicated; a run that reported
    /// success with any of them also exited wrongly.
    fn compared(&mut self, (lost, duplicated): (u64, u64), succeeded: bool) {
        self.lost = lost;
        self.duplicated = duplicated;
        if succeeded && lost + duplicated > 0 {
            self.wrong_exit += 1;
        }
    }
}

/// A fault for the first run of a trial.
enum Fault {
    /// Armed on the proxy before the run.
    Proxy(String),
    /// Every connection cut, new ones refused for a while, at a random moment of the run.
    FailoverAt(Duration, Duration),
    /// SIGKILL at a random moment of the run.
    KillAt(u64),
}

impl Trial<'_> {
    fn args(&self, via: &str, rerun: bool, resume: bool) -> Vec<String> {
        let mut v: Vec<String> = match self.strategy {
            "rebuild" => match self.rebuild {
                Some(r) => r.args(via),
                None => Vec::new(),
            },
            "copy" => vec![
                "copy".into(),
                "--source".into(),
                self.src_url.into(),
                "--target".into(),
                via.into(),
                "--jobs".into(),
                "2".into(),
                "--partition-rows".into(),
                "300".into(),
                "--retry-budget".into(),
                "60".into(),
            ],
            _ => vec![
                "import".into(),
                "--from".into(),
                self.export_dir.display().to_string(),
                "--target".into(),
                via.into(),
            ],
        };
        if rerun && resume && self.strategy == "copy" {
            v.push("--resume".into());
        }
        v
    }

    fn choose(&self, rng: &mut SeededRng) -> Fault {
        let p = self.proxy;
        match rng.below(7) {
            0 => {
                let at = self.scale.bytes.start
                    + rng.below(self.scale.bytes.end - self.scale.bytes.start);
                p.cut_one_after_bytes(at);
                Fault::Proxy(format!("the connection carrying byte {at} cut"))
            }
            1 => {
                let at = self.scale.bytes.start
                    + rng.below(self.scale.bytes.end - self.scale.bytes.start);
                p.cut_after_bytes(at);
                Fault::Proxy(format!("every connection cut at byte {at}"))
            }
            2 => {
                let nth = 1 + rng.below(12) as u32;
                p.cut_on_query("COMMIT", CutWhen::AfterReply, nth);
                Fault::Proxy(format!("COMMIT {nth} committed, its answer lost"))
            }
            3 => {
                let nth = 1 + rng.below(12) as u32;
                p.cut_on_query("COMMIT", CutWhen::BeforeServer, nth);
                Fault::Proxy(format!("COMMIT {nth} lost on the way"))
            }
            4 => {
                let nth = 1 + rng.below(8) as u32;
                let ms = 500 + rng.below(4000);
                p.failover_on_query("FROM STDIN", nth, Duration::from_millis(ms));
                Fault::Proxy(format!("COPY {nth} cut, connections refused for {ms} ms"))
            }
            5 => Fault::FailoverAt(
                rng.duration_in(Duration::from_millis(200), self.scale.run.mul_f32(0.8)),
                rng.duration_in(Duration::from_millis(500), Duration::from_secs(4)),
            ),
            _ => Fault::KillAt(rng.next_u64()),
        }
    }

    fn run(&self) -> anyhow::Result<TrialResult> {
        let url = self.target.fresh_database(&self.name);
        let via = self.proxy.url_for(&url);
        let mut rng = SeededRng::new(self.seed);
        let fault = self.choose(&mut rng);
        let mut killed = false;
        let description;
        let first_args = self.args(&via, false, false);
        let first: Vec<&str> = first_args.iter().map(String::as_str).collect();
        let mut child = command(self.ragshift, self.dir, &first)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        match fault {
            Fault::Proxy(d) => description = d,
            Fault::FailoverAt(at, refuse) => {
                description = format!("failover after {at:?} refusing for {refuse:?}");
                wait_or_exit(&mut child, at)?;
                self.proxy.failover(refuse);
            }
            Fault::KillAt(seed) => {
                description = format!("SIGKILL (seed {seed})");
                killed = sigkill_at_random(
                    &mut child,
                    seed,
                    Duration::from_millis(100)..self.scale.run,
                )?
                .is_some();
            }
        }
        let mut result = TrialResult::new(description);
        let mut pid = child.id();
        let out = child.wait_with_output()?;
        let mut code = out.status.code();
        result
            .exits
            .push(code.map_or("killed".to_owned(), |c| c.to_string()));
        if !killed && !self.exit_ok(code, pid, &url)? {
            result.wrong_exit(format_args!(
                "chaos: wrong exit {code:?} from the faulted run: {}",
                text(&out)
            ));
        }
        let mut reruns = 0;
        while code != Some(0) {
            if reruns == RERUNS {
                result.wrong_exit(format_args!("chaos: still failing after {RERUNS} reruns"));
                break;
            }
            reruns += 1;
            self.proxy.heal();
            let resume = self.has_copy_run(&url)?;
            let args = self.args(&via, true, resume);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = command(self.ragshift, self.dir, &argv)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            pid = child.id();
            let out = child.wait_with_output()?;
            code = out.status.code();
            result
                .exits
                .push(code.map_or("killed".to_owned(), |c| c.to_string()));
            if !self.exit_ok(code, pid, &url)? {
                result.wrong_exit(format_args!(
                    "chaos: wrong exit {code:?} from a rerun: {}",
                    text(&out)
                ));
            }
        }
        result.compared(self.compare(&url)?, code == Some(0));
        // A rebuild's exit 0 must agree with its journal: no run left running (a killed one is
        // recorded failed by the next), and the last process's run succeeded.
        if code == Some(0)
            && self.strategy == "rebuild"
            && self.journal_has(
                &url,
                "status = 'running' OR (pid = $1::int AND status <> 'succeeded')",
                pid as i32,
            )?
        {
            result.wrong_exit(format_args!(
                "chaos: exit 0, but the journal holds a run still running or not succeeded"
            ));
        }
        Ok(result)
    }

    /// 0 and 1 are always possible outcomes of a faulted run; 2 ("nothing started") only when
    /// the run left no trace in the journal (copy, import and rebuild record their process id
    /// there).
    fn exit_ok(&self, code: Option<i32>, pid: u32, url: &str) -> anyhow::Result<bool> {
        match code {
            Some(0 | 1) => Ok(true),
            Some(2) => {
                let url = url.to_owned();
                let recorded = self.journal_has(&url, "pid = $1::int", pid as i32)?;
                Ok(!recorded)
            }
            _ => Ok(false),
        }
    }

    fn has_copy_run(&self, url: &str) -> anyhow::Result<bool> {
        self.journal_has(url, "kind = 'copy' AND $1::int IS NOT NULL", 0)
    }

    /// Whether the target's journal has a run matching `filter` (with `$1` = `arg`).
    fn journal_has(&self, url: &str, filter: &str, arg: i32) -> anyhow::Result<bool> {
        let url = url.to_owned();
        self.rt.block_on(async {
            let c = self.target.connect(&url).await;
            let journal: bool = c
                .query_one("SELECT to_regclass('ragshift.runs') IS NOT NULL", &[])
                .await?
                .get(0);
            if !journal {
                return Ok(false);
            }
            let sql = format!("SELECT EXISTS (SELECT 1 FROM ragshift.runs WHERE {filter})");
            Ok(c.query_one(&sql, &[&arg]).await?.get(0))
        })
    }

    /// Rows of the source missing or different on the target, and rows on the target beyond
    /// the source's (duplicates and extras).
    fn compare(&self, url: &str) -> anyhow::Result<(u64, u64)> {
        if let (Some(r), "rebuild") = (self.rebuild, self.strategy) {
            return r.compare(self.target, url, self.rt);
        }
        let (src_url, url) = (self.src_url.to_owned(), url.to_owned());
        self.rt.block_on(async {
            let s = self.target.connect(&src_url).await;
            let t = self.target.connect(&url).await;
            let d = ragshift_testkit::row_diff(&s, &t, ROWS).await?;
            anyhow::Ok((d.lost.len() as u64, d.extra))
        })
    }
}

/// Waits `d` unless the child exits first.
fn wait_or_exit(child: &mut std::process::Child, d: Duration) -> anyhow::Result<()> {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
