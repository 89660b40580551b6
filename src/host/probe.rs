//! What this host offers a rootless user, checked live: user namespaces,
//! overlay inside one, programs, devices, the kernel. `rocker info` prints
//! it all; the rootfs mode probe and error messages reuse the checks.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use serde::Serialize;

use super::userns::{self, map_line, read_sysctl};
use super::which::find_in_path;
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
    std::fs::write("/proc/self/uid_map", map_line(0, uid.as_raw())).context("writing uid_map")?;
    std::fs::write("/proc/self/gid_map", map_line(0, gid.as_raw())).context("writing gid_map")?;
    Ok(())
}

pub fn user_namespaces() -> Check {
    let max = read_sysctl("/proc/sys/user/max_user_namespaces");
    match in_child(|| enter_user_namespace(CloneFlags::empty())) {
        Ok(()) => Check::yes(match max {
            Some(max) => format!("unprivileged user namespaces work (max {max})"),
            None => "unprivileged user namespaces work".to_string(),
        }),
        Err(err) => Check::no(format!("{err}{}", userns::hint())),
    }
}

const NO_USERNS: &str = "no user namespace to try it in";

/// Kernel overlayfs inside a user namespace (Linux 5.11+, `userxattr`),
/// tried in `store`, where the containers' upper dirs go: the answer
/// depends on that file system.
pub fn overlay_in_userns(store: &Path) -> Check {
    if super::nested::is_on_overlayfs(store) {
        return Check::no(format!(
            "the store {} is on overlayfs (a container's own root, most likely), which kernel \
             overlay does not take as an upper dir; give the store a volume or a host \
             directory (XDG_DATA_HOME) to use it",
            store.display()
        ));
    }
    let base = store.join(format!(".overlay-probe-{}", std::process::id()));
    let result = in_child(|| {
        for dir in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(base.join(dir))?;
        }
        enter_user_namespace(CloneFlags::CLONE_NEWNS).context(NO_USERNS)?;
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
        Err(err) if err.starts_with(NO_USERNS) => Check::no(err),
        Err(err) if kernel_before(5, 11) => Check::no(format!("{err} (needs Linux 5.11 or later)")),
        Err(err) => Check::no(format!(
            "{err} (the kernel is new enough: the file system of {} may not take it as an \
             upper dir)",
            store.display()
        )),
    }
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

/// Whether the running kernel is older than `major.minor`.
fn kernel_before(major: u32, minor: u32) -> bool {
    let release = kernel_release().unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found < (major, minor)
}

pub fn kernel_release() -> Result<String> {
    let uname = nix::sys::utsname::uname().context("uname")?;
    match uname.release().to_str() {
        Some(release) => Ok(release.to_string()),
        None => bail!("the kernel release is not UTF-8"),
    }
}
