//! Exit statuses and the one error type callers must tell apart.
//!
//! rocker follows docker's convention: a container's own exit status is
//! passed through, 125 means rocker itself failed, 126 that the command could
//! not be executed and 127 that it was not found.

/// rocker itself failed (bad input, host problem, setup error).
pub const EXIT_ROCKER_FAILED: i32 = 125;
/// The command exists but cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The command does not exist.
pub const EXIT_NOT_FOUND: i32 = 127;

/// A failure that carries the exit status rocker must end with. Any other
/// error reaching `main` ends with [`EXIT_ROCKER_FAILED`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StatusError {
    pub status: i32,
    pub message: String,
}

impl StatusError {
    pub fn new(status: i32, message: impl Into<String>) -> Self {
        StatusError {
            status,
            message: message.into(),
        }
    }
}

/// The exit status for an error that reached the top level.
pub fn exit_status_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<StatusError>())
        .map_or(EXIT_ROCKER_FAILED, |e| e.status)
}

/// The shell convention for a process that ended: its own status, or 128+N
/// when signal N killed it.
pub fn wait_status_to_exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    use nix::unistd::Pid;

    #[test]
    fn status_error_is_found_anywhere_in_the_chain() {
        let err = anyhow::Error::new(StatusError::new(127, "not found")).context("running");
        assert_eq!(exit_status_of(&err), 127);
        assert_eq!(exit_status_of(&anyhow::anyhow!("plain")), 125);
    }

    #[test]
    fn signals_become_128_plus_n() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            wait_status_to_exit_code(WaitStatus::Exited(pid, 42)),
            Some(42)
        );
        assert_eq!(
            wait_status_to_exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(wait_status_to_exit_code(WaitStatus::StillAlive), None);
    }
}
