//! Starts the servers shared by a whole test run — a PostgreSQL + pgvector cluster and a moto
//! server — and keeps them up until its standard input closes or it is told to stop
//! (SIGTERM, SIGINT, SIGHUP); then it stops both and deletes their files before exiting.
//!
//! Once both answer it prints, one per line, the variables that tell the testkit to use them,
//! then `ready`:
//!
//! ```text
//! RAGSHIFT_TEST_PG_URL=postgres://postgres:…@127.0.0.1:41235/
//! RAGSHIFT_TEST_MOTO_URL=http://127.0.0.1:40117
//! ready
//! ```
//!
//! `scripts/test` runs it as a coprocess. If it dies without stopping them, the servers' own
//! reapers still do.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use ragshift_testkit::{env, MotoServer, PgCluster};
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ragshift-test-servers: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let pg = PgCluster::builder()
        .try_start()
        .context("starting PostgreSQL")?;
    let moto = MotoServer::try_start().context("starting moto")?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}={}", env::TEST_PG_URL, pg.url(""))?;
    writeln!(out, "{}={}", env::TEST_MOTO_URL, moto.endpoint_url())?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);

    wait_for_shutdown()?;
    drop(moto);
    drop(pg);
    Ok(())
}

/// Returns when stdin reaches end of file or a termination signal arrives.
fn wait_for_shutdown() -> anyhow::Result<()> {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = closed_rx => {}
            _ = term.recv() => {}
            _ = hangup.recv() => {}
            _ = interrupt.recv() => {}
        }
        anyhow::Ok(())
    })
}
