//! A running container's processes, found by their pid namespace, and
//! stopped: for a while (commit reads a container's writes while nothing in
//! it runs) or until `unpause`. Through the cgroup freezer where the
//! container has a cgroup of its own; elsewhere, on any host, by SIGSTOP
//! and SIGCONT through pidfds.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::container::record::PausedBy;
use crate::sys;

fn namespace_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The processes of the container whose PID 1 is `init` (host pids, with
/// them): those whose /proc/PID/ns/pid names the same namespace.
pub fn container_pids(init: i32) -> Result<std::collections::BTreeSet<i32>> {
    let namespace = namespace_of(init)
        .with_context(|| format!("reading the pid namespace of process {init}"))?;
    let mut pids = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir("/proc")
        .context("reading /proc")?
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if namespace_of(pid).is_some_and(|ns| ns == namespace) {
            pids.insert(pid);
        }
    }
    Ok(pids)
}

/// Whether /proc says `pid` is stopped (state T) or gone.
fn is_stopped(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The state follows the command name, which ends at the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_none_or(|state| matches!(state, 'T' | 't' | 'Z' | 'X'))
}

/// A container's processes, stopped until this is dropped.
pub struct Frozen {
    stopped: BTreeMap<i32, OwnedFd>,
}

/// Stops every process of the container whose PID 1 is `init`, again and
/// again until no new one appears (one may fork meanwhile), then waits
/// until they all are stopped.
pub fn freeze(init: i32) -> Result<Frozen> {
    let namespace = namespace_of(init)
        .with_context(|| format!("reading the pid namespace of process {init}"))?;
    let mut frozen = Frozen {
        stopped: BTreeMap::new(),
    };
    for _ in 0..100 {
        let new: Vec<i32> = container_pids(init)?
            .into_iter()
            .filter(|pid| !frozen.stopped.contains_key(pid))
            .collect();
        if new.is_empty() {
            break;
        }
        for pid in new {
            let Ok(pidfd) = sys::pidfd_open(Pid::from_raw(pid)) else {
                continue; // gone meanwhile
            };
            // The pidfd holds the process: if the pid was reused between
            // the listing and the open, it is another namespace's now.
            if namespace_of(pid).as_ref() != Some(&namespace) {
                continue;
            }
            if sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGSTOP).is_ok() {
                frozen.stopped.insert(pid, pidfd);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !frozen.stopped.keys().all(|pid| is_stopped(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(frozen)
}

impl Frozen {
    /// Leaves the processes stopped (`pause`): `thaw` continues them.
    pub fn keep(mut self) {
        self.stopped.clear();
    }
}

/// Continues every process of the container whose PID 1 is `init`.
fn continue_all(init: i32) -> Result<()> {
    for pid in container_pids(init)? {
        if let Ok(pidfd) = sys::pidfd_open(Pid::from_raw(pid)) {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGCONT);
        }
    }
    Ok(())
}

/// Sets the freezer of `cgroup` and waits until the kernel says it holds
/// (`frozen 1` in `cgroup.events`), or not.
fn set_freezer(cgroup: &std::path::Path, frozen: bool) -> Result<()> {
    let control = cgroup.join("cgroup.freeze");
    std::fs::write(&control, if frozen { "1" } else { "0" })
        .with_context(|| format!("writing {}", control.display()))?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = std::fs::read_to_string(cgroup.join("cgroup.events")).unwrap_or_default();
        if events.lines().any(|line| line == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{} did not become {want}", cgroup.display());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How `pause` holds a container, given its cgroup if it has one.
pub fn pause(init: i32, cgroup: Option<&std::path::Path>) -> Result<PausedBy> {
    if let Some(cgroup) = cgroup.filter(|c| c.join("cgroup.freeze").exists()) {
        set_freezer(cgroup, true)?;
        return Ok(PausedBy::Freezer);
    }
    freeze(init)?.keep();
    Ok(PausedBy::Signals)
}

/// Undoes `pause`.
pub fn unpause(init: i32, cgroup: Option<&std::path::Path>, by: PausedBy) -> Result<()> {
    match (by, cgroup) {
        (PausedBy::Freezer, Some(cgroup)) => set_freezer(cgroup, false),
        _ => continue_all(init),
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pidfd in self.stopped.values() {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGCONT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_child_reads_as_stopped_and_runs_again_after() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let pidfd = sys::pidfd_open(Pid::from_raw(pid)).unwrap();
        assert!(!is_stopped(pid));
        {
            let mut frozen = Frozen {
                stopped: BTreeMap::new(),
            };
            sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGSTOP).unwrap();
            frozen.stopped.insert(pid, pidfd);
            let deadline = Instant::now() + Duration::from_secs(2);
            while !is_stopped(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            assert!(is_stopped(pid));
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while is_stopped(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(!is_stopped(pid), "continued when the freeze ended");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
