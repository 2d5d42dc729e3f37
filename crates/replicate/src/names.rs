//! Names of what a replication creates: all start with `ragshift_`, so an operator can tell them
//! apart from the application's own publications, subscriptions and slots at a glance, and all
//! carry the run's suffix, so two runs never collide.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Prefix of every object ragshift creates for replication.
pub const PREFIX: &str = "ragshift_";

/// The objects of one replication run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    /// Journal run id (`replicate-<suffix>`).
    pub run_id: String,
    /// Publication on the source.
    pub publication: String,
    /// Subscription on the target.
    pub subscription: String,
    /// Replication slot on the source (named like the subscription).
    pub slot: String,
}

impl Names {
    /// Names for a new run, from the current time.
    pub fn new() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Self::with_suffix(&base36(secs))
    }

    /// Names for a given suffix (lowercase letters and digits).
    pub fn with_suffix(suffix: &str) -> Self {
        let sub = format!("{PREFIX}sub_{suffix}");
        Self {
            run_id: format!("replicate-{suffix}"),
            publication: format!("{PREFIX}pub_{suffix}"),
            slot: sub.clone(),
            subscription: sub,
        }
    }
}

impl Default for Names {
    fn default() -> Self {
        Self::new()
    }
}

fn base36(mut v: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_prefix_and_the_suffix() {
        let n = Names::with_suffix("abc123");
        assert_eq!(n.publication, "ragshift_pub_abc123");
        assert_eq!(n.subscription, "ragshift_sub_abc123");
        assert_eq!(n.slot, n.subscription);
        assert_eq!(n.run_id, "replicate-abc123");
        assert_eq!(base36(36), "10");
        let fresh = Names::new();
        assert!(fresh.publication.len() < 63 && fresh.publication.starts_with(PREFIX));
    }
}
