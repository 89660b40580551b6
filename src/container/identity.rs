//! A process as rocker records it: its pid plus its start time, so that a
//! recorded pid that the kernel has since given to a stranger is never
//! mistaken for the container's (or signalled).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::sys;
use crate::util::wait;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    /// Clock ticks after boot (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

/// The fields of /proc/PID/stat from field 3 (state) on; None when there
/// is no such process.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split(' ').map(str::to_string).collect())
}

/// Whether `pid` is a zombie (it has exited; only its exit status is
/// left), and its start time; None when there is no such process.
fn stat(pid: i32) -> Option<(bool, u64)> {
    let fields = stat_fields(pid)?;
    // The start time is field 22.
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some((fields[0] == "Z", start_time))
}

/// The state letter (field 3: `R`, `S`, `Z`...) and parent (field 4) of
/// `pid`; None when there is no such process.
pub fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let fields = stat_fields(pid)?;
    let state = fields.first()?.chars().next()?;
    Some((state, fields.get(4 - 3)?.parse().ok()?))
}

/// A pidfd of the first child of `pid`, checked to be its child (field 4,
/// ppid) once the pidfd pins it, so a reused pid is never taken.
pub fn first_child(pid: i32) -> Option<OwnedFd> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    let child: i32 = children.split_whitespace().next()?.parse().ok()?;
    let pidfd = sys::pidfd_open(Pid::from_raw(child)).ok()?;
    let (_, ppid) = state_and_parent(child)?;
    (ppid == pid).then_some(pidfd)
}

/// The start time of `pid` while it lives (a zombie does not).
fn start_time(pid: i32) -> Option<u64> {
    stat(pid)
        .filter(|(zombie, _)| !zombie)
        .map(|(_, start)| start)
}

impl ProcessId {
    /// The identity of `pid`, which may have exited already: a quick
    /// command is a zombie by the time its monitor records it.
    pub fn of(pid: Pid) -> Result<ProcessId> {
        let (_, start_time) = stat(pid.as_raw())
            .with_context(|| format!("reading the start time of process {pid}"))?;
        Ok(ProcessId {
            pid: pid.as_raw(),
            start_time,
        })
    }

    pub fn current() -> Result<ProcessId> {
        ProcessId::of(nix::unistd::getpid())
    }

    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }

    /// A pidfd for this very process, or None once it has gone. The start
    /// time is checked after the pidfd is open: from then on the pidfd
    /// cannot come to mean another process.
    pub fn open(&self) -> Option<OwnedFd> {
        let pidfd = sys::pidfd_open(Pid::from_raw(self.pid)).ok()?;
        self.is_alive().then_some(pidfd)
    }

    /// Sends `signal`; false when the process has already gone.
    pub fn signal(&self, signal: Signal) -> Result<bool> {
        let Some(pidfd) = self.open() else {
            return Ok(false);
        };
        match sys::pidfd_send_signal(pidfd.as_fd(), signal) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(err) => {
                Err(err).with_context(|| format!("sending {signal} to process {}", self.pid))
            }
        }
    }

    /// Waits up to `limit` for the process to exit; true when it has.
    pub fn wait_exit(&self, limit: Duration) -> bool {
        let Some(pidfd) = self.open() else {
            return true;
        };
        // A pidfd reads as ready once its process has exited.
        wait::readable(pidfd.as_fd(), limit).unwrap_or_else(|_| !self.is_alive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessId::current().unwrap();
        assert!(me.is_alive());
        let stranger = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!stranger.is_alive());
        assert!(stranger.open().is_none());
        assert!(!stranger.signal(Signal::SIGKILL).unwrap());
    }

    #[test]
    fn state_and_parent_of_this_process() {
        let (state, parent) = state_and_parent(std::process::id() as i32).unwrap();
        assert_eq!(parent, nix::unistd::getppid().as_raw());
        assert!(matches!(state, 'R' | 'S'), "{state}");
        assert_eq!(state_and_parent(i32::MAX), None);
    }

    #[test]
    fn a_child_is_found_and_a_childless_process_has_none() {
        let spawn = |script: &str| {
            std::process::Command::new("sh")
                .args(["-c", script])
                .spawn()
                .unwrap()
        };
        let mut parent = spawn("sleep 30 & wait");
        let mut lone = spawn("exec sleep 30");
        let found = (0..200).find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            first_child(parent.id() as i32)
        });
        let sleep = found.expect("the shell's sleep was not found");
        sys::pidfd_send_signal(sleep.as_fd(), Signal::SIGKILL).unwrap();
        assert!(first_child(lone.id() as i32).is_none());
        for child in [&mut parent, &mut lone] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}
