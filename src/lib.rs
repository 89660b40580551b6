//! rocker: rootless OCI containers for ordinary users.
//!
//! The binary is a thin `main` over [`main`]. The modules, top to bottom;
//! each uses only those below it (`tests/layout.rs` checks):
//!
//! - `commands`: one file per verb family, their output (`output`), and
//!   `dispatch` from a parsed command line to them;
//! - `runtime`: running a container: `launch` (record, then monitor),
//!   `monitor` (the parent side: clone, id maps, helpers, signals),
//!   `init` (the container side: rootfs, then exec), `join` (`exec` into a
//!   running one), and what they share (`process`, `channel`, ...);
//! - `container`: containers that last: records, names, identities, live
//!   dirs, logs;
//! - `rootfs` (the container's root: its backing, the mount plan, carrying
//!   it out) and `cli` (clap's structs and value parsers);
//! - `spec`: what a container is, once parsed; every layer above may use it;
//! - `image` (references, registries, pulls, the store), `cgroups`
//!   (delegation and limits), `network` (slirp4netns, ports);
//! - `host`: what the host offers (probes, user namespaces, programs),
//!   rocker's directories and config;
//! - `util` (files, times, xattrs); `error` (exit statuses) and `sys`, which
//!   holds every raw system call that needs `unsafe`.

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
    let result = commands::dispatch::execute(cli.command);
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("rocker: {err:#}");
            error::exit_status_of(&err)
        }
    }
}
