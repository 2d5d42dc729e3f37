//! What a running copy tells its caller: events (for `--json` and logs) and the counters the
//! progress line is computed from (rows, MB, MB/s, partitions done, ETA).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Something that happened during a copy.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The plan is made (or read back from the journal for `--resume`).
    Planned {
        /// Journal run id.
        run_id: String,
        /// A resumed run.
        resumed: bool,
        /// Partitions in the plan.
        partitions: usize,
        /// Partitions already done by an earlier attempt.
        already_done: usize,
        /// Rows in the plan.
        rows: i64,
        /// The exported source snapshot.
        snapshot: String,
    },
    /// A partition ended.
    Partition {
        /// Partition id.
        partition: String,
        /// What it holds.
        what: String,
        /// `succeeded` or `failed`.
        status: &'static str,
        /// Rows copied.
        rows: u64,
        /// Bytes streamed.
        bytes: u64,
        /// Seconds it took.
        seconds: f64,
        /// Why it failed.
        error: Option<String>,
    },
    /// Periodic progress of the data phase.
    Progress {
        /// Rows in committed partitions.
        rows: u64,
        /// MB streamed (including partitions in flight).
        mb: f64,
        /// MB per second since the data phase started.
        mb_per_s: f64,
        /// Partitions done (this run and earlier ones).
        partitions_done: usize,
        /// Partitions in the plan.
        partitions_total: usize,
        /// Estimated seconds left, once there is a rate.
        eta_seconds: Option<f64>,
    },
    /// The memory and workers an index build gets, before it starts.
    IndexMemory(ragshift_store::index_build::MemoryPlan),
    /// An index build's progress (`pg_stat_progress_create_index`), and its end.
    IndexProgress(ragshift_store::index_build::BuildProgress),
    /// An index or constraint was built (or failed).
    Index {
        /// Its name.
        name: String,
        /// Seconds it took.
        seconds: f64,
        /// Why it failed.
        error: Option<String>,
    },
    /// Verification ended.
    Verified {
        /// Whether every bot matched.
        passed: bool,
        /// Bots compared.
        bots: usize,
        /// Bots that differ.
        mismatches: usize,
        /// Seconds it took.
        seconds: f64,
    },
}

/// Where events go.
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// Counters shared by the workers and the progress ticker.
#[derive(Debug)]
pub struct Counters {
    /// Rows in committed partitions.
    pub rows: AtomicU64,
    /// Bytes streamed.
    pub bytes: AtomicU64,
    /// Partitions done, including those done by an earlier attempt.
    pub partitions_done: AtomicUsize,
    /// Partitions in the plan.
    pub partitions_total: usize,
    /// Rows the remaining partitions held when planned.
    pub rows_todo: u64,
    /// Estimated bytes per row, until partitions done give a measured one.
    pub bytes_per_row_estimate: f64,
    started: Instant,
}

impl Counters {
    /// Counters for a data phase that starts now.
    pub fn new(
        partitions_total: usize,
        already_done: usize,
        rows_todo: u64,
        bytes_per_row: f64,
    ) -> Self {
        Self {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            partitions_done: AtomicUsize::new(already_done),
            partitions_total,
            rows_todo,
            bytes_per_row_estimate: bytes_per_row,
            started: Instant::now(),
        }
    }

    /// Seconds since the data phase started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The current progress as an event.
    pub fn snapshot(&self) -> Event {
        let rows = self.rows.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed) as f64;
        let secs = self.elapsed().as_secs_f64().max(1e-3);
        let per_row = if rows > 0 {
            bytes / rows as f64
        } else {
            self.bytes_per_row_estimate
        };
        let total = (self.rows_todo as f64 * per_row).max(1.0);
        let fraction = (bytes / total).min(1.0);
        let eta = (fraction > 0.0).then(|| secs * (1.0 - fraction) / fraction);
        Event::Progress {
            rows,
            mb: bytes / 1e6,
            mb_per_s: bytes / 1e6 / secs,
            partitions_done: self.partitions_done.load(Ordering::Relaxed),
            partitions_total: self.partitions_total,
            eta_seconds: eta,
        }
    }
}
