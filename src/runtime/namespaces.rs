//! A container's namespaces: the set it is created with, and how `exec`
//! joins them.

use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::container::identity;
use crate::network::NetworkMode;
use crate::spec::HostNamespaces;

/// The namespaces of a container (`exec` joins the same ones). The user
/// namespace comes first: it is what makes the others possible without
/// privilege, and it owns them. Those shared with the host (`--network
/// host`, `--pid host`, `--ipc host`, `--uts host`) are the caller's own, which the
/// container's user namespace could not join anyway.
pub fn flags(network: &NetworkMode, host: HostNamespaces) -> CloneFlags {
    let mut flags =
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWCGROUP;
    flags.set(CloneFlags::CLONE_NEWPID, !host.pid);
    flags.set(CloneFlags::CLONE_NEWNET, network.is_own_namespace());
    flags.set(CloneFlags::CLONE_NEWIPC, !host.ipc);
    flags.set(CloneFlags::CLONE_NEWUTS, !host.uts);
    flags
}

/// Joins the namespaces `namespaces` of the container whose PID 1 is
/// `init` (a pidfd; `init_pid` as the host sees it), all in one setns:
/// the user namespace comes first within it, which grants the right to
/// join the rest.
pub fn join(init: &OwnedFd, init_pid: i32, namespaces: CloneFlags) -> Result<()> {
    let context = "joining the container's namespaces (Linux 5.8 or later is needed)";
    crate::sys::ensure_single_threaded().context(context)?;
    match nix::sched::setns(init, namespaces) {
        Err(Errno::EPERM) => {}
        other => return other.context(context),
    }
    // Under --init, PID 1 is rocker's reaper, which stays non-dumpable
    // (CVE-2019-5736), and the kernel lets no one join through such a
    // process. Its child, the container's command, shares its namespaces.
    let command = identity::first_child(init_pid)
        .context("the container's PID 1 cannot be joined and has no child to join through")?;
    nix::sched::setns(&command, namespaces).context(context)
}

/// For a container on another container's network (`--network
/// container:NAME`): joins the user namespace its own was made in (the
/// other container's, which owns the network namespace) and then that
/// network namespace, as its monitor did before making it. `join` takes it
/// from there into the container's own user namespace (a child of this
/// one) without the network namespace.
pub fn join_shared_network(init_pid: i32) -> Result<()> {
    let context = "joining the network the container shares";
    let open = |kind: &str| crate::host::proc_ns::open(init_pid, kind);
    let own = open("user")?;
    let network = open("net")?;
    let parent = crate::sys::user_namespace_parent(std::os::fd::AsFd::as_fd(&own))
        .context("finding the user namespace the container's was made in")?;
    crate::sys::ensure_single_threaded().context(context)?;
    nix::sched::setns(&parent, CloneFlags::CLONE_NEWUSER).context(context)?;
    nix::sched::setns(&network, CloneFlags::CLONE_NEWNET).context(context)
}
