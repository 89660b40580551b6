//! The cgroup part of `rocker info`: how cgroups look to this process, and
//! how (or why not) rocker gets limits here.

use serde::Serialize;

use super::delegation::{self, Delegation};
use crate::host::probe::Check;

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

pub fn report() -> Cgroups {
    let systemd = match delegation::systemd_user_manager() {
        Ok(socket) => Check::yes(format!("listening on {}", socket.display())),
        Err(why) => Check::no(why),
    };
    let limits = match delegation::delegation() {
        Delegation::Delegated(dir) => Check::yes(format!(
            "rocker's own cgroup {} is delegated (controllers: {})",
            dir.display(),
            delegation::controllers(&dir).join(" ")
        )),
        Delegation::SystemdScope => Check::yes(
            "a run with limits asks the systemd user manager for a delegated scope \
             (systemd-run --user --scope -p Delegate=yes)",
        ),
        Delegation::Unavailable(why) => Check::no(format!(
            "{why} (a run with limits warns and runs without them, unless config.toml has \
             [limits] unenforceable = \"error\")"
        )),
    };
    Cgroups {
        layout: delegation::hierarchy().layout.to_string(),
        own_cgroup: delegation::own_cgroup(),
        systemd_user_manager: systemd,
        limits,
    }
}
