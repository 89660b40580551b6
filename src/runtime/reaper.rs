//! `--init`: a small PID 1 that forwards signals to the command and reaps
//! every orphan, then exits with the command's status (128+N for signal N).
//!
//! The kernel only delivers a signal to a namespace's PID 1 if that process
//! handles it; a command that installs no handlers therefore ignores
//! SIGTERM as PID 1. With this reaper as PID 1 the command runs as PID 2 and
//! gets signals like any process.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::wait_status_to_exit_code;
use crate::sys;

/// Runs as PID 1 until `command` ends. `signals` are already blocked (the
/// mask is inherited from the monitor), so none is lost between fork and
/// here; sigwait takes them one at a time.
pub fn supervise(command: Pid, signals: &SigSet) -> ! {
    loop {
        let Ok(signal) = signals.wait() else {
            continue;
        };
        if signal != Signal::SIGCHLD {
            let _ = kill(command, signal);
            continue;
        }
        // One SIGCHLD may stand for many exits: reap until none is left.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) if status.pid() == Some(command) => {
                    sys::exit_now(wait_status_to_exit_code(status).unwrap_or(1))
                }
                Ok(_) => {}
            }
        }
    }
}
