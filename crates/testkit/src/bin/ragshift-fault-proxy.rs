//! The fault proxy ([`ragshift_testkit::FaultProxy`]) as a process, for scripts: forwards a
//! loopback port to a PostgreSQL server and takes fault commands on stdin, one per line,
//! answering each with `ok ...` or `error: ...`. It stops when stdin closes.
//!
//! ```text
//! $ ragshift-fault-proxy 127.0.0.1:5432            # [--listen 127.0.0.1:0]
//! listening 127.0.0.1:40123
//! cut-random 42 100000        # cut every connection at a random byte (seeded)
//! ok cut after 31337 bytes
//! ```
//!
//! Commands: `cut` (every connection now), `cut-after BYTES`, `cut-random SEED MAX` (every
//! connection), `cut-one-after BYTES`, `cut-one-random SEED MAX` (the connection carrying that
//! byte), `cut-on-query PATTERN before|after [NTH]`, `failover-on-query PATTERN NTH MS`,
//! `stall MS`, `refuse [MS]`, `accept`, `failover MS` (cut all, refuse for MS), `heal`, `stats`.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use ragshift_testkit::{CutWhen, FaultProxy};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut upstream, mut listen) = (None, "127.0.0.1:0".to_owned());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => match it.next() {
                Some(l) => listen = l.clone(),
                None => return usage("--listen needs an address"),
            },
            "-h" | "--help" => return usage(""),
            other if upstream.is_none() => upstream = Some(other.to_owned()),
            other => return usage(&format!("unexpected argument {other}")),
        }
    }
    let Some(upstream) = upstream else {
        return usage("give the server as HOST:PORT");
    };
    let proxy = match FaultProxy::start_on(&listen, &upstream) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ragshift-fault-proxy: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "listening {}", proxy.addr())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply = match command(&proxy, line.trim()) {
            Ok(r) => format!("ok{}{r}", if r.is_empty() { "" } else { " " }),
            Err(e) => format!("error: {e}"),
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("ragshift-fault-proxy: {problem}");
    }
    eprintln!("usage: ragshift-fault-proxy HOST:PORT [--listen ADDR]; commands on stdin (see the source's header)");
    ExitCode::from(2)
}

fn command(proxy: &FaultProxy, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> Result<u64, String> {
        words
            .get(i)
            .ok_or_else(|| format!("{} needs a number", words[0]))?
            .parse::<u64>()
            .map_err(|e| format!("{}: {e}", words[0]))
    };
    match words.first().copied() {
        None => Ok(String::new()),
        Some("cut") => {
            proxy.cut_all();
            Ok(String::new())
        }
        Some("cut-after") => {
            let n = num(1)?;
            proxy.cut_after_bytes(n);
            Ok(format!("cut after {n} bytes"))
        }
        Some("cut-random") => {
            let at = proxy.cut_at_random_byte(num(1)?, num(2)?);
            Ok(format!("cut after {at} bytes"))
        }
        Some("cut-one-after") => {
            let n = num(1)?;
            proxy.cut_one_after_bytes(n);
            Ok(format!("cut after {n} bytes"))
        }
        Some("cut-one-random") => {
            let at = proxy.cut_one_at_random_byte(num(1)?, num(2)?);
            Ok(format!("cut after {at} bytes"))
        }
        Some("failover-on-query") => {
            let pattern = words.get(1).ok_or("failover-on-query PATTERN NTH MS")?;
            proxy.failover_on_query(pattern, num(2)? as u32, Duration::from_millis(num(3)?));
            Ok(String::new())
        }
        Some("cut-on-query") => {
            let pattern = words.get(1).ok_or("cut-on-query needs a pattern")?;
            let when = match words.get(2).copied() {
                Some("before") => CutWhen::BeforeServer,
                Some("after") => CutWhen::AfterReply,
                _ => return Err("cut-on-query PATTERN before|after [NTH]".into()),
            };
            let nth = if words.len() > 3 { num(3)? as u32 } else { 1 };
            proxy.cut_on_query(pattern, when, nth);
            Ok(String::new())
        }
        Some("stall") => {
            proxy.stall(Duration::from_millis(num(1)?));
            Ok(String::new())
        }
        Some("refuse") if words.len() == 1 => {
            proxy.refuse();
            Ok(String::new())
        }
        Some("refuse") => {
            proxy.refuse_for(Duration::from_millis(num(1)?));
            Ok(String::new())
        }
        Some("accept") => {
            proxy.accept();
            Ok(String::new())
        }
        Some("failover") => {
            proxy.failover(Duration::from_millis(num(1)?));
            Ok(String::new())
        }
        Some("heal") => {
            proxy.heal();
            Ok(String::new())
        }
        Some("stats") => Ok(format!(
            "connections={} refused={} cuts={} forwarded={}",
            proxy.connections(),
            proxy.refused(),
            proxy.cuts(),
            proxy.forwarded()
        )),
        Some(other) => Err(format!("unknown command {other}")),
    }
}
