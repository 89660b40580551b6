//! Work that outlives the command: a forked child in a session of its own,
//! its stdio on /dev/null and every other descriptor closed, so the caller
//! (a shell, `$(...)`, a CI step reading the output) has its answer and
//! its end of file without waiting for it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

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

/// Forks a detached child that waits until this process has exited, then
/// closes `held` (a namespace, say) and does `work`; returns at once. So
/// the child can be forked early (while a container runs, when the caller
/// is idle) and still find what this process leaves behind; and `held`'s
/// last close, with whatever the kernel does at it, falls to the child
/// after the caller has its exit status. False when no such child can be
/// made (no pidfd to wait on, before Linux 5.3; another thread; fork
/// failed): then `held` is closed before this returns.
pub fn run_detached_after_exit(held: Option<OwnedFd>, work: impl FnOnce()) -> bool {
    // Taken before the fork: once this process is gone, the child's
    // getppid() names whoever reaps orphans.
    let Ok(this_process) = sys::pidfd_open(nix::unistd::getpid()) else {
        return false;
    };
    match sys::fork_if_single_threaded() {
        Ok(Some(Forked::Parent(_))) => true,
        Ok(Some(Forked::Child)) => {
            let mut keep = vec![this_process.as_raw_fd()];
            keep.extend(held.as_ref().map(AsRawFd::as_raw_fd));
            if detach(&keep) {
                // The caller may have had signals blocked for its own
                // handling; this one is an ordinary process, killable.
                let _ = nix::sys::signal::SigSet::all().thread_unblock();
                let _ = nix::sys::prctl::set_name(c"rocker-sweep");
                wait_for_exit(&this_process);
                drop(held);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            }
            sys::exit_now(0)
        }
        Ok(None) | Err(_) => false,
    }
}

/// Blocks until the process `pidfd` refers to has exited (its pidfd turns
/// readable): as long as a container may run, so in one poll, not in
/// slices that would wake the machine ten times a second.
fn wait_for_exit(pidfd: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

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
