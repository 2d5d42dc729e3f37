//! Turning the configuration into a copy's endpoints and the options it decides (and refusing
//! sizes nothing could be copied with), so that the binary and any library user set up a copy
//! the same way.

use ragshift_config::{Config, Loaded, Origin};
use ragshift_store::index::VectorIndex;
use ragshift_store::journal::Journal;
use ragshift_store::{ConnectSpec, Layout};

use crate::{CopyOptions, Endpoints};

impl Endpoints {
    /// The `[source]` and `[target]` tables on the given servers. The target table takes the
    /// source's columns; only its schema and name are the target's.
    pub fn from_config(config: &Config, source: ConnectSpec, target: ConnectSpec) -> Self {
        let source_layout = Layout::from_config(&config.source);
        let mut target_layout = source_layout.clone();
        target_layout.schema = config.target.schema.clone();
        target_layout.table = Layout::from_config(&config.target).table;
        Self {
            source,
            source_layout,
            target,
            target_layout,
        }
    }
}

impl CopyOptions {
    /// Refuses 0 workers or partitions of 0 rows or bytes before anything is read, naming the
    /// flag: nothing could be copied with them.
    pub fn check_sizes(
        jobs: usize,
        partition_rows: Option<u64>,
        partition_bytes: Option<u64>,
    ) -> Result<(), String> {
        for (flag, v) in [
            ("--jobs", Some(jobs as u64)),
            ("--partition-rows", partition_rows),
            ("--partition-bytes", partition_bytes),
        ] {
            if v == Some(0) {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        Ok(())
    }

    /// The defaults, with what the configuration decides: the journal (`[run]`) and the vector
    /// index. The source's own vector index is kept unless the user chose one (flag, env or
    /// file).
    pub fn configured(loaded: &Loaded) -> Self {
        let config = &loaded.config;
        Self {
            vector_index: match loaded.origin("target.index") {
                Origin::Default => None,
                Origin::Layer(_) => Some(VectorIndex::from_config(&config.target)),
            },
            journal: Journal::from_config(&config.run),
            ..Self::default()
        }
    }
}
