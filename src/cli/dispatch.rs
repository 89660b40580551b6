//! From a parsed command line to the command that does the work: one arm
//! per verb, aliases (`image ls`, `container rm`...) beside their verb.

use anyhow::Result;

use super::args::{Command, ContainerCommand, ImageCommand};
use crate::commands;

/// Runs `command`; its exit status, or the error rocker reports.
pub fn run(command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => commands::run::run(*args),
        Command::Info(args) => commands::info::run(args),
        Command::Pull(args) | Command::Image(ImageCommand::Pull(args)) => {
            commands::image::pull_command(args)
        }
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            commands::image::images_command(args)
        }
        Command::Rmi(args) | Command::Image(ImageCommand::Rm(args)) => {
            commands::image::rmi_command(args)
        }
        Command::Image(ImageCommand::Prune(_)) => commands::image::prune_command(),
        Command::Image(ImageCommand::Inspect(args)) => commands::image::inspect_command(args),
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => {
            commands::container::ps_command(args)
        }
        Command::Logs(args) | Command::Container(ContainerCommand::Logs(args)) => {
            commands::container::logs_command(args)
        }
        Command::Exec(args) | Command::Container(ContainerCommand::Exec(args)) => {
            commands::exec::exec_command(args)
        }
        Command::Stats(args) => commands::stats::stats_command(args),
        Command::Stop(args) | Command::Container(ContainerCommand::Stop(args)) => {
            commands::container::stop_command(args)
        }
        Command::Kill(args) | Command::Container(ContainerCommand::Kill(args)) => {
            commands::container::kill_command(args)
        }
        Command::Rm(args) | Command::Container(ContainerCommand::Rm(args)) => {
            commands::container::rm_command(args)
        }
        Command::Inspect(args) | Command::Container(ContainerCommand::Inspect(args)) => {
            commands::container::inspect_command(args)
        }
        Command::Container(ContainerCommand::Prune(_)) => commands::container::prune_command(),
        Command::Login(args) => commands::login::login_command(args),
        Command::Logout(args) => commands::login::logout_command(args),
    }
}
