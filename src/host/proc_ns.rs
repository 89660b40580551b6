//! A process's namespaces as /proc shows them: `/proc/PID/ns/KIND`.

use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use nix::fcntl::{open as open_path, OFlag};
use nix::sys::stat::Mode;

/// The namespace of `kind` (`net`, `user`...) process `pid` is in, as a
/// descriptor that `setns` takes and that keeps the namespace alive.
pub fn open(pid: i32, kind: &str) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{kind}");
    open_path(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {path}"))
}
