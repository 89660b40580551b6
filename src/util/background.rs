//! Work that outlives the command: a forked child in a session of its own,
//! its stdio on /dev/null and every other descriptor closed, so the caller
//! (a shell, `$(...)`, a CI step reading the output) has its answer and
//! its end of file without waiting for it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use crate::sys::{self, Forked};

/// Runs `work` in a detached child and returns at once. False when no
/// child could be made (the process has another thread, such as one
/// blocked on the caller's stdin under `-i`, or fork failed): then the
/// caller does the work itself.
pub fn run_detached(work: impl FnOnce()) -> bool {
    match sys::fork_if_single_threaded() {
        Ok(Some(Forked::Parent(_))) => true,
        Ok(Some(Forked::Child)) => {
            if detach(&[]) {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            }
            sys::exit_now(0)
        }
        Ok(None) | Err(_) => false,
    }
}

/// As `run_detached`, with `held` (a namespace, say) open in the child
/// until this process has exited, and closed before `work` runs: the last
/// close, and whatever the kernel does at it, falls to the child once the
/// caller has its exit status, not to this process's exit. When no child
/// can be made, `held` is closed before this returns false.
pub fn run_detached_after_exit(held: OwnedFd, work: impl FnOnce()) -> bool {
    // Taken before the fork: once this process is gone, the child's
    // getppid() names whoever reaps orphans.
    let this_process = sys::pidfd_open(nix::unistd::getpid()).ok();
    match sys::fork_if_single_threaded() {
        Ok(Some(Forked::Parent(_))) => true,
        Ok(Some(Forked::Child)) => {
            let mut keep = vec![held.as_raw_fd()];
            keep.extend(this_process.as_ref().map(AsRawFd::as_raw_fd));
            if detach(&keep) {
                // Without a pidfd (Linux < 5.3) the close may come first;
                // the work is the same, only who pays for it differs.
                if let Some(parent) = &this_process {
                    let _ = crate::util::wait::readable(parent.as_fd(), PARENTS_EXIT);
                }
                drop(held);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            }
            sys::exit_now(0)
        }
        Ok(None) | Err(_) => false,
    }
}

/// How long a detached child waits for its parent's exit: the parent is on
/// its way out when it forks, so this bounds only a stuck exit.
const PARENTS_EXIT: Duration = Duration::from_secs(60);

/// Cuts a forked child off the caller: a session of its own, stdio on
/// /dev/null, and every descriptor closed but those in `keep`. Nothing the
/// parent owned is dropped in the child: it ends in exit_now, never
/// returning (nor unwinding) into the parent's frames.
fn detach(keep: &[std::os::fd::RawFd]) -> bool {
    sys::close_from_but(3, keep).is_ok() && nix::unistd::setsid().is_ok() && stdio_to_null().is_ok()
}

fn stdio_to_null() -> nix::Result<()> {
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )?;
    let null = null.as_fd();
    nix::unistd::dup2_stdin(null)?;
    nix::unistd::dup2_stdout(null)?;
    nix::unistd::dup2_stderr(null)?;
    Ok(())
}
