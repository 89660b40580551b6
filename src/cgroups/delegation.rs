//! Where this process stands in the host's cgroups, and how rocker can get
//! a cgroup v2 subtree of its own to manage without privilege:
//!
//! 1. our own cgroup is already delegated to us (writable, and systemd
//!    says so: a scope made with `Delegate=yes`; or a cgroup namespace's
//!    root, as a CI job's container has): use it;
//! 2. a systemd user manager runs: ask it for a delegated scope
//!    (`systemd-run --user --scope -p Delegate=yes`) and run in it;
//! 3. neither: say exactly what is missing.

use std::path::{Path, PathBuf};

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v2 alone, on /sys/fs/cgroup.
    V2,
    /// v1 controllers, with a (mostly empty) v2 hierarchy beside them.
    Hybrid,
    /// cgroup v1 alone.
    V1,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::V2 => "v2",
            Layout::Hybrid => "hybrid",
            Layout::V1 => "v1",
        })
    }
}

/// The cgroup layout, and the v2 hierarchy's mount point where it has one.
pub struct Hierarchy {
    pub layout: Layout,
    pub root: Option<PathBuf>,
}

fn is_cgroup2(path: &str) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

pub fn hierarchy() -> Hierarchy {
    let (layout, root) = if is_cgroup2("/sys/fs/cgroup") {
        (Layout::V2, Some("/sys/fs/cgroup"))
    } else if is_cgroup2("/sys/fs/cgroup/unified") {
        (Layout::Hybrid, Some("/sys/fs/cgroup/unified"))
    } else {
        (Layout::V1, None)
    };
    Hierarchy {
        layout,
        root: root.map(PathBuf::from),
    }
}

/// This process's cgroup in the v2 hierarchy, as `/proc/self/cgroup`
/// names it (`/user.slice/...`).
pub fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::").map(str::to_string))
}

/// The directory of a v2 cgroup path.
pub fn cgroup_dir(root: &Path, cgroup: &str) -> PathBuf {
    root.join(cgroup.trim_start_matches('/'))
}

fn writable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Whether we may manage the cgroup in `dir`: move processes in and out,
/// and enable controllers below it.
pub fn is_writable(dir: &Path) -> bool {
    writable(&dir.join("cgroup.procs")) && writable(&dir.join("cgroup.subtree_control"))
}

/// Whether the cgroup in `dir` was handed to us to manage. Writable files
/// alone do not say so: under a user manager every cgroup of the user's
/// units is the user's, yet systemd manages those of units without
/// `Delegate=yes`. Recent systemd marks delegated cgroups with an xattr;
/// older ones (Debian 12's 252, for a user manager) are asked; the root of
/// a cgroup namespace (a container's, a CI job's) is delegated by nature.
pub fn is_delegated(dir: &Path, cgroup: &str) -> bool {
    if !is_writable(dir) {
        return false;
    }
    let marked = ["user.delegate", "trusted.delegate"]
        .iter()
        .any(|name| crate::util::xattr::get(dir, name).is_some_and(|value| value == b"1"));
    marked || cgroup == "/" || systemd_delegates(cgroup)
}

/// How long a helper (systemctl) may take before rocker goes on without
/// its answer.
const HELPER_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether the user manager's unit owning `cgroup` has Delegate=yes.
fn systemd_delegates(cgroup: &str) -> bool {
    let unit = cgroup.rsplit('/').next().unwrap_or_default();
    if !(unit.ends_with(".scope") || unit.ends_with(".service")) {
        return false;
    }
    let mut systemctl = std::process::Command::new("systemctl");
    systemctl.args(["--user", "show", "--property=Delegate", "--value", unit]);
    crate::util::wait::helper_output(&mut systemctl, HELPER_LIMIT)
        .is_some_and(|out| out.status.success() && out.stdout.trim_ascii() == b"yes")
}

/// The controllers a cgroup may use (its parent enabled them for it).
pub fn controllers(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|text| text.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A systemd user manager listens on $XDG_RUNTIME_DIR/systemd/private.
/// Ok(socket) when it does; Err(why not) otherwise.
pub fn systemd_user_manager() -> Result<PathBuf, String> {
    let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") else {
        return Err("XDG_RUNTIME_DIR is not set: there is no user session".to_string());
    };
    let socket = Path::new(&runtime).join("systemd/private");
    match socket.exists() {
        true => Ok(socket),
        false => Err(format!(
            "no systemd user manager listens at {}: log in through a systemd session, or \
             keep one running with: loginctl enable-linger $USER",
            socket.display()
        )),
    }
}

/// Whether the user's D-Bus session bus is there for systemd-run.
fn has_session_bus() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|runtime| Path::new(&runtime).join("bus").exists())
}

/// How rocker gets a cgroup subtree on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    /// Our own cgroup, this directory, is ours to manage.
    Delegated(PathBuf),
    /// A systemd user manager can make us a delegated scope.
    SystemdScope,
    /// Neither: why, and how to get it.
    Unavailable(String),
}

pub fn delegation() -> Delegation {
    let hierarchy = hierarchy();
    let manager = systemd_user_manager();
    let root = match (hierarchy.layout, hierarchy.root) {
        (Layout::V2, Some(root)) => root,
        (layout, _) => {
            let mut why = format!(
                "rootless limits need cgroup v2, and this host's cgroups are {layout} (the \
                 controllers are in cgroup v1): boot with systemd.unified_cgroup_hierarchy=1 \
                 (the default since systemd 247)"
            );
            if let Err(no_manager) = manager {
                why.push_str(&format!(
                    "; they also need a systemd user manager: {no_manager}"
                ));
            }
            return Delegation::Unavailable(why);
        }
    };
    let Some(own) = own_cgroup() else {
        return Delegation::Unavailable("this process is in no cgroup v2 cgroup".to_string());
    };
    let dir = cgroup_dir(&root, &own);
    // A shell that rocker moved to D/init (see `cgroups`) runs the next
    // rocker from there: D is still the one to use.
    if let (Some(parent), Some(parent_cgroup)) = (dir.parent(), own.strip_suffix("/init")) {
        let parent_cgroup = if parent_cgroup.is_empty() {
            "/"
        } else {
            parent_cgroup
        };
        if dir.ends_with(super::INIT_LEAF) && is_delegated(parent, parent_cgroup) {
            return Delegation::Delegated(parent.to_path_buf());
        }
    }
    if is_delegated(&dir, &own) {
        return Delegation::Delegated(dir);
    }
    match (manager, crate::host::which::find_in_path("systemd-run")) {
        (Ok(_), Some(_)) if has_session_bus() => Delegation::SystemdScope,
        (Ok(_), Some(_)) => Delegation::Unavailable(
            "a systemd user manager runs, but `systemd-run --user` reaches it over the session \
             bus, and there is none (no DBUS_SESSION_BUS_ADDRESS, no $XDG_RUNTIME_DIR/bus): \
             apt-get install dbus-user-session, then log in again"
                .to_string(),
        ),
        (Ok(_), None) => Delegation::Unavailable(
            "a systemd user manager runs but systemd-run is missing: apt-get install systemd"
                .to_string(),
        ),
        (Err(no_manager), _) => Delegation::Unavailable(format!(
            "cgroup {own} is not delegated to you, and {no_manager}"
        )),
    }
}
