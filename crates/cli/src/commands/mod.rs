//! One module per subcommand; [`run`] dispatches.

pub mod build_index;
pub mod chunk;
pub mod config_show;
pub mod copy;
pub mod embed;
pub mod embed_bot;
pub mod export;
pub mod import;
pub mod init_target;
pub mod plan;
pub mod rebuild;
pub mod replicate;
pub mod search;
pub mod status;
pub mod verify;

use crate::args::{Cli, Command, ConfigCommand};
use crate::failure::{Failure, Outcome};

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<Outcome, Failure> {
    let global = &cli.global;
    match &cli.command {
        Command::Config(ConfigCommand::Show(args)) => config_show::run(global, args),
        Command::InitTarget(args) => init_target::run(global, args).await,
        Command::BuildIndex(args) => build_index::run(global, args).await,
        Command::Search(args) => search::run(global, args).await,
        Command::Chunk(args) => chunk::run(global, args).await,
        Command::Embed(args) => embed::run(global, args).await,
        Command::Rebuild(args) => rebuild::run(global, args).await,
        Command::EmbedBot(args) => embed_bot::run(global, args).await,
        Command::Status(args) => status::run(global, args).await,
        Command::Plan(args) => plan::run(global, args).await,
        Command::Copy(args) => copy::run(global, args).await,
        Command::Export(args) => export::run(global, args).await,
        Command::Import(args) => import::run(global, args).await,
        Command::Replicate(cmd) => replicate::run(global, cmd).await,
        Command::Verify(args) => verify::run(global, args).await,
    }
}
