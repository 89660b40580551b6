//! rocker: rootless OCI containers for ordinary users.
//!
//! The binary is a thin `main` over [`main`]. The modules, in the order a
//! `rocker run` touches them: `cli` (flags) -> `commands::run` (a
//! `spec::ContainerSpec`) -> `monitor` (the parent: clone, id maps, signals,
//! terminal) and `child` (the container side: `rootfs` carries out the
//! `mountplan`, then capabilities and exec), talking over `channel`;
//! `supervise` relays signals and the terminal, `cgroups` sets limits, and
//! `container` keeps the records `ps`, `stop` and the rest read. `exec` is
//! the side of `rocker exec` that joins a running container.
//! `sys` holds every raw system call that needs `unsafe`.

pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod container;
pub mod error;
pub mod host;
pub mod image;
pub mod network;
pub mod options;
pub mod rootfs;
pub mod runtime;
pub mod spec;
pub mod sys;
pub mod util;

use clap::Parser;

/// Parses the command line, runs the command and returns the exit status.
pub fn main() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // docker exits 125 on bad flags; help and version are no error.
            return if err.use_stderr() {
                error::EXIT_ROCKER_FAILED
            } else {
                0
            };
        }
    };
    let result = match cli.command {
        cli::Command::Run(args) => commands::run::run(*args),
        cli::Command::Info(args) => commands::info::run(args),
        cli::Command::Pull(args) | cli::Command::Image(cli::ImageCommand::Pull(args)) => {
            commands::image::pull_command(args)
        }
        cli::Command::Images(args) | cli::Command::Image(cli::ImageCommand::Ls(args)) => {
            commands::image::images_command(args)
        }
        cli::Command::Rmi(args) | cli::Command::Image(cli::ImageCommand::Rm(args)) => {
            commands::image::rmi_command(args)
        }
        cli::Command::Image(cli::ImageCommand::Prune(_)) => commands::image::prune_command(),
        cli::Command::Image(cli::ImageCommand::Inspect(args)) => {
            commands::image::inspect_command(args)
        }
        cli::Command::Ps(args) | cli::Command::Container(cli::ContainerCommand::Ls(args)) => {
            commands::container::ps_command(args)
        }
        cli::Command::Logs(args) | cli::Command::Container(cli::ContainerCommand::Logs(args)) => {
            commands::container::logs_command(args)
        }
        cli::Command::Exec(args) | cli::Command::Container(cli::ContainerCommand::Exec(args)) => {
            commands::exec::exec_command(args)
        }
        cli::Command::Stats(args) => commands::stats::stats_command(args),
        cli::Command::Stop(args) | cli::Command::Container(cli::ContainerCommand::Stop(args)) => {
            commands::container::stop_command(args)
        }
        cli::Command::Kill(args) | cli::Command::Container(cli::ContainerCommand::Kill(args)) => {
            commands::container::kill_command(args)
        }
        cli::Command::Rm(args) | cli::Command::Container(cli::ContainerCommand::Rm(args)) => {
            commands::container::rm_command(args)
        }
        cli::Command::Inspect(args)
        | cli::Command::Container(cli::ContainerCommand::Inspect(args)) => {
            commands::container::inspect_command(args)
        }
        cli::Command::Container(cli::ContainerCommand::Prune(_)) => {
            commands::container::prune_command()
        }
        cli::Command::Login(args) => commands::login::login_command(args),
        cli::Command::Logout(args) => commands::login::logout_command(args),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("rocker: {err:#}");
            error::exit_status_of(&err)
        }
    }
}
