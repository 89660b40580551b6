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
pub mod rootfs;
pub mod runtime;
pub mod spec;
pub mod sys;
pub mod util;

use clap::Parser;

/// Parses the command line, runs the command and returns the exit status.
pub fn main() -> i32 {
    let cli = match cli::args::Cli::try_parse() {
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
    let result = cli::dispatch::run(cli.command);
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("rocker: {err:#}");
            error::exit_status_of(&err)
        }
    }
}
