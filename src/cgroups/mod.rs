//! Resource limits through cgroup v2, without privilege: `delegation` finds
//! (or asks systemd for) a delegated subtree, `limits` turns the flags into
//! cgroup files, `report` is the cgroup part of `rocker info`, and this
//! module lays out one container's cgroups in the delegated cgroup D:
//!
//! ```text
//! D/                       controllers enabled for the children
//! D/init/                  processes that were in D (cgroup v2 lets a cgroup
//!                          with enabled controllers hold no process)
//! D/rocker-ID/monitor/     the container's monitor: outside the limits
//! D/rocker-ID/container/   the container (cloned straight into it), its
//!                          limits, and every `exec` into it
//! ```

pub mod delegation;
pub mod limits;
pub mod report;

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use delegation::Delegation;
use limits::Limits;

use crate::util::wait;

/// Set in a rocker that re-executed itself in a systemd scope, so that it
/// does not ask again.
const IN_SCOPE: &str = "ROCKER_IN_SCOPE";
const CONTAINER_LEAF: &str = "container";
const MONITOR_LEAF: &str = "monitor";
pub(crate) const INIT_LEAF: &str = "init";
/// The controllers a container's cgroup gets when the host offers them.
const STATS_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// A container's limits, and the delegated cgroup its cgroups go in.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub limits: Limits,
    pub delegated: PathBuf,
}

/// Limits this host cannot enforce, and why: a run warns and goes on
/// without them, or fails, as config.toml says.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unenforceable(pub String);

/// For a run with limits, before anything else: makes sure rocker stands in
/// a cgroup delegated to it that offers the controllers the limits need,
/// and returns its directory. Where systemd can make one, this re-executes
/// rocker (same pid, arguments and terminal) in a new delegated scope and
/// does not return. Where nothing can, it fails saying what is missing.
pub fn ensure_delegated(limits: &Limits) -> Result<PathBuf> {
    let dir = match delegation::delegation() {
        Delegation::Delegated(dir) => dir,
        Delegation::SystemdScope if std::env::var_os(IN_SCOPE).is_none() => {
            return Err(reexec_in_scope());
        }
        Delegation::SystemdScope => {
            return Err(Unenforceable(
                "resource limits are unavailable: systemd made rocker a scope, but it is not \
                 delegated (not writable, or systemd does not report Delegate=yes for it)"
                    .to_string(),
            )
            .into())
        }
        Delegation::Unavailable(why) => {
            return Err(Unenforceable(format!(
                "resource limits (--memory, --cpus, --pids-limit...) are unavailable here: \
                 {why}. Run without them, or see rocker info"
            ))
            .into())
        }
    };
    let offered = delegation::controllers(&dir);
    let missing: Vec<&str> = limits
        .controllers()
        .into_iter()
        .filter(|needed| !offered.iter().any(|c| c == needed))
        .collect();
    if !missing.is_empty() {
        return Err(Unenforceable(format!(
            "the {} controller{} not delegated to {} (it offers: {}): with systemd older than \
             252, add a drop-in for user@.service with Delegate=cpu cpuset io memory pids, \
             then log in again",
            missing.join(" and "),
            if missing.len() == 1 { " is" } else { "s are" },
            dir.display(),
            if offered.is_empty() {
                "none".to_string()
            } else {
                offered.join(" ")
            }
        ))
        .into());
    }
    Ok(dir)
}

/// Replaces this process with itself inside a transient scope of the user
/// manager with Delegate=yes; returns only the error if that fails.
fn reexec_in_scope() -> anyhow::Error {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return anyhow::Error::new(err).context("finding rocker's own binary"),
    };
    let err = std::process::Command::new("systemd-run")
        .args([
            "--user",
            "--scope",
            "--quiet",
            "--collect",
            "-p",
            "Delegate=yes",
        ])
        .args(["--description", "rocker container"])
        .arg("--")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(IN_SCOPE, "1")
        .exec();
    anyhow::Error::new(err).context("running systemd-run to get a delegated scope")
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

fn make_dir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("creating cgroup {}", path.display())),
    }
}

/// Moves this process into the cgroup `dir`.
pub fn enter(dir: &Path) -> Result<()> {
    write(&dir.join("cgroup.procs"), "0")
}

fn pids_in(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// One container's cgroups (see the module's picture).
pub struct ContainerCgroup {
    delegated: PathBuf,
    group: PathBuf,
}

impl ContainerCgroup {
    /// Lays out container `id`'s cgroups in the delegated `dir`, moves this
    /// process (its monitor) into its leaf, and sets the limits on the
    /// container's leaf, which is still empty.
    pub fn create(dir: &Path, id: &str, limits: &Limits) -> Result<ContainerCgroup> {
        let cgroup = ContainerCgroup {
            delegated: dir.to_path_buf(),
            group: dir.join(format!("rocker-{id}")),
        };
        make_dir(&cgroup.group)?;
        let monitor = cgroup.group.join(MONITOR_LEAF);
        make_dir(&monitor)?;
        enter(&monitor).context("moving rocker's monitor out of the container's cgroup")?;
        cgroup.empty_delegated_cgroup()?;
        // Every controller of these offered, not only those the limits
        // need: `stats` reads memory and pids whatever the limits.
        let offered = delegation::controllers(dir);
        let controllers: String = STATS_CONTROLLERS
            .iter()
            .filter(|c| offered.iter().any(|o| o == *c) || limits.controllers().contains(c))
            .map(|c| format!("+{c} "))
            .collect();
        for dir in [&cgroup.delegated, &cgroup.group] {
            write(&dir.join("cgroup.subtree_control"), controllers.trim_end())?;
        }
        let leaf = cgroup.leaf();
        make_dir(&leaf)?;
        for (file, value) in limits.files() {
            let path = leaf.join(file);
            // Without swap accounting the file is missing; docker then
            // ignores the swap limit too.
            if file == "memory.swap.max" && !path.exists() {
                continue;
            }
            write(&path, &value)?;
        }
        Ok(cgroup)
    }

    /// The no-internal-process rule: a cgroup whose children get
    /// controllers holds no process itself. Whatever else runs in D (the
    /// shell that ran rocker in a delegated scope) moves to D/init.
    fn empty_delegated_cgroup(&self) -> Result<()> {
        let procs = self.delegated.join("cgroup.procs");
        let init = self.delegated.join(INIT_LEAF);
        for round in 0..100u32 {
            let pids = pids_in(&self.delegated);
            if pids.is_empty() {
                return Ok(());
            }
            if round > 0 {
                // Processes still arriving (a fork meanwhile): let them.
                std::thread::sleep(std::time::Duration::from_millis(u64::from(round.min(20))));
            }
            make_dir(&init)?;
            for pid in pids {
                // A process that has exited meanwhile is fine.
                let _ = std::fs::write(init.join("cgroup.procs"), &pid);
            }
        }
        bail!(
            "{} keeps gaining processes; rocker cannot enable controllers below it",
            procs.display()
        )
    }

    /// The container's own cgroup.
    pub fn leaf(&self) -> PathBuf {
        self.group.join(CONTAINER_LEAF)
    }

    /// The leaf, open for clone3's CLONE_INTO_CGROUP.
    pub fn open_leaf(&self) -> Result<OwnedFd> {
        let leaf = self.leaf();
        open(
            &leaf,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening cgroup {}", leaf.display()))
    }

    /// Whether the kernel's OOM killer killed a process of the container.
    pub fn oom_killed(&self) -> bool {
        keyed_value(&self.leaf(), "memory.events", "oom_kill").unwrap_or(0) > 0
    }
}

impl Drop for ContainerCgroup {
    /// After the container's PID 1 has exited (or on a failed start): ends
    /// what is left in the container's cgroup, moves the monitor out, and
    /// removes them all.
    fn drop(&mut self) {
        let leaf = self.leaf();
        kill_all(&leaf);
        let init = self.delegated.join(INIT_LEAF);
        let moved = make_dir(&init).and_then(|()| enter(&init));
        if let Err(err) = moved {
            eprintln!("rocker: warning: {err:#}");
        }
        remove(&leaf);
    }
}

/// A counter from one of a cgroup's `KEY VALUE` files (cpu.stat,
/// memory.events).
pub fn keyed_value(cgroup: &Path, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(cgroup.join(file)).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Kills every process in the container's cgroup `leaf` at once
/// (`cgroup.kill`, Linux 5.14), so none survives a `stop` or `rm -f`. A
/// cgroup already gone (or an older kernel) leaves the rest to the
/// container's PID 1, whose end takes its pid namespace with it.
pub fn kill_all(leaf: &Path) {
    let _ = std::fs::write(leaf.join("cgroup.kill"), "1");
}

/// Removes a container's cgroups (given its leaf), waiting briefly for the
/// last processes to be gone. Missing directories are fine.
pub fn remove(leaf: &Path) {
    let Some(group) = leaf.parent() else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in [
        leaf.to_path_buf(),
        group.join(MONITOR_LEAF),
        group.to_path_buf(),
    ] {
        // Busy while its last processes are being torn down.
        let left = deadline.saturating_duration_since(Instant::now());
        wait::until(
            left,
            Duration::from_millis(10),
            || match std::fs::remove_dir(&dir) {
                Err(err) if err.raw_os_error() == Some(libc::EBUSY) => None,
                _ => Some(()),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn keyed_values_match_whole_keys() {
        let dir = ScratchDir::new("keyed");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("memory.events"),
            "low 0\noom 3\noom_kill 2\noom_group_kill 7\n",
        )
        .unwrap();
        assert_eq!(keyed_value(&dir, "memory.events", "oom_kill"), Some(2));
        assert_eq!(keyed_value(&dir, "memory.events", "oom"), Some(3));
        assert_eq!(keyed_value(&dir, "memory.events", "max"), None);
        assert_eq!(keyed_value(&dir, "cpu.stat", "usage_usec"), None);
    }
}
