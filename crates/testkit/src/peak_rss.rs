//! The peak memory of a command, for tests that bound it: the child is reaped with `wait4`,
//! whose `ru_maxrss` is the kernel's high-water mark of the child's resident set (what
//! `/proc/<pid>/status` shows as `VmHWM` while it runs), so no peak can be missed between two
//! looks, however short.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Output, Stdio};

/// What a command printed, how it ended, and its peak resident set.
#[derive(Debug)]
pub struct Measured {
    /// Exit status, stdout and stderr.
    pub output: Output,
    /// Peak resident set size of the process (not of its own children), in bytes.
    pub peak_rss: u64,
}

/// Runs `cmd` to its end (stdout and stderr captured) and measures its peak resident set.
pub fn run_measured(cmd: &mut Command) -> std::io::Result<Measured> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let pid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
    let (status, peak_rss) = wait4(pid)?;
    // The child is reaped: `Child` must not wait for it again (dropping it doesn't).
    drop(child);
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    Ok(Measured { output, peak_rss })
}

/// Waits for `pid` and returns its exit status and `ru_maxrss` (KiB on Linux) in bytes.
#[allow(unsafe_code)]
fn wait4(pid: libc::pid_t) -> std::io::Result<(ExitStatus, u64)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, exclusively borrowed locals for the call;
        // `pid` is our own child, not yet reaped.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    Ok((ExitStatus::from_raw(status), kib * 1024))
}
