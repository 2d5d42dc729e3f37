//! A server process that cannot outlive the test process that started it.
//!
//! Rust never drops statics, and a test process may be killed at any moment, so `Drop` alone
//! cannot promise that a server goes away. Each server therefore gets a *reaper*: a tiny `sh`
//! that blocks reading a pipe whose write end only this process holds. When the pipe closes —
//! on an orderly stop or because the process died, however — the reaper signals the server,
//! waits for it to go, and removes its scratch directory.
//!
//! Both the server and its reaper run in their own process groups, so a Ctrl-C or a test
//! runner killing the test's process group does not take them down before the cleanup.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

use anyhow::Context as _;

/// Waits for EOF on stdin, then sends signal `$2` to pid `$1`, waits up to ~10 s for it to
/// exit (then SIGKILL), and removes directory `$3` when it is not empty.
const REAPER: &str = r#"cat >/dev/null 2>&1
kill -s "$2" "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then kill -s KILL "$1" 2>/dev/null; break; fi
  sleep 0.05
done
if [ -n "$3" ]; then rm -rf "$3"; fi
"#;

/// A running child process with its reaper; stopping or dropping it stops the child.
#[derive(Debug)]
pub(crate) struct Supervised {
    child: Child,
    reaper: Child,
    reaper_stdin: Option<ChildStdin>,
}

impl Supervised {
    /// Spawns `command` in a new process group, and a reaper that sends it `signal` (a name
    /// such as `QUIT` or `TERM`) and then removes `cleanup_dir` once this process lets go.
    pub(crate) fn spawn(
        mut command: Command,
        signal: &str,
        cleanup_dir: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        command.process_group(0);
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start {program}"))?;
        let dir_arg = cleanup_dir.map(|d| d.into_os_string()).unwrap_or_default();
        let reaper = Command::new("sh")
            .arg("-c")
            .arg(REAPER)
            .arg("ragshift-reaper")
            .arg(child.id().to_string())
            .arg(signal)
            .arg(dir_arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let mut reaper = match reaper {
            Ok(reaper) => reaper,
            Err(err) => {
                // Best effort: without a reaper the child must not be left behind.
                let _ = child.kill();
                let _ = child.wait();
                return Err(err).context("could not start the reaper shell (sh)");
            }
        };
        let reaper_stdin = reaper.stdin.take();
        Ok(Self {
            child,
            reaper,
            reaper_stdin,
        })
    }

    /// The child's exit status when it has already exited.
    pub(crate) fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Forgets a child that has already exited, without the reaper's cleanup (its directory
    /// stays, for another attempt).
    pub(crate) fn discard_exited(mut self) {
        let _ = self.reaper.kill();
        let _ = self.reaper.wait();
        self.reaper_stdin = None;
        let _ = self.child.wait();
    }

    /// Stops the child and waits until it is gone and its directory removed. Idempotent.
    pub(crate) fn stop(&mut self) {
        if self.reaper_stdin.take().is_none() {
            return;
        }
        // The reaper now signals the child; reaping it here keeps it from lingering as a
        // zombie that the reaper would wait for.
        let _ = self.child.wait();
        let _ = self.reaper.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
