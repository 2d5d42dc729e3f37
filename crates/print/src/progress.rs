//! How a run's events reach the operator: progress bars with rate and ETA on a terminal, one log
//! line per bot event otherwise, or one JSON object per line with `--json`; the same for index
//! builds ([`index_observer`]).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ragshift_run::{Event, Observer};
use ragshift_store::index_build::{IndexEvent, IndexObserver};

use crate::out;

/// The observer for the current output mode.
pub fn observer(json: bool, bots: usize) -> Box<dyn Observer> {
    if json {
        Box::new(JsonLines)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new(bots as u64))
    } else {
        Box::new(LogLines::default())
    }
}

/// `--json`: one event object per line on stdout.
struct JsonLines;

impl Observer for JsonLines {
    fn event(&self, event: &Event) {
        out::json_line(event);
    }
}

/// Not a terminal: a log line per bot event.
#[derive(Default)]
struct LogLines {
    done: AtomicU64,
}

impl Observer for LogLines {
    fn event(&self, event: &Event) {
        match event {
            Event::RunStarted { run_id, bots } => {
                tracing::info!("run {run_id}: {bots} bots to process")
            }
            Event::BotStarted { bot_id, user_id } => {
                tracing::info!("bot {user_id}/{bot_id}: started")
            }
            Event::BotFinished(b) => {
                let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
                match &b.error {
                    Some(e) if !b.succeeded() => tracing::warn!(
                        "[{n}] bot {}/{}: FAILED after {:.1}s: {e}",
                        b.user_id,
                        b.bot_id,
                        b.seconds
                    ),
                    _ => tracing::info!(
                        "[{n}] bot {}/{}: {} chunks in {:.1}s",
                        b.user_id,
                        b.bot_id,
                        b.chunks,
                        b.seconds
                    ),
                }
            }
            Event::RunFinished {
                run_id,
                succeeded,
                failed,
                skipped,
            } => tracing::info!(
                "run {run_id} finished: {succeeded} succeeded, {failed} failed, {skipped} skipped"
            ),
        }
    }
}

/// A terminal: a bar for bots and one for chunks, with rates and ETAs.
struct Bars {
    _multi: MultiProgress,
    bots: ProgressBar,
    chunks: ProgressBar,
}

impl Bars {
    fn new(total_bots: u64) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = |t: &str| {
            ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        let bots = multi.add(ProgressBar::new(total_bots));
        bots.set_style(style(
            "bots   [{bar:30}] {pos}/{len} {per_sec:>10} eta {eta:>4} {msg}",
        ));
        let chunks = multi.add(ProgressBar::new(0));
        chunks.set_style(style(
            "chunks [{bar:30}] {pos}/{len} {per_sec:>10} eta {eta:>4}",
        ));
        Self {
            _multi: multi,
            bots,
            chunks,
        }
    }
}

impl Observer for Bars {
    fn event(&self, event: &Event) {
        match event {
            Event::RunStarted { bots, .. } => self.bots.set_length(*bots as u64),
            Event::BotStarted { .. } => {}
            Event::BotFinished(b) => {
                self.bots.inc(1);
                if !b.succeeded() {
                    self.bots.println(format!(
                        "FAILED {}/{}: {}",
                        b.user_id,
                        b.bot_id,
                        b.error.as_deref().unwrap_or("")
                    ));
                }
            }
            Event::RunFinished { .. } => {
                self.bots.finish();
                self.chunks.finish();
            }
        }
    }

    fn chunks_found(&self, n: u64) {
        self.chunks.inc_length(n);
    }

    fn chunks_embedded(&self, n: u64) {
        self.chunks.inc(n);
    }
}

/// How index builds are shown: a bar per index on a terminal (phase, tuples or blocks done of
/// total, ETA), log lines at each phase otherwise, or `index_memory` / `index_progress` JSON
/// objects with `--json`.
pub fn index_observer(json: bool) -> IndexObserver {
    if json {
        Arc::new(|e: &IndexEvent| out::json_line(e))
    } else if std::io::stderr().is_terminal() {
        let bars = IndexBars::default();
        Arc::new(move |e: &IndexEvent| bars.event(e))
    } else {
        let phases = Mutex::new(HashMap::<String, String>::new());
        Arc::new(move |e: &IndexEvent| {
            let IndexEvent::IndexProgress(p) = e else {
                return;
            };
            let Ok(mut seen) = phases.lock() else {
                return;
            };
            if seen.get(&p.index) == Some(&p.phase) {
                return;
            }
            seen.insert(p.index.clone(), p.phase.clone());
            if p.done {
                tracing::info!(
                    "index {}: built in {:.1}s, {} tuples",
                    p.index,
                    p.elapsed_seconds,
                    p.tuples_done
                );
            } else {
                tracing::info!("index {}: {}", p.index, p.phase);
            }
        })
    }
}

/// One bar per index being built.
#[derive(Default)]
struct IndexBars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl IndexBars {
    fn event(&self, e: &IndexEvent) {
        let IndexEvent::IndexProgress(p) = e else {
            return;
        };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(p.index.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(p.index.clone());
            bar
        });
        let (done, total) = p.counter();
        bar.set_length(total);
        bar.set_position(done);
        if p.done {
            bar.finish_with_message(format!("built in {:.1}s", p.elapsed_seconds));
        } else {
            let eta = p
                .eta_seconds
                .map(|s| format!(" (eta {s:.0}s)"))
                .unwrap_or_default();
            bar.set_message(format!("{}{eta}", p.phase));
        }
    }
}
