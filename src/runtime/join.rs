//! The container's side of `rocker exec`. It runs in a process forked from
//! `rocker exec`, which joins the namespaces of the container's PID 1
//! (user namespace first: it is what grants the right to join the others),
//! takes the container's user, working directory and terminal, and forks
//! the command into the container's pid namespace. It stays outside that
//! namespace itself, forwarding signals to the command and exiting with its
//! status, so nothing in the container can reach it.
//!
//! The handshake with `rocker exec` is `run`'s, minus the steps that build
//! the container (see `channel`): `[-t] send_console`, `wait_for_console_sized`,
//! then exec (end of stream) or `Failed`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal};

use super::namespaces;
use super::process::{self, Prepared};
use super::seccomp::Program;
use crate::cgroups;
use crate::error::{StatusError, EXIT_CANNOT_EXECUTE};
use crate::rootfs::inroot;
use crate::rootfs::users::{self, ACCOUNT_FILE_LIMIT};
use crate::runtime::channel::ChildEnd;
use crate::spec::UserSpec;
use crate::spec::{ContainerUser, ProcessSpec};

/// What `rocker exec` runs, and where.
pub struct ExecSpec {
    /// A pidfd of the container's PID 1, whose namespaces are joined, and
    /// its pid as the host sees it.
    pub init: OwnedFd,
    pub init_pid: i32,
    /// The container's cgroup (when it has limits), joined first.
    pub cgroup: Option<PathBuf>,
    /// The namespaces to join (not the network one of a `--network host`
    /// container: that is the caller's own).
    pub namespaces: CloneFlags,
    /// On another container's network (`--network container:NAME`),
    /// joined first (see `namespaces::join_shared_network`).
    pub shared_network: bool,
    /// The command, as `run` describes its own; `process.user` is the
    /// only user the container's user namespace maps, the one it was
    /// started as.
    pub process: ProcessSpec,
    /// `-u`, resolved inside the container (its /etc/passwd).
    pub user: Option<UserSpec>,
    /// The container's syscall filter, installed before the command runs.
    pub seccomp: Option<Program>,
}

/// Never returns: joins the container, starts the command in it and exits
/// with the command's status, or reports why it could not.
pub fn run(channel: ChildEnd, spec: &ExecSpec, signals: &SigSet) -> ! {
    let prepared = match join(&channel, spec) {
        Ok(prepared) => prepared,
        Err(err) => process::fail(&channel, err),
    };
    process::start(
        channel,
        prepared,
        spec.process.stdin,
        Some(signals),
        "forking into the container's pid namespace (has the container just stopped?)",
    )
}

/// Everything up to the fork of the command: in the container's
/// namespaces, as its user, in the working directory, privileges reduced.
fn join(channel: &ChildEnd, spec: &ExecSpec) -> Result<Prepared> {
    // From here until exec this process is rocker's binary with every
    // capability in the container's user namespace: nothing in the
    // container may open it (CVE-2019-5736). Joining a user namespace
    // changes credentials, which resets both settings: set them again.
    prctl::set_dumpable(false).context("marking the process non-dumpable")?;
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    // The cgroup before its namespace: joining the cgroup namespace then
    // roots our view at the container's cgroup, as the container's is.
    if let Some(leaf) = &spec.cgroup {
        cgroups::enter(leaf).context("joining the container's cgroup (and its limits)")?;
    }
    if spec.shared_network {
        namespaces::join_shared_network(spec.init_pid)?;
    }
    namespaces::join(&spec.init, spec.init_pid, spec.namespaces)?;
    prctl::set_dumpable(false).context("marking the process non-dumpable")?;
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;

    process::become_user(user_ids(spec)?)?;
    // Joining the mount namespace moved us to its root.
    process::enter_working_directory(&spec.process.cwd, false)
        .map_err(|err| StatusError::new(EXIT_CANNOT_EXECUTE, format!("{err:#}")))?;
    let console = match spec.process.terminal {
        true => Some(process::open_console(channel)?),
        false => None,
    };
    let prepared = Prepared::new(
        console,
        &spec.process.args,
        &spec.process.env,
        spec.seccomp.clone(),
    )?;
    process::restrict_privileges(&spec.process.capabilities)?;
    Ok(prepared)
}

/// The ids `-u` names, which must be the container's mapped ones: rocker
/// maps a single uid and gid (it needs no /etc/subuid), so no other user
/// exists in the container's user namespace.
fn user_ids(spec: &ExecSpec) -> Result<ContainerUser> {
    let mapped = spec.process.user;
    let Some(user) = &spec.user else {
        return Ok(mapped);
    };
    // We stand in the container's root now, which is untrusted: its
    // account files are read bounded and never from a FIFO.
    let read = |path: &str| {
        inroot::read_to_string(Path::new("/"), path, ACCOUNT_FILE_LIMIT)
            .with_context(|| format!("reading {path} in the container"))
    };
    let (passwd, group) = (read("/etc/passwd")?, read("/etc/group")?);
    let ids = users::resolve(Some(user), passwd.as_deref(), group.as_deref())?.ids;
    if ids != mapped {
        bail!(
            "cannot exec as {}:{} in this container: it maps only uid {} and gid {} (the user \
             it was started as; rocker maps one user, so that no /etc/subuid is needed). Start \
             the container with --user {}:{} to exec as that user",
            ids.uid,
            ids.gid,
            mapped.uid,
            mapped.gid,
            ids.uid,
            ids.gid
        );
    }
    Ok(ids)
}
