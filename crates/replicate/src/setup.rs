//! Setting up a replication from what the user wrote: the two sides (one table name on both),
//! the source's address as the target sees it, durations, whether cutover fences the source,
//! and whether an error stopped the command before its work started (which decides the exit
//! code).

use std::time::Duration;

use ragshift_store::{Layout, StoreErrorKind};

use crate::{CutoverOptions, ReplicateError, ReplicateErrorKind, Sides};

impl Sides {
    /// The one table both sides name. Logical replication writes into the table of the same
    /// name, so a target table named otherwise than the source's is refused (with what to set),
    /// before anything connects.
    pub fn table(source_layout: Layout, target_layout: &Layout) -> Result<Layout, String> {
        if (&source_layout.schema, &source_layout.table)
            != (&target_layout.schema, &target_layout.table)
        {
            return Err(format!(
                "logical replication writes into the table of the same name, but the source table is {} and the target table {}: set [target] schema/table like [source]'s",
                source_layout.display_name(),
                target_layout.display_name()
            ));
        }
        Ok(source_layout)
    }

    /// Routes the subscription through `address` (`--source-from-target`: the source as the
    /// target server reaches it), with the source's credentials, database and TLS settings.
    pub fn reach_source_at(&mut self, address: &str) -> Result<(), String> {
        let (host, port) = parse_address(address)?;
        self.source_from_target = Some(self.source.with_address(&host, port));
        Ok(())
    }
}

impl CutoverOptions {
    /// Whether cutover fences the source's writes: always, unless `--no-fence`, which is refused
    /// (before anything is done) without `--accept-losing-writes`, since the writes after the
    /// last catch-up would be lost.
    pub fn fence_choice(no_fence: bool, accept_losing_writes: bool) -> Result<bool, String> {
        if no_fence && !accept_losing_writes {
            return Err("--no-fence lets writes that reach the source after the last catch-up go uncopied (they are lost): add --accept-losing-writes to accept that, or leave out --no-fence so the source is fenced (nothing was done)".to_owned());
        }
        Ok(!no_fence)
    }
}

impl ReplicateError {
    /// Whether the error stopped the command before it changed anything: prerequisites,
    /// configuration, state and connection problems, unless work had started. Anything else
    /// (whatever the kind, once the command had changed something) is the work's.
    pub fn before_work(&self) -> bool {
        !self.work_started()
            && match self.kind() {
                ReplicateErrorKind::Prerequisites
                | ReplicateErrorKind::Config
                | ReplicateErrorKind::NotStarted
                | ReplicateErrorKind::AlreadyStarted => true,
                ReplicateErrorKind::Timeout => false,
                ReplicateErrorKind::Store => matches!(
                    self.store_error().map(|s| s.kind()),
                    Some(
                        StoreErrorKind::Connect
                            | StoreErrorKind::Auth
                            | StoreErrorKind::Config
                            | StoreErrorKind::Locked
                    )
                ),
            }
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port` (the source as the target server reaches
/// it, `--source-from-target`).
pub fn parse_address(s: &str) -> Result<(String, Option<u16>), String> {
    let bad = || {
        format!("--source-from-target {s:?}: expected HOST or HOST:PORT (e.g. 10.0.3.4:5432 or [fd00::4]:5432)")
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(bad());
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| bad()))
        .transpose()?;
    Ok((host.to_owned(), port))
}

/// Parses `90`, `90s`, `30m`, `2h` (cutover's time-outs).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 90s, 30m or 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration: use e.g. 90s, 30m or 2h")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::{parse_address, parse_duration};
    use std::time::Duration;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("10.0.3.4").unwrap(),
            ("10.0.3.4".into(), None)
        );
        assert_eq!(
            parse_address("db.internal:6432").unwrap(),
            ("db.internal".into(), Some(6432))
        );
        assert_eq!(
            parse_address("[fd00::4]:5432").unwrap(),
            ("fd00::4".into(), Some(5432))
        );
        assert_eq!(
            parse_address("[fd00::4]").unwrap(),
            ("fd00::4".into(), None)
        );
        for bad in [
            "",
            "host:port",
            "host:99999",
            "[fd00::4",
            "postgres://u@h/db",
            "[::1]x",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
