//! The `ragshift` binary: parses flags, sets up logging, runs one command and maps its outcome
//! to the exit code (0 success, 1 the work ran and some of it failed, 2 nothing ran because of a
//! usage, configuration or connection error).

mod args;
mod commands;
mod failure;
mod output;
mod settings;
mod signals;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the local model frees and re-requests ~100 MB attention buffers every step, which
/// the system allocator returns to the kernel and gets back zeroed (a quarter of the time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    output::init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    failure::exit_code(result)
}
