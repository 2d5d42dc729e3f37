//! SIGKILL of a child process (a running `ragshift`) at a seeded random moment: the crash a
//! resume must survive, injected for real.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::rng::SeededRng;

/// Waits a time drawn from `seed` in `window`, then SIGKILLs `child` unless it has exited by
/// then. Prints the seed and the moment. Returns how long after the call it was killed, or
/// `None` when it had exited first (its status is then left for `wait`).
pub fn sigkill_at_random(
    child: &mut Child,
    seed: u64,
    window: std::ops::Range<Duration>,
) -> std::io::Result<Option<Duration>> {
    let delay = SeededRng::new(seed).duration_in(window.start, window.end);
    eprintln!(
        "sigkill: seed {seed}: killing pid {} after {delay:?} unless it exits first",
        child.id()
    );
    let started = Instant::now();
    // Polls the child so that one that exits early is not waited for: the wait is the fault's
    // moment, not a synchronisation.
    while started.elapsed() < delay {
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5).min(delay - started.elapsed().min(delay)));
    }
    if child.try_wait()?.is_some() {
        return Ok(None);
    }
    child.kill()?; // SIGKILL on Unix
    Ok(Some(started.elapsed()))
}
