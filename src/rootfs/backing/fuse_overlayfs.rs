//! fuse-overlayfs for hosts whose kernel will not mount overlay in a user
//! namespace. The monitor starts it (with `std::process`) inside the
//! container's user and mount namespaces, but outside its pid namespace, so
//! the container can neither see nor signal it; it dies with the monitor
//! (parent-death signal) and is stopped when the container ends.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::host::which;
use crate::util::wait;

/// How long the mount may take to appear.
const MOUNT_DEADLINE: Duration = Duration::from_secs(10);
/// How long it may take to unmount and exit when asked.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

pub struct FuseOverlay {
    child: Child,
}

/// How /proc/PID/mountinfo spells a path (octal escapes for white space and
/// the backslash).
fn mountinfo_escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a line of mountinfo is a fuse mount on `mount_point`. The type
/// matters: the child's own bind mount of `merged/` (made to receive ours)
/// sits on the same mount point.
fn is_fuse_mount_on(line: &str, mount_point: &str) -> bool {
    let Some((fields, tail)) = line.split_once(" - ") else {
        return false;
    };
    fields.split(' ').nth(4) == Some(mount_point)
        && tail
            .split(' ')
            .next()
            .is_some_and(|fstype| fstype.starts_with("fuse"))
}

fn is_mounted(container: Pid, mount_point: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{container}/mountinfo"))
        .is_ok_and(|text| text.lines().any(|line| is_fuse_mount_on(line, mount_point)))
}

impl FuseOverlay {
    /// Mounts `lowers` (bottom first) plus `dir`'s upper and work dirs on
    /// `merged`, in the mount namespace of `container`, and returns once
    /// the mount is there.
    pub fn start(
        container: Pid,
        dir: &Path,
        lowers: &[PathBuf],
        merged: &Path,
    ) -> Result<FuseOverlay> {
        let program = which::find_in_path("fuse-overlayfs").context(
            "fuse-overlayfs is not installed: sudo apt-get install fuse-overlayfs \
             (or choose another rootfs mode, see rocker info)",
        )?;
        let paths: Vec<PathBuf> = lowers
            .iter()
            .rev()
            .cloned()
            .chain([dir.join("upper"), dir.join("work")])
            .collect();
        if let Some(bad) = paths
            .iter()
            .find(|p| p.to_string_lossy().contains([',', ':']))
        {
            bail!(
                "fuse-overlayfs cannot take {} (a comma or colon in the path); \
                 move the store (XDG_DATA_HOME)",
                bad.display()
            );
        }
        let lower: Vec<String> = paths[..lowers.len()]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            paths[lowers.len()].display(),
            paths[lowers.len() + 1].display()
        );
        let open_ns = |kind: &str| {
            std::fs::File::open(format!("/proc/{container}/ns/{kind}"))
                .map(std::os::fd::OwnedFd::from)
                .with_context(|| format!("opening the container's {kind} namespace"))
        };
        let log_path = dir.join("fuse-overlayfs.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(&program);
        command
            .args(["-f", "-o", &options])
            .arg(merged)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        crate::sys::join_namespaces_on_spawn(&mut command, open_ns("user")?, open_ns("mnt")?);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut fuse = FuseOverlay { child };

        let mount_point = mountinfo_escape(merged);
        let mounted = await_mount(container, &mount_point, &mut fuse.child)
            .context("waiting for fuse-overlayfs")?;
        if !mounted {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "fuse-overlayfs did not mount {}: {}",
                merged.display(),
                match log.trim() {
                    "" => "no message (is /dev/fuse usable? see rocker info)",
                    text => text,
                }
            );
        }
        Ok(fuse)
    }
}

impl Drop for FuseOverlay {
    /// Asks fuse-overlayfs to unmount and exit, then insists.
    fn drop(&mut self) {
        // Our own unreaped child: the pid cannot have been reused.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        }
        wait_or_kill(&mut self.child, STOP_DEADLINE);
    }
}

/// Waits up to `deadline` for `child`, already asked to exit, then kills
/// it; always reaps, so no zombie stays. Waiting matters here: the upper
/// dir is only consistent once fuse-overlayfs has unmounted.
fn wait_or_kill(child: &mut Child, deadline: Duration) {
    // A pidfd turns readable when the process exits: no polling.
    let exited = match crate::sys::pidfd_open(Pid::from_raw(child.id() as i32)) {
        Ok(pidfd) => wait::readable(pidfd.as_fd(), deadline).unwrap_or(false),
        Err(_) => !matches!(child.try_wait(), Ok(None)),
    };
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Waits, up to MOUNT_DEADLINE, until fuse-overlayfs's mount shows in the
/// container's mount table (true) or fuse-overlayfs has exited (false).
/// The kernel wakes a poll on mountinfo (POLLPRI) when the table changes,
/// and on a pidfd when its process ends: nothing is re-read in a loop.
fn await_mount(container: Pid, mount_point: &str, child: &mut Child) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mountinfo = std::fs::File::open(format!("/proc/{container}/mountinfo"))
        .context("opening the container's mount table")?;
    let pidfd = crate::sys::pidfd_open(Pid::from_raw(child.id() as i32))
        .context("watching fuse-overlayfs")?;
    let start = std::time::Instant::now();
    loop {
        if is_mounted(container, mount_point) {
            return Ok(true);
        }
        if !matches!(child.try_wait(), Ok(None)) {
            return Ok(false);
        }
        let left = MOUNT_DEADLINE.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(false);
        }
        let mut fds = [
            PollFd::new(mountinfo.as_fd(), PollFlags::POLLPRI),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(err).context("waiting on the mount table"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_spelled_as_mountinfo_does() {
        assert_eq!(
            mountinfo_escape(Path::new("/home/a b/x\\y")),
            "/home/a\\040b/x\\134y"
        );
    }

    #[test]
    fn only_a_fuse_mount_on_the_point_counts() {
        let bind = "41 30 0:25 /c/merged /c/merged rw,relatime shared:9 - ext4 /dev/sda1 rw";
        let fuse = "42 41 0:50 / /c/merged rw,nodev,relatime shared:9 - fuse.fuse-overlayfs fuse-overlayfs rw";
        assert!(!is_fuse_mount_on(bind, "/c/merged"));
        assert!(is_fuse_mount_on(fuse, "/c/merged"));
        assert!(!is_fuse_mount_on(fuse, "/c/other"));
    }
}
