//! The application, writing to the source while a migration runs: a task that inserts,
//! updates and deletes rows of the platform's `items` table (`id CHAR(26)`, `botid`,
//! `content`, `source`, `embedding vector(n)`), one statement per transaction, and records
//! every write that committed and when it was sent, and every write the source refused. A
//! replication test then checks that every committed write reached the target and that none
//! committed after the cutover's fence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;
use tokio_postgres::Client;

use crate::pg_server::connect;
use crate::rng::SeededRng;

/// The SQLSTATE a ragshift cutover fence refuses writes with (`read_only_sql_transaction`).
const FENCED: &str = "25006";

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// A new row.
    Insert,
    /// New content and embedding for an existing row.
    Update,
    /// A row removed.
    Delete,
}

/// A write the source acknowledged as committed.
#[derive(Debug, Clone)]
pub struct Write {
    /// What it did.
    pub op: WriteOp,
    /// The row's id.
    pub id: String,
    /// The content it wrote (`None` for a delete).
    pub content: Option<String>,
    /// When it was sent: it committed after this moment.
    pub sent: Instant,
}

/// Everything the writer saw.
#[derive(Debug, Clone, Default)]
pub struct WriteLog {
    /// Writes that committed, in order.
    pub committed: Vec<Write>,
    /// Writes refused by a fence (SQLSTATE 25006).
    pub refused: u64,
    /// When the first write was refused by a fence, and the server's message.
    pub first_refused: Option<(Instant, String)>,
    /// Writes that failed otherwise, with the error.
    pub failed: Vec<String>,
}

impl WriteLog {
    /// Committed writes sent after `moment` (e.g. after a cutover reported success).
    pub fn committed_after(&self, moment: Instant) -> impl Iterator<Item = &Write> {
        self.committed.iter().filter(move |w| w.sent > moment)
    }
}

/// A running writer; [`stop`](Self::stop) it to get its log.
#[derive(Debug)]
pub struct SourceWriter {
    stop: watch::Sender<bool>,
    committed: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<anyhow::Result<WriteLog>>,
}

impl SourceWriter {
    /// Connects to `url` (directly: the writer is the application, not ragshift) and starts
    /// writing on the current tokio runtime, a write every few milliseconds, the choice of
    /// write and row drawn from `seed`.
    pub async fn start(url: &str, seed: u64) -> anyhow::Result<Self> {
        let client = connect(url)
            .await
            .context("the writer could not connect to the source")?;
        let dimension: i32 = client
            .query_one(
                "SELECT atttypmod FROM pg_attribute
                  WHERE attrelid = 'items'::regclass AND attname = 'embedding'",
                &[],
            )
            .await
            .context("the writer could not read the embedding's dimension")?
            .get(0);
        let ids: Vec<String> = client
            .query("SELECT id::text FROM items ORDER BY id", &[])
            .await
            .context("the writer could not read the items")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let (stop, stop_rx) = watch::channel(false);
        let committed = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_until_stopped(
            client,
            ids,
            dimension.max(1) as u64,
            seed,
            stop_rx,
            committed.clone(),
            refused.clone(),
        ));
        Ok(Self {
            stop,
            committed,
            refused,
            task,
        })
    }

    /// Writes committed so far.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// Writes refused by a fence so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Waits until `n` more writes than now have been committed or refused, or `timeout`
    /// passed; returns whether they were.
    pub async fn wait_for_writes(&self, n: u64, timeout: Duration) -> bool {
        let start = self.committed() + self.refused();
        let deadline = Instant::now() + timeout;
        while self.committed() + self.refused() < start + n {
            if Instant::now() >= deadline || self.task.is_finished() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops writing and returns what happened.
    pub async fn stop(self) -> anyhow::Result<WriteLog> {
        let _ = self.stop.send(true);
        self.task.await.context("the writer task panicked")?
    }
}

async fn write_until_stopped(
    client: Client,
    mut alive: Vec<String>,
    dimension: u64,
    seed: u64,
    mut stop: watch::Receiver<bool>,
    committed: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
) -> anyhow::Result<WriteLog> {
    let mut rng = SeededRng::new(seed);
    let mut log = WriteLog::default();
    let insert = client
        .prepare(
            "INSERT INTO items (id, botid, content, source, embedding)
             VALUES ($1, $2, $3, $4, $5::text::vector)",
        )
        .await?;
    let update = client
        .prepare("UPDATE items SET content = $2, embedding = $3::text::vector WHERE id = $1")
        .await?;
    let delete = client.prepare("DELETE FROM items WHERE id = $1").await?;
    for n in 0u64.. {
        if *stop.borrow() {
            break;
        }
        let content = format!("written {n} (writer {seed})");
        let embedding = format!(
            "[{}]",
            (0..dimension)
                .map(|d| format!("{:.4}", ((n * dimension + d) as f64 * 0.37).sin()))
                .collect::<Vec<_>>()
                .join(",")
        );
        let pick = rng.below(10);
        let (op, id) = if pick < 5 || alive.len() < 10 {
            (WriteOp::Insert, format!("W{n:0>25}"))
        } else {
            let i = rng.below(alive.len() as u64) as usize;
            let op = if pick < 8 {
                WriteOp::Update
            } else {
                WriteOp::Delete
            };
            (op, alive[i].clone())
        };
        let sent = Instant::now();
        let result = match op {
            WriteOp::Insert => {
                let bot = format!("BOT{:0>23}", rng.below(5));
                let source = format!("s3://bucket/written-{}.pdf", n % 3);
                client
                    .execute(&insert, &[&id, &bot, &content, &source, &embedding])
                    .await
            }
            WriteOp::Update => client.execute(&update, &[&id, &content, &embedding]).await,
            WriteOp::Delete => client.execute(&delete, &[&id]).await,
        };
        match result {
            Ok(_) => {
                match op {
                    WriteOp::Insert => alive.push(id.clone()),
                    WriteOp::Delete => alive.retain(|a| a != &id),
                    WriteOp::Update => {}
                }
                log.committed.push(Write {
                    op,
                    id,
                    content: (op != WriteOp::Delete).then_some(content),
                    sent,
                });
                committed.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) if e.code().map(|c| c.code()) == Some(FENCED) => {
                log.refused += 1;
                log.first_refused.get_or_insert_with(|| {
                    let message = e.as_db_error().map(|d| d.message().to_owned());
                    (Instant::now(), message.unwrap_or_default())
                });
                refused.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                if client.is_closed() {
                    anyhow::bail!("the writer lost its connection to the source: {e}");
                }
                log.failed.push(e.to_string());
            }
        }
        // The pace of a busy application, not a synchronisation.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(4)) => {}
            _ = stop.changed() => {}
        }
    }
    Ok(log)
}

/// Committed writes whose effect is not on the target (`target` holds the migrated `items`):
/// an insert or update whose row is missing or holds other content, a delete whose row is
/// still there. Only a write no later write to the same row superseded can be checked, so
/// pass the writes that must be there and were not overwritten (e.g. those after a fence).
pub async fn writes_missing_on(target: &Client, writes: &[&Write]) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for w in writes {
        let row = target
            .query_opt("SELECT content FROM items WHERE id = $1", &[&w.id])
            .await
            .context("reading the target's items")?;
        let there = match (&w.op, row) {
            (WriteOp::Delete, row) => row.is_none(),
            (_, Some(r)) => r.get::<_, Option<String>>(0) == w.content,
            (_, None) => false,
        };
        if !there {
            missing.push(w.id.clone());
        }
    }
    Ok(missing)
}
