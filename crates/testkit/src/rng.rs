//! Seeded randomness for fault injection: the same seed gives the same faults, so a failing
//! chaos trial can be replayed from the seed it printed. splitmix64: small and good enough
//! for choosing bytes and moments (not for anything secret).

/// A seeded pseudo-random sequence.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A sequence determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The seed of a test's fault trials: `RAGSHIFT_TEST_SEED` to replay a failing run, else a
    /// fresh one; printed with `what` either way, so any failure can be replayed.
    pub fn trial_seed(what: &str) -> u64 {
        let seed = std::env::var("RAGSHIFT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(Self::fresh_seed);
        eprintln!("{what}: seed {seed} (replay with RAGSHIFT_TEST_SEED={seed})");
        seed
    }

    /// A seed from the clock and the process id, for a trial that prints it.
    pub fn fresh_seed() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let mut r = Self::new(nanos ^ (u64::from(std::process::id()) << 32));
        r.next_u64()
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A duration in `lo..hi` (`lo` when the range is empty).
    pub fn duration_in(
        &mut self,
        lo: std::time::Duration,
        hi: std::time::Duration,
    ) -> std::time::Duration {
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + std::time::Duration::from_micros(self.below(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let a: Vec<u64> = (0..5)
            .scan(SeededRng::new(7), |r, _| Some(r.below(100)))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(SeededRng::new(7), |r, _| Some(r.below(100)))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x < 100));
        assert_ne!(SeededRng::new(1).next_u64(), SeededRng::new(2).next_u64());
    }
}
