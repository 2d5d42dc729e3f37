//! Running PostgreSQL's programs as the `postgres` user when the tests run as root (`initdb`
//! and `postgres` refuse to run as root).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _};

/// The uid and gid that PostgreSQL's programs must run as, or `None` to run them as we are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `None` when this process is not root; else the `postgres` user from `/etc/passwd`.
    pub(crate) fn for_postgres() -> anyhow::Result<Option<Self>> {
        if effective_uid()? != 0 {
            return Ok(None);
        }
        let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4 && fields[0] == "postgres" {
                let uid = fields[2]
                    .parse()
                    .context("uid of postgres in /etc/passwd")?;
                let gid = fields[3]
                    .parse()
                    .context("gid of postgres in /etc/passwd")?;
                return Ok(Some(Self { uid, gid }));
            }
        }
        bail!(
            "running as root, and PostgreSQL refuses to: there is no `postgres` user to run it as \
             (run scripts/setup-postgres.sh, which installs PostgreSQL and that user)"
        )
    }

    /// Makes `command` run as this user.
    pub(crate) fn apply(self, command: &mut Command) {
        command.uid(self.uid).gid(self.gid);
    }

    /// Gives `path` and everything below it to this user.
    pub(crate) fn chown_tree(self, path: &Path) -> anyhow::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .with_context(|| format!("chown {}", path.display()))?;
        if path.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.chown_tree(&entry?.path())?;
            }
        }
        Ok(())
    }
}

/// This process's effective user id, from `/proc/self/status`.
fn effective_uid() -> anyhow::Result<u32> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .context("no effective uid in /proc/self/status")
}
