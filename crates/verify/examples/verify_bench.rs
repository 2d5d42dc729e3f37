//! Runs one verification (what `ragshift verify` runs) between two databases and prints the
//! result and its wall time as JSON, for `bench/verify/run.sh`.
//!
//! `verify_bench SOURCE_URL TARGET_URL QUERIES`

use std::time::Instant;

use ragshift_store::{connect, ConnectSpec, Layout};
use ragshift_verify::{verify, Options, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, source, target, queries] = args.as_slice() else {
        return Err("usage: verify_bench SOURCE_URL TARGET_URL QUERIES".into());
    };
    let (s_spec, t_spec) = (
        ConnectSpec::from_url(source, None, None)?,
        ConnectSpec::from_url(target, None, None)?,
    );
    let started = Instant::now();
    let (s, t, beside) = (
        connect(&s_spec, "verify bench").await?,
        connect(&t_spec, "verify bench").await?,
        connect(&t_spec, "verify bench").await?,
    );
    let layout = Layout::default();
    let options = Options {
        queries: queries.parse()?,
        ..Options::default()
    };
    let report = verify(
        &Store {
            client: &s,
            layout: &layout,
            label: s_spec.label(),
            beside: None,
        },
        &Store {
            client: &t,
            layout: &layout,
            label: t_spec.label(),
            beside: Some(&beside),
        },
        &options,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "seconds": seconds,
        "passed": report.passed(),
        "rows": report.checksums.source_rows,
        "overlap": report.retrieval.as_ref().map(|r| r.overlap_at_k),
        "recall": report.retrieval.as_ref().map(|r| r.recall_at_k),
    });
    std::io::Write::write_all(&mut std::io::stdout(), format!("{out}\n").as_bytes())?;
    Ok(())
}
