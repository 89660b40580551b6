//! `--pid host`: without a pid namespace of its own, the end of the
//! container's command does not end the rest of it (in a pid namespace,
//! the kernel kills everything when PID 1 exits). The monitor does it:
//! every process in the container's user namespace (its command's
//! children, `exec`s) is killed when the container ends, pass after pass
//! until a pass finds none. The monitor's own helpers (slirp4netns,
//! fuse-overlayfs) are its children and are left to their own guards.

use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::container::identity::state_and_parent;

/// The container's user namespace, as the kernel names it (device and
/// inode of its nsfs file).
pub struct ContainerProcesses {
    userns: (u64, u64),
    monitor: i32,
}

fn userns_of(pid: i32) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/user")).ok()?;
    Some((meta.dev(), meta.ino()))
}

impl ContainerProcesses {
    /// Those of the container whose first process is `init` (just cloned,
    /// so already in its user namespace).
    pub fn of(init: Pid) -> Result<ContainerProcesses> {
        let userns = userns_of(init.as_raw())
            .with_context(|| format!("reading the user namespace of process {init}"))?;
        Ok(ContainerProcesses {
            userns,
            monitor: std::process::id() as i32,
        })
    }

    /// Kills every process left in the container; true if it found none
    /// within the passes it makes.
    pub fn kill_all(&self) -> bool {
        for _ in 0..100 {
            let found = self.find();
            if found.is_empty() {
                return true;
            }
            for pid in found {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    fn find(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != self.monitor)
            .filter(|&pid| userns_of(pid) == Some(self.userns))
            .filter(|&pid| match state_and_parent(pid) {
                // Dead already (a zombie waits for its parent's wait, which
                // a killed parent's adopter does), or a helper of ours.
                Some((state, parent)) => !matches!(state, 'Z' | 'X') && parent != self.monitor,
                None => false,
            })
            .collect()
    }
}
