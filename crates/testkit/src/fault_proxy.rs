//! Real network faults between ragshift and PostgreSQL: a loopback TCP proxy that forwards
//! bytes both ways and, when told, cuts every connection at a chosen (or seeded random) byte,
//! cuts the connection that sends a given query before the server sees it or after the server
//! answered (a COMMIT whose outcome the client never learns), stalls all traffic for a while,
//! or refuses new connections for a while (what an Aurora failover looks like to a client).
//!
//! The proxy runs on its own thread and runtime, so it works the same from a sync test, an
//! async test, or the `ragshift-fault-proxy` binary (commands on stdin, for scripts). Every
//! fault it fires is counted ([`FaultProxy::cuts`]) so a test can assert the fault happened.
//!
//! ```no_run
//! # fn demo(url: &str) {
//! use std::time::Duration;
//! use ragshift_testkit::{CutWhen, FaultProxy};
//! let proxy = FaultProxy::start("127.0.0.1:5432").unwrap();
//! let through = proxy.url_for(url); // hand this URL to ragshift
//! proxy.cut_on_query("COMMIT", CutWhen::AfterReply, 1);
//! proxy.failover(Duration::from_secs(3));
//! # drop(through);
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::rng::SeededRng;

/// When a query-triggered cut happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutWhen {
    /// The bytes holding the query never reach the server: the client can't know that it did
    /// not run (for a COMMIT: rolled back).
    BeforeServer,
    /// The query reaches the server and runs; its answer is swallowed and the connection cut
    /// (for a COMMIT: committed, and the client can't know it).
    AfterReply,
}

#[derive(Debug, Clone)]
struct QueryCut {
    pattern: Vec<u8>,
    when: CutWhen,
    /// Matches still to let pass before the one that fires.
    skip: u32,
    /// New connections are refused this long after it fired.
    then_refuse: Option<Duration>,
}

/// Which connections a byte-count cut closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every open connection.
    All,
    /// The one that carried the byte.
    One,
}

#[derive(Debug, Default)]
struct Control {
    /// New connections are dropped at once until then.
    refuse_until: Option<Instant>,
    /// Nothing is forwarded until then.
    stall_until: Option<Instant>,
    /// Connections are cut when the total of forwarded bytes reaches this.
    cut_at_total: Option<(u64, Scope)>,
    /// The connection sending this is cut.
    query_cut: Option<QueryCut>,
}

struct Shared {
    upstream: String,
    control: Mutex<Control>,
    /// Bumped to cut every open connection.
    cut_all: watch::Sender<u64>,
    forwarded: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    cuts: AtomicU64,
}

impl Shared {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cut_everything(&self) {
        self.cuts.fetch_add(1, Ordering::SeqCst);
        self.cut_all.send_modify(|n| *n += 1);
    }
}

/// A running proxy; dropping it stops it and closes every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("listen", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", upstream)
    }

    /// [`start`](Self::start) in front of `server` (a shared server or a [`PgCluster`]'s).
    ///
    /// [`PgCluster`]: crate::PgCluster
    pub fn in_front_of(server: &crate::PgServer) -> anyhow::Result<Self> {
        Self::start(&format!("{}:{}", server.host(), server.port()))
    }

    /// Starts a proxy listening on `listen` (`127.0.0.1:0` for any free port).
    pub fn start_on(listen: &str, upstream: &str) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("fault proxy: cannot listen on {listen}"))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            control: Mutex::new(Control::default()),
            cut_all: watch::channel(0).0,
            forwarded: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("fault proxy: building its runtime")?;
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("fault proxy: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        _ = serve(listener, serving.clone()) => {}
                        _ = stop_rx => {}
                    }
                    // Closes whatever is still open.
                    serving.cut_all.send_modify(|n| *n += 1);
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .context("fault proxy: starting its thread")?;
        Ok(Self {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        rewrite_url(url, &self.addr.to_string())
    }

    /// Cuts every open connection now.
    pub fn cut_all(&self) {
        self.shared.cut_everything();
    }

    /// Cuts every open connection once `bytes` more bytes have been forwarded (both
    /// directions, all connections together); fires once.
    pub fn cut_after_bytes(&self, bytes: u64) {
        self.arm_bytes(bytes, Scope::All);
    }

    /// Like [`cut_after_bytes`](Self::cut_after_bytes), but only the connection that carries
    /// that byte is cut (the others go on, as when one route or one backend fails).
    pub fn cut_one_after_bytes(&self, bytes: u64) {
        self.arm_bytes(bytes, Scope::One);
    }

    fn arm_bytes(&self, bytes: u64, scope: Scope) {
        let now = self.shared.forwarded.load(Ordering::SeqCst);
        self.shared.control().cut_at_total = Some((now + bytes.max(1), scope));
    }

    /// [`cut_after_bytes`](Self::cut_after_bytes) at a byte drawn from `seed` in `1..=max`;
    /// prints the seed and the byte so a failing trial can be replayed. Returns the byte.
    pub fn cut_at_random_byte(&self, seed: u64, max: u64) -> u64 {
        let at = 1 + SeededRng::new(seed).below(max.max(1));
        eprintln!("fault proxy: seed {seed}: cutting every connection after {at} more bytes");
        self.cut_after_bytes(at);
        at
    }

    /// [`cut_one_after_bytes`](Self::cut_one_after_bytes) at a byte drawn from `seed` in
    /// `1..=max`; prints the seed and the byte. Returns the byte.
    pub fn cut_one_at_random_byte(&self, seed: u64, max: u64) -> u64 {
        let at = 1 + SeededRng::new(seed).below(max.max(1));
        eprintln!("fault proxy: seed {seed}: cutting the connection carrying byte {at} from now");
        self.cut_one_after_bytes(at);
        at
    }

    /// Cuts the connection whose client sends bytes containing `pattern` (a query text such as
    /// `COMMIT`), on the `nth` (1-based) match from now; fires once.
    pub fn cut_on_query(&self, pattern: &str, when: CutWhen, nth: u32) {
        self.shared.control().query_cut = Some(QueryCut {
            pattern: pattern.as_bytes().to_vec(),
            when,
            skip: nth.saturating_sub(1),
            then_refuse: None,
        });
    }

    /// A failover that strikes in the middle of a given query: the connection sending the
    /// `nth` match of `pattern` is cut before the server sees it, and new connections are
    /// refused for `refuse` from then on (connections already open go on).
    pub fn failover_on_query(&self, pattern: &str, nth: u32, refuse: Duration) {
        self.shared.control().query_cut = Some(QueryCut {
            pattern: pattern.as_bytes().to_vec(),
            when: CutWhen::BeforeServer,
            skip: nth.saturating_sub(1),
            then_refuse: Some(refuse),
        });
    }

    /// Stops forwarding anything (all connections, both ways) for `d`; connections stay open.
    pub fn stall(&self, d: Duration) {
        self.shared.control().stall_until = Some(Instant::now() + d);
    }

    /// Drops new connections as soon as they are accepted, for `d`.
    pub fn refuse_for(&self, d: Duration) {
        self.shared.control().refuse_until = Some(Instant::now() + d);
    }

    /// Drops new connections until [`accept`](Self::accept).
    pub fn refuse(&self) {
        self.refuse_for(Duration::from_secs(365 * 24 * 3600));
    }

    /// Accepts new connections again.
    pub fn accept(&self) {
        self.shared.control().refuse_until = None;
    }

    /// An Aurora failover as a client sees it: every connection cut now, new ones refused
    /// for `d`.
    pub fn failover(&self, d: Duration) {
        self.refuse_for(d);
        self.cut_all();
    }

    /// Disarms pending cuts and stalls, and accepts again.
    pub fn heal(&self) {
        *self.shared.control() = Control::default();
    }

    /// Faults fired so far (cuts of all connections, query cuts).
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Connections accepted and forwarded so far.
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections dropped on arrival so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far (both directions).
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Replaces the host and port of a `postgres://user:pw@host:port/db?...` URL.
fn rewrite_url(url: &str, host_port: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
    match userinfo {
        Some(u) => format!("{scheme}://{u}@{host_port}{tail}"),
        None => format!("{scheme}://{host_port}{tail}"),
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let refusing = {
            let mut c = shared.control();
            match c.refuse_until {
                Some(t) if Instant::now() < t => true,
                Some(_) => {
                    c.refuse_until = None;
                    false
                }
                None => false,
            }
        };
        if refusing {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            // A reset rather than a polite close, like a host that is gone.
            let _ = client.set_zero_linger();
            drop(client);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&shared.upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            relay(client, server, shared).await;
        });
    }
}

/// Forwards both ways until either side closes or a fault cuts the connection.
async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let mut cut_rx = shared.cut_all.subscribe();
    cut_rx.mark_unchanged();
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    // Set by the client-to-server side when the server's next answer must be swallowed.
    let doomed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (end_tx, _) = watch::channel(false);
    let up = pump(cr, sw, true, shared.clone(), doomed.clone(), end_tx.clone());
    let down = pump(sr, cw, false, shared.clone(), doomed, end_tx.clone());
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut_rx.changed() => {}
    }
    // Dropping the halves closes both sockets.
}

/// One direction. Returns when its source closes or the connection is cut (then it tells the
/// other direction through `end`).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    upstream: bool,
    shared: Arc<Shared>,
    doomed: Arc<std::sync::atomic::AtomicBool>,
    end: watch::Sender<bool>,
) {
    let mut end_rx = end.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    // The tail of the previous read, so a pattern split across reads is still found.
    let mut tail: Vec<u8> = Vec::new();
    // What the server answered a doomed query so far (swallowed, never forwarded).
    let mut swallowed: Vec<u8> = Vec::new();
    loop {
        // A stall holds everything (checked before each read and each write).
        wait_stall(&shared).await;
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            _ = end_rx.changed() => return,
        };
        let mut chunk = &buf[..n];
        if !upstream && doomed.load(Ordering::SeqCst) {
            // The server is answering the doomed query: swallow the answer up to its end
            // (ReadyForQuery, so that every statement of it has run, a COMMIT included), then cut.
            swallowed.extend_from_slice(chunk);
            if contains(&swallowed, READY_FOR_QUERY) {
                shared.cuts.fetch_add(1, Ordering::SeqCst);
                end.send_replace(true);
                return;
            }
            continue;
        }
        if upstream {
            let mut hay = std::mem::take(&mut tail);
            hay.extend_from_slice(chunk);
            let fire = {
                let mut c = shared.control();
                let mut fire = None;
                if let Some(q) = &mut c.query_cut {
                    if contains(&hay, &q.pattern) {
                        if q.skip == 0 {
                            fire = Some(q.when);
                        } else {
                            q.skip -= 1;
                        }
                    }
                }
                if fire.is_some() {
                    if let Some(d) = c.query_cut.as_ref().and_then(|q| q.then_refuse) {
                        c.refuse_until = Some(Instant::now() + d);
                    }
                    c.query_cut = None;
                }
                let keep = c.query_cut.as_ref().map_or(0, |q| q.pattern.len());
                tail = hay[hay.len().saturating_sub(keep)..].to_vec();
                fire
            };
            match fire {
                Some(CutWhen::BeforeServer) => {
                    shared.cuts.fetch_add(1, Ordering::SeqCst);
                    end.send_replace(true);
                    return;
                }
                Some(CutWhen::AfterReply) => doomed.store(true, Ordering::SeqCst),
                None => {}
            }
        }
        // The byte budget of an armed cut.
        let before = shared.forwarded.fetch_add(n as u64, Ordering::SeqCst);
        let threshold = {
            let mut c = shared.control();
            match c.cut_at_total {
                Some((t, scope)) if t <= before + n as u64 => {
                    c.cut_at_total = None;
                    Some((t, scope))
                }
                _ => None,
            }
        };
        if let Some((t, scope)) = threshold {
            let keep = t.saturating_sub(before) as usize;
            chunk = &chunk[..keep.min(chunk.len())];
            let _ = to.write_all(chunk).await;
            let _ = to.flush().await;
            match scope {
                Scope::All => shared.cut_everything(),
                Scope::One => {
                    shared.cuts.fetch_add(1, Ordering::SeqCst);
                }
            }
            end.send_replace(true);
            return;
        }
        wait_stall(&shared).await;
        if to.write_all(chunk).await.is_err() {
            end.send_replace(true);
            return;
        }
    }
}

async fn wait_stall(shared: &Shared) {
    loop {
        let until = shared.control().stall_until;
        match until {
            Some(t) if Instant::now() < t => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await
            }
            _ => return,
        }
    }
}

/// The start of a ReadyForQuery message ('Z', length 5): the server has finished a query.
const READY_FOR_QUERY: &[u8] = b"Z\0\0\0\x05";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_pointed_at_the_proxy() {
        assert_eq!(
            rewrite_url(
                "postgres://u:p%40w@db.example:5432/rag?sslmode=disable",
                "127.0.0.1:9"
            ),
            "postgres://u:p%40w@127.0.0.1:9/rag?sslmode=disable"
        );
        assert_eq!(
            rewrite_url("postgres://localhost/rag", "127.0.0.1:9"),
            "postgres://127.0.0.1:9/rag"
        );
    }

    #[test]
    fn patterns_are_found_anywhere() {
        assert!(contains(b"xxQ\0\0\0\x0bCOMMIT\0", b"COMMIT"));
        assert!(!contains(b"COMMI", b"COMMIT"));
        assert!(!contains(b"abc", b""));
    }
}
