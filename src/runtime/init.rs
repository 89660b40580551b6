//! The container's side of `rocker run`. It runs in the cloned child, which
//! is already PID 1 of the new namespaces, and ends either in `execve` of the
//! command or in a `Failed` message to the monitor (see `channel` for the
//! handshake). Each step is named; the order matters and is explained.

use anyhow::{Context, Result};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::sethostname;

use super::channel::ChildEnd;
use super::process::{
    become_user, enter_working_directory, fail, open_console, restrict_privileges_then, start,
    Prepared,
};
use super::seccomp::Program;
use crate::rootfs::backing::mode;
use crate::rootfs::mount;
use crate::rootfs::plan::{GeneratedFiles, MountOp};
use crate::spec::{ContainerSpec, NetworkMode, Rootfs};
use crate::sys;

/// Never returns: the process becomes the container's command, or reports
/// why it could not and exits with the status rocker will end with.
pub fn run(
    channel: ChildEnd,
    spec: &ContainerSpec,
    files: &GeneratedFiles,
    mounts: &[MountOp],
    seccomp: Option<&Program>,
    signals: &SigSet,
) -> ! {
    let prepared = match prepare(&channel, spec, files, mounts, seccomp) {
        Ok(prepared) => prepared,
        Err(err) => fail(&channel, err),
    };
    let reaper = spec.init.then_some(signals);
    start(
        channel,
        prepared,
        spec.process.stdin,
        reaper,
        "forking under --init",
    )
}

/// Everything up to the command: namespaces filled in, privileges reduced.
fn prepare(
    channel: &ChildEnd,
    spec: &ContainerSpec,
    files: &GeneratedFiles,
    mounts: &[MountOp],
    seccomp: Option<&Program>,
) -> Result<Prepared> {
    // A container must not outlive the monitor that answers for it. Should
    // the monitor already be gone, the wait below reads end of stream.
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    channel.wait_for_mapping()?;
    // Without a pid namespace, orphans would go to the host's init: the
    // command (or --init's reaper) adopts them, as PID 1 would.
    if spec.host_namespaces.pid {
        prctl::set_child_subreaper(true).context("becoming the container's subreaper")?;
    }

    become_user(spec.process.user)?;
    enter_rootfs(channel, spec, files, mounts)?;
    if !spec.host_namespaces.uts {
        sethostname(&spec.hostname).context("setting the hostname")?;
    }
    if spec.network.is_own_namespace() {
        sys::set_loopback_up().context("bringing up the loopback interface")?;
    }
    // The monitor starts slirp4netns (or has the keeper plug the container
    // into its network) meanwhile; the command must find the network (and
    // its published ports) ready. A terminal's handshake follows the
    // network's on the monitor's side, so with -t the wait comes first;
    // without, the rest of the setup overlaps the network's start.
    let network_to_wait_for = matches!(
        spec.network,
        NetworkMode::Slirp4netns(_) | NetworkMode::Bridge { .. } | NetworkMode::Pasta { .. }
    );
    let wait_for_network =
        || match crate::network::starts_on_default_route(&spec.network, &spec.ports) {
            true => crate::network::netlink::wait_for_default_route()
                .context("waiting for the network's default route"),
            false => channel.wait_for_network(),
        };
    if network_to_wait_for && spec.process.terminal {
        wait_for_network()?;
    }
    // The pty comes from the container's own devpts, so `tty` inside names it.
    let console = match spec.process.terminal {
        true => {
            let slave = open_console(channel)?;
            mount::bind_console(&slave)?;
            Some(slave)
        }
        false => None,
    };
    enter_working_directory(&spec.process.cwd, true)?;
    let mut prepared = Prepared::new(
        console,
        &spec.process.args,
        &spec.process.env,
        seccomp.cloned(),
    )?;
    prepared.ulimits = spec.ulimits.clone();
    restrict_privileges_then(&spec.process.capabilities, || {
        match network_to_wait_for && !spec.process.terminal {
            true => wait_for_network(),
            false => Ok(()),
        }
    })?;
    Ok(prepared)
}

/// Mounts the rootfs and its plan and pivots into it. fuse-overlayfs is
/// the monitor's to start, once the mount point is ready for it.
fn enter_rootfs(
    channel: &ChildEnd,
    spec: &ContainerSpec,
    files: &GeneratedFiles,
    mounts: &[MountOp],
) -> Result<()> {
    mount::make_mounts_private()?;
    mount::confine_generated_files(files)?;
    mount::mount_backing(&spec.rootfs, || {
        channel.rootfs_wanted()?;
        channel.wait_for_rootfs_mounted()
    })
    .map_err(|err| match spec.rootfs {
        Rootfs::KernelOverlay { .. } => err.context(format!(
            "the kernel overlay failed (if this host cannot mount it in a user namespace, set \
             {}=fuse-overlayfs)",
            mode::MODE_VARIABLE
        )),
        _ => err,
    })?;
    mount::enter(spec.rootfs.path(), mounts, spec.read_only)
}
