//! When rocker itself runs inside a container (a CI job's, or rocker's
//! own): which kind, and the three things such a container does that stop
//! a rootless one, each with its fix. Read only when something failed, or
//! by `rocker info`: nothing here is on the start-up path.
//!
//! - a seccomp filter refusing user namespaces (`userns::hint`);
//! - a masked /proc: the kernel mounts a new proc (and sysfs) only where
//!   an existing one is fully visible, and a container's has files and
//!   directories hidden under other mounts;
//! - the store on overlayfs (the container's own root), which the kernel's
//!   overlay refuses as an upper dir.

use std::path::Path;

/// What to do about a masked /proc, for each engine.
pub const MASKED_PROC_FIX: &str = "start the outer container with --security-opt \
     systempaths=unconfined (docker), --security-opt unmask=ALL (podman, rocker), \
     procMount: Unmasked (Kubernetes) or --privileged, or run this container with --pid host";

/// Mount points under /proc (from /proc/self/mountinfo) that hide what
/// they cover, as a container engine's masks do. binfmt_misc, which hosts
/// mount on an empty directory, hides nothing and is left out.
pub fn masked_proc_paths() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| masked_in(&text))
        .unwrap_or_default()
}

fn masked_in(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with("/proc/") && *point != "/proc/sys/fs/binfmt_misc")
        .map(str::to_string)
        .collect()
}

/// The kind of container this process runs in, when that can be told.
pub fn container_kind() -> Option<String> {
    // The convention systemd reads: engines set $container for PID 1.
    let pid1_env = std::fs::read("/proc/1/environ").unwrap_or_default();
    let from_env = std::env::var("container").ok().or_else(|| {
        pid1_env
            .split(|b| *b == 0)
            .find_map(|entry| entry.strip_prefix(b"container="))
            .map(|value| String::from_utf8_lossy(value).into_owned())
    });
    if Path::new("/.dockerenv").exists() {
        return Some("docker".into());
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("podman".into());
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || Path::new("/var/run/secrets/kubernetes.io").exists()
    {
        return Some("kubernetes".into());
    }
    if let Some(kind) = from_env.filter(|kind| !kind.is_empty()) {
        return Some(kind);
    }
    // A user namespace that does not map every id: some unprivileged
    // container, of an engine that says nothing of itself.
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let full = map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    (!map.is_empty() && !full).then(|| "an unprivileged container (a user namespace)".into())
}

/// Whether `path` is on overlayfs.
pub fn is_on_overlayfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_mounts_under_proc_binfmt_misc_aside() {
        let host = "22 28 0:20 / /proc rw,nosuid - proc proc rw\n\
                    40 22 0:35 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw\n";
        assert!(masked_in(host).is_empty());
        let container = "501 500 0:60 / /proc rw - proc proc rw\n\
                         502 501 0:5 /null /proc/kcore rw - devtmpfs udev rw\n\
                         503 501 0:61 / /proc/acpi ro - tmpfs tmpfs ro\n";
        assert_eq!(masked_in(container), ["/proc/kcore", "/proc/acpi"]);
    }

    #[test]
    fn the_test_host_is_told_apart() {
        // Whatever this machine is, the answer is one of these or none.
        if let Some(kind) = container_kind() {
            assert!(!kind.is_empty());
        }
        assert!(!is_on_overlayfs(Path::new("/proc")));
    }
}
