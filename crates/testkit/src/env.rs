//! Every environment variable the testkit reads, in one place, and where its state lives.

use std::path::PathBuf;

/// Root of all local test state (venv, model, build caches); default `$HOME/.cache/ragshift`.
pub const HOME: &str = "RAGSHIFT_HOME";
/// The PostgreSQL `bin` directory to use instead of the newest `/usr/lib/postgresql/<v>/bin`.
pub const PG_BINDIR: &str = "RAGSHIFT_PG_BINDIR";
/// Path of the `moto_server` executable; default `$RAGSHIFT_HOME/venv/bin/moto_server`.
pub const MOTO_SERVER: &str = "RAGSHIFT_MOTO_SERVER";
/// Directory of the local embedding model; default `$RAGSHIFT_HOME/models/all-MiniLM-L6-v2`.
pub const MODEL_DIR: &str = "RAGSHIFT_MODEL_DIR";
/// Base URL of a running PostgreSQL + pgvector server to share, with the superuser and its
/// password, e.g. `postgres://postgres:secret@127.0.0.1:5432/`. Set by `scripts/test`.
pub const TEST_PG_URL: &str = "RAGSHIFT_TEST_PG_URL";
/// Endpoint URL of a running moto server to share, e.g. `http://127.0.0.1:5000`. Set by
/// `scripts/test`.
pub const TEST_MOTO_URL: &str = "RAGSHIFT_TEST_MOTO_URL";

/// The value of an environment variable, treating an empty value as unset.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `$RAGSHIFT_HOME`, or `$HOME/.cache/ragshift` when it is not set.
pub fn ragshift_home() -> PathBuf {
    if let Some(home) = var(HOME) {
        return PathBuf::from(home);
    }
    let user_home = var("HOME").unwrap_or_else(|| "/tmp".to_owned());
    PathBuf::from(user_home).join(".cache").join("ragshift")
}

/// A command for `program` (the ragshift binary under test) in `dir`, with no `RAGSHIFT_*` or
/// `AWS_*` variable, nor the worker's `EVENT`, inherited from the environment the tests run in,
/// so a test's result never depends on the shell that started it.
pub fn isolated_command(
    program: impl AsRef<std::ffi::OsStr>,
    dir: &std::path::Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("RAGSHIFT_") || k.starts_with("AWS_") || k == "EVENT" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// [`isolated_command`] with `args` and then exactly the variables `env` set: a test states
/// every setting the run sees.
pub fn isolated_with<K, V>(
    program: impl AsRef<std::ffi::OsStr>,
    dir: &std::path::Path,
    args: &[impl AsRef<std::ffi::OsStr>],
    env: &[(K, V)],
) -> std::process::Command
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut cmd = isolated_command(program, dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs [`isolated_with`] to the end: the run with its own variables most CLI tests need.
pub fn run_isolated_with<K, V>(
    program: impl AsRef<std::ffi::OsStr>,
    dir: &std::path::Path,
    args: &[impl AsRef<std::ffi::OsStr>],
    env: &[(K, V)],
) -> std::process::Output
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    match isolated_with(program, dir, args, env).output() {
        Ok(out) => out,
        Err(e) => panic!("could not run ragshift: {e}"),
    }
}

/// Runs the ragshift binary `program` in `dir` with `args`, isolated as
/// [`isolated_command`]: the plain run most CLI tests need.
pub fn run_isolated(
    program: impl AsRef<std::ffi::OsStr>,
    dir: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    match isolated_command(program, dir).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("could not run ragshift: {e}"),
    }
}

/// Both streams of a finished command, labelled: what a failing assertion prints.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A command's stdout as one JSON document; a failure names both streams.
pub fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A command's stderr as text.
pub fn stderr_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Both streams of a finished command run together, unlabelled: what a search for a leaked
/// secret or an expected message reads.
pub fn all_output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON lines a `--json` run printed (blank lines skipped); a line that is not JSON fails.
pub fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `--json` summary: the last line of the event stream, which must be the `summary` event.
pub fn json_summary(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {}", output_text(out)));
    assert_eq!(v["event"], "summary", "{}", output_text(out));
    v
}

/// Fails, showing both streams, unless the command exited with `code`.
#[track_caller]
pub fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", output_text(out));
}
