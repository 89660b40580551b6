//! What unprivileged user namespaces need from the host: the settings known
//! to block them (each with the command that lifts it, as rootlesskit's
//! warn.go names them), and the id maps, written with plain writes.
//!
//! An unprivileged process may map exactly one id: its own. So the map is one
//! line putting the container's user (root by default) on the caller's uid,
//! with no /etc/subuid and no setuid `newuidmap`. Before an unprivileged
//! process may write `gid_map` it must give up `setgroups(2)` in the
//! namespace: otherwise it could drop a group that a file's permissions deny
//! it through (CVE-2014-8989).

use std::io::Write;

use anyhow::{Context, Result};
use nix::unistd::Pid;

pub(crate) fn read_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Host settings known to block unprivileged user namespaces, each with
/// the command that lifts it.
pub fn blockers() -> Vec<String> {
    blockers_given(read_sysctl)
}

/// `blockers`, with the sysctls as `read` gives them.
fn blockers_given(read_sysctl: impl Fn(&str) -> Option<i64>) -> Vec<String> {
    let mut found = vec![];
    if read_sysctl("/proc/sys/user/max_user_namespaces") == Some(0) {
        found.push(
            "user.max_user_namespaces is 0; enable with: sudo sysctl -w user.max_user_namespaces=15000"
                .to_string(),
        );
    }
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        found.push(
            "kernel.unprivileged_userns_clone is 0; enable with: sudo sysctl -w kernel.unprivileged_userns_clone=1"
                .to_string(),
        );
    }
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        found.push(
            "AppArmor restricts unprivileged user namespaces; install the profile rocker ships \
             (sudo install -m 0644 contrib/apparmor/rocker /etc/apparmor.d/rocker && sudo \
             apparmor_parser -r /etc/apparmor.d/rocker), or lift the restriction for everyone: \
             sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
                .to_string(),
        );
    }
    found
}

/// A suffix for error messages: the blockers found, if any; with none, and
/// a seccomp filter on this process, the filter (docker's, podman's and
/// rocker's default profiles refuse user namespaces to a container).
pub fn hint() -> String {
    match blockers().as_slice() {
        [] if under_seccomp_filter() => format!(" (hint: {SECCOMP_FIX})"),
        [] => String::new(),
        blockers => format!(" (hint: {})", blockers.join("; ")),
    }
}

/// What to do when a seccomp filter refuses user namespaces.
pub const SECCOMP_FIX: &str = "a seccomp filter refuses user namespaces to this process, as the \
     default profiles of docker, podman and rocker do inside a container: start the outer \
     container with --security-opt seccomp=unconfined (docker, podman, rocker) or with a \
     profile that allows clone and unshare with CLONE_NEWUSER";

/// Whether this process runs under a seccomp filter (mode 2 in
/// /proc/self/status); cheap, read only when something failed.
pub fn under_seccomp_filter() -> bool {
    own_seccomp_mode() == Some(2)
}

/// This process's seccomp mode (0 none, 1 strict, 2 filter); None on a
/// kernel without seccomp, whose status has no such line.
pub fn own_seccomp_mode() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| seccomp_mode(&status))
}

fn seccomp_mode(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Seccomp:"))
        .and_then(|mode| mode.trim().parse().ok())
}

/// One `uid_map`/`gid_map` line: `inside` in the namespace is `outside` on
/// the host, for one id.
pub fn map_line(inside: u32, outside: u32) -> String {
    format!("{inside} {outside} 1\n")
}

/// Writes setgroups, uid_map and gid_map of `pid`, in the order the kernel
/// requires.
pub fn write_id_maps(pid: Pid, uid: (u32, u32), gid: (u32, u32)) -> Result<()> {
    let proc_dir = format!("/proc/{pid}");
    write_proc_file(&format!("{proc_dir}/setgroups"), "deny")?;
    write_proc_file(&format!("{proc_dir}/uid_map"), &map_line(uid.0, uid.1))?;
    write_proc_file(&format!("{proc_dir}/gid_map"), &map_line(gid.0, gid.1))?;
    Ok(())
}

/// These files take their whole content in a single write(2).
fn write_proc_file(path: &str, content: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("writing {content:?} to {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_blocker_names_its_fix() {
        assert!(blockers_given(|_| None).is_empty());
        let apparmor = blockers_given(|path| {
            (path == "/proc/sys/kernel/apparmor_restrict_unprivileged_userns").then_some(1)
        });
        assert_eq!(apparmor.len(), 1);
        assert!(
            apparmor[0].contains("contrib/apparmor/rocker"),
            "{apparmor:?}"
        );
        assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib/apparmor/rocker")
            .is_file());
        let all = blockers_given(|_| Some(0));
        assert_eq!(
            all.len(),
            2,
            "max_user_namespaces and unprivileged_userns_clone: {all:?}"
        );
    }

    #[test]
    fn the_seccomp_mode_is_read_from_status() {
        assert_eq!(
            seccomp_mode("Name:\tsh\nSeccomp:\t2\nSeccomp_filters:\t1\n"),
            Some(2)
        );
        assert_eq!(seccomp_mode("Seccomp:\t0\n"), Some(0));
        assert_eq!(seccomp_mode("Name:\tsh\n"), None);
    }

    #[test]
    fn lines_map_one_id() {
        assert_eq!(map_line(0, 1000), "0 1000 1\n");
        assert_eq!(map_line(1000, 1000), "1000 1000 1\n");
        assert_eq!(map_line(33, 4242), "33 4242 1\n");
    }
}
