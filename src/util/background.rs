//! Work that outlives the command: a forked child in a session of its own,
//! its stdio on /dev/null and every other descriptor closed, so the caller
//! (a shell, `$(...)`, a CI step reading the output) has its answer and
//! its end of file without waiting for it.

use std::os::fd::AsFd;

use crate::sys::{self, Forked};

/// Runs `work` in a detached child and returns at once. False when no
/// child could be made (the process has another thread, such as one
/// blocked on the caller's stdin under `-i`, or fork failed): then the
/// caller does the work itself.
pub fn run_detached(work: impl FnOnce()) -> bool {
    match sys::fork_if_single_threaded() {
        Ok(Some(Forked::Parent(_))) => true,
        Ok(Some(Forked::Child)) => {
            // Nothing the parent owned is dropped here: the child ends in
            // exit_now, never returning (nor unwinding) into the parent's
            // frames.
            let detached = sys::close_from(3).is_ok()
                && nix::unistd::setsid().is_ok()
                && stdio_to_null().is_ok();
            if detached {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            }
            sys::exit_now(0)
        }
        Ok(None) | Err(_) => false,
    }
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
