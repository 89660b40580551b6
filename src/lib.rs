//! rocker: rootless OCI containers for ordinary users.
//!
//! The binary is a thin `main` over [`main`]. The modules, top to bottom;
//! each uses only those below it (`tests/layout.rs` checks):
//!
//! - `commands`: one file per verb family, their output (`output`), and
//!   `dispatch` from a parsed command line to them;
//! - `build`: Containerfiles read, and built step by step with the runtime;
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
//!   (delegation and limits), `network` (slirp4netns, ports), `volume`
//!   (named and anonymous volumes, and which containers claim them);
//! - `host`: what the host offers (probes, user namespaces, programs),
//!   rocker's directories and config;
//! - `util` (files, times, xattrs); `error` (exit statuses) and `sys`, which
//!   holds every raw system call that needs `unsafe`.

pub mod build;
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
pub mod volume;

/// Parses the command line, runs the command and returns the exit status.
pub fn main() -> i32 {
    use std::io::Write;
    let cli = match cli::quick::parse_from(std::env::args_os().collect()) {
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
    quiet_on_broken_pipes();
    let outcome = std::panic::catch_unwind(|| commands::dispatch::execute(cli.command));
    match outcome {
        Ok(Ok(status)) => status,
        // Output written with `?` to a reader that left.
        Ok(Err(err)) if stdout_is_gone() && is_broken_pipe_error(&err) => EXIT_BROKEN_PIPE,
        Ok(Err(err)) => {
            // stderr may be the closed pipe; then there is no one to tell.
            let _ = writeln!(std::io::stderr(), "rocker: {err:#}");
            error::exit_status_of(&err)
        }
        // `rocker ps | head -1`: the reader left. The destructors ran while
        // unwinding; end as a writer to a closed pipe does, quietly.
        Err(payload) if is_broken_pipe(payload.as_ref()) => EXIT_BROKEN_PIPE,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// What a process killed by SIGPIPE reports to its shell.
const EXIT_BROKEN_PIPE: i32 = 128 + libc::SIGPIPE;

/// Whether a panic is std's "failed printing to stdout/stderr: Broken pipe".
fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

/// An error that a write to a closed pipe caused.
fn is_broken_pipe_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether our stdout is a pipe whose reader has gone (poll says POLLERR):
/// a broken pipe elsewhere (a registry's socket) is an error to report.
fn stdout_is_gone() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|events| events.contains(PollFlags::POLLERR))
}

/// A print to a reader that has gone is no bug to report: the panic it
/// raises (std's println! cannot return the error) ends rocker quietly.
fn quiet_on_broken_pipes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            default(info);
        }
    }));
}
