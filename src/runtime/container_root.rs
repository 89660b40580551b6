//! A container's root, seen as it sees it, for a moment, in a child
//! process of this one (for `cp`):
//!
//! - a running container's through `/proc/PID/root`, with the child in the
//!   container's user namespace: a fuse-overlayfs root answers only the
//!   processes of that namespace;
//! - a stopped container's mounted: the child makes a user and mount
//!   namespace of its own and mounts the container's overlay there (its
//!   layers and upper dir, as the container itself does). What it writes
//!   lands in the upper dir through the kernel's own copy-up; the mount
//!   goes with the child.
//!
//! The child's failure comes back as the caller's error.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{getgid, getuid, Pid};

use crate::host::userns::write_id_maps;
use crate::rootfs::mount::mount_overlay;
use crate::runtime::namespaces;
use crate::runtime::start_report::{self, Outcome};
use crate::sys::{self, Forked};

fn open_dir(path: &Path) -> Result<OwnedFd> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", path.display()))
}

/// Runs `child` in a forked process; its error, if any, is this call's.
fn in_child(child: impl FnOnce() -> Result<()>) -> Result<()> {
    let (report, mut reporter) = start_report::pair()?;
    match sys::fork().context("forking to reach the container's root")? {
        Forked::Child => {
            drop(report);
            // Done, or why not, through the report pipe: the caller says it.
            match child() {
                Ok(()) => reporter.started(),
                Err(err) => {
                    reporter.failed(&err);
                }
            }
            sys::exit_now(0)
        }
        Forked::Parent(pid) => {
            drop(reporter);
            let outcome = start_report::wait(report);
            let _ = waitpid(pid, None);
            match outcome? {
                Outcome::Started => Ok(()),
                Outcome::Failed(err) => Err(err),
                Outcome::Silent => {
                    bail!("the process working in the container's root ended without a word")
                }
            }
        }
    }
}

/// Runs `work` with the root of the running container whose PID 1 is
/// `init_pid` (`init` its pidfd), from inside its user namespace.
pub fn with_running_root(
    init: &OwnedFd,
    init_pid: i32,
    work: impl FnOnce(BorrowedFd<'_>) -> Result<()>,
) -> Result<()> {
    in_child(|| {
        // Opened first: the descriptor keeps the container's root whatever
        // the joining changes about how /proc looks.
        let root = open_dir(Path::new(&format!("/proc/{init_pid}/root")))?;
        namespaces::join(init, init_pid, CloneFlags::CLONE_NEWUSER)?;
        work(root.as_fd())
    })
}

/// Runs `work` with the root of a stopped container: the overlay of its
/// dir `dir` (holding `layers` lower links) mounted on `mount_point` (an
/// empty directory the caller made).
pub fn with_mounted_root(
    dir: &Path,
    layers: usize,
    mount_point: &Path,
    work: impl FnOnce(BorrowedFd<'_>) -> Result<()>,
) -> Result<()> {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    in_child(|| {
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
            .context("making a user namespace to mount the container's root in")?;
        write_id_maps(Pid::this(), (0, uid), (0, gid))?;
        // Nothing mounted here reaches the host's mount namespace.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("making the mounts private")?;
        // Not volatile: the container mounts this upper dir again when it starts.
        mount_overlay(dir, layers, mount_point, false)?;
        work(open_dir(mount_point)?.as_fd())
    })
}
