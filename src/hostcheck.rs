//! What this host offers a rootless user, checked live, and the settings to
//! change when something is missing. `rocker info` prints it all; errors
//! reuse the hints (rootlesskit's warn.go does the same).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use serde::Serialize;

use crate::cgroups::host::{self, Delegation};
use crate::sys::{self, Forked};

/// One line of the report: whether it works, and what we found or what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub(crate) fn yes(detail: impl Into<String>) -> Check {
        Check {
            ok: true,
            detail: detail.into(),
        }
    }
    pub(crate) fn no(detail: impl Into<String>) -> Check {
        Check {
            ok: false,
            detail: detail.into(),
        }
    }
}

fn read_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Host settings known to block unprivileged user namespaces, each with
/// the command that lifts it.
pub fn userns_blockers() -> Vec<String> {
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
            "AppArmor restricts unprivileged user namespaces; give rocker a profile that allows \
             `userns,` or run: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
                .to_string(),
        );
    }
    found
}

/// A suffix for error messages: the blockers found, if any.
pub fn userns_hint() -> String {
    match userns_blockers().as_slice() {
        [] => String::new(),
        blockers => format!(" (hint: {})", blockers.join("; ")),
    }
}

/// Runs `check` in a forked child (it may enter namespaces) and returns its
/// outcome; the error text travels back through a pipe.
fn in_child(check: impl FnOnce() -> Result<()>) -> Result<(), String> {
    let (mut reader, writer) = match nix::unistd::pipe() {
        Ok((r, w)) => (std::fs::File::from(r), std::fs::File::from(w)),
        Err(err) => return Err(format!("pipe: {err}")),
    };
    match sys::fork() {
        Ok(Forked::Child) => {
            drop(reader);
            let status = match check() {
                Ok(()) => 0,
                Err(err) => {
                    let _ = std::io::Write::write_all(&mut &writer, format!("{err:#}").as_bytes());
                    1
                }
            };
            sys::exit_now(status)
        }
        Ok(Forked::Parent(pid)) => {
            drop(writer);
            let mut message = String::new();
            let _ = reader.read_to_string(&mut message);
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                _ if !message.is_empty() => Err(message),
                other => Err(format!("probe ended with {other:?}")),
            }
        }
        Err(err) => Err(format!("fork: {err}")),
    }
}

fn enter_user_namespace(extra: CloneFlags) -> Result<()> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER | extra).context("unshare")?;
    std::fs::write("/proc/self/setgroups", "deny").context("writing setgroups")?;
    std::fs::write(
        "/proc/self/uid_map",
        crate::idmap::map_line(0, uid.as_raw()),
    )
    .context("writing uid_map")?;
    std::fs::write(
        "/proc/self/gid_map",
        crate::idmap::map_line(0, gid.as_raw()),
    )
    .context("writing gid_map")?;
    Ok(())
}

pub fn user_namespaces() -> Check {
    let max = read_sysctl("/proc/sys/user/max_user_namespaces");
    match in_child(|| enter_user_namespace(CloneFlags::empty())) {
        Ok(()) => Check::yes(match max {
            Some(max) => format!("unprivileged user namespaces work (max {max})"),
            None => "unprivileged user namespaces work".to_string(),
        }),
        Err(err) => Check::no(format!("{err}{}", userns_hint())),
    }
}

/// Kernel overlayfs inside a user namespace (Linux 5.11+, `userxattr`).
pub fn overlay_in_userns(scratch: &Path) -> Check {
    let base = scratch.join(format!("overlay-probe-{}", std::process::id()));
    let result = in_child(|| {
        for dir in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(base.join(dir))?;
        }
        enter_user_namespace(CloneFlags::CLONE_NEWNS)?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            base.join("lower").display(),
            base.join("upper").display(),
            base.join("work").display()
        );
        mount(
            Some("overlay"),
            &base.join("merged"),
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .context("mounting overlay with userxattr")?;
        Ok(())
    });
    // overlayfs leaves work/work behind with mode 000, which would stop
    // remove_dir_all from listing it.
    let _ = std::fs::set_permissions(
        base.join("work/work"),
        std::fs::Permissions::from_mode(0o700),
    );
    let _ = std::fs::remove_dir_all(&base);
    match result {
        Ok(()) => Check::yes("kernel overlayfs mounts inside a user namespace"),
        Err(err) => Check::no(format!("{err} (needs Linux 5.11 or later)")),
    }
}

pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

pub fn program(program: &str, package: &str) -> Check {
    match find_in_path(program) {
        Some(path) => Check::yes(path.display().to_string()),
        None => Check::no(format!(
            "not installed; install it with: sudo apt-get install {package} (or your distribution's {package})"
        )),
    }
}

pub fn device(path: &str) -> Check {
    match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => Check::yes("usable"),
        Err(err) => Check::no(format!(
            "cannot open it: {err}; desktop distributions make it mode 0666 (sudo chmod 0666 {path})"
        )),
    }
}

/// How cgroups look to this process, and how rocker gets limits here.
#[derive(Debug, Serialize)]
pub struct Cgroups {
    /// "v2", "hybrid" or "v1".
    pub layout: String,
    /// Our own cgroup in the v2 hierarchy, if there is one.
    pub own_cgroup: Option<String>,
    /// Whether a systemd user manager could delegate a subtree to us.
    pub systemd_user_manager: Check,
    /// Whether resource limits can be applied, how, or why not.
    pub limits: Check,
}

pub fn cgroups() -> Cgroups {
    let systemd = match host::systemd_user_manager() {
        Ok(socket) => Check::yes(format!("listening on {}", socket.display())),
        Err(why) => Check::no(why),
    };
    let limits = match host::delegation() {
        Delegation::Delegated(dir) => Check::yes(format!(
            "rocker's own cgroup {} is delegated (controllers: {})",
            dir.display(),
            host::controllers(&dir).join(" ")
        )),
        Delegation::SystemdScope => Check::yes(
            "a run with limits asks the systemd user manager for a delegated scope \
             (systemd-run --user --scope -p Delegate=yes)",
        ),
        Delegation::Unavailable(why) => Check::no(why),
    };
    Cgroups {
        layout: host::hierarchy().layout.to_string(),
        own_cgroup: host::own_cgroup(),
        systemd_user_manager: systemd,
        limits,
    }
}

pub fn kernel_release() -> Result<String> {
    let uname = nix::sys::utsname::uname().context("uname")?;
    match uname.release().to_str() {
        Some(release) => Ok(release.to_string()),
        None => bail!("the kernel release is not UTF-8"),
    }
}
