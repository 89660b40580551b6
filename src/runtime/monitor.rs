//! The parent side of `rocker run`: creates the container, writes its id
//! maps, watches its setup, then forwards signals (and relays the terminal)
//! until it exits. Every resource is held by a guard, so any failure on the
//! way out kills the container, reaps it and removes its live directory,
//! in reverse order of acquisition.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{getgid, getuid, Pid};

use crate::cgroups::ContainerCgroup;
use crate::container::live_dir::LiveDir;
use crate::container::logfile::LogWriter;
use crate::error::EXIT_ROCKER_FAILED;
use crate::host::dirs::Dirs;
use crate::host::userns;
use crate::network::slirp::Slirp;
use crate::rootfs::backing::fuse_overlayfs::FuseOverlay;
use crate::rootfs::plan;
use crate::runtime::channel::{self, ParentEnd};
use crate::runtime::logpipes::LogPipes;
use crate::runtime::supervise::{self, BlockedSignals, Supervised, FORWARDED};
use crate::runtime::{init, namespaces};
use crate::spec::{ContainerSpec, NetworkMode, Rootfs};
use crate::sys::{self, Forked};

/// Where the container's stdout and stderr go.
pub enum Output {
    /// Rocker's own (a foreground run).
    Inherit,
    /// Into its log (a detached run): each through a pipe to the monitor.
    Log(LogWriter),
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its exit status (128+N for signal N).
    pub code: i32,
    /// The kernel's OOM killer killed one of its processes (`--memory`).
    pub oom_killed: bool,
}

/// Runs the container to completion and returns how it ended. `started`
/// is called with the container's PID 1 (and its cgroup, if it has one of
/// its own) once its command runs.
pub fn run(
    spec: &ContainerSpec,
    dirs: &Dirs,
    output: Output,
    started: &mut dyn FnMut(Pid, Option<&Path>) -> Result<()>,
) -> Result<Exit> {
    // The monitor's own cgroup first: it moves this process out of the
    // container's, and the container is cloned straight into its own.
    let cgroup = spec
        .resources
        .as_ref()
        .map(|r| ContainerCgroup::create(&r.delegated, &spec.id, &r.limits))
        .transpose()?;
    let cgroup_fd = cgroup
        .as_ref()
        .map(ContainerCgroup::open_leaf)
        .transpose()?;
    let live_dir = LiveDir::create(dirs.ensure_runtime()?, spec)?;
    let files = live_dir.write_etc_files(spec)?;
    let mounts = plan::plan(spec, &files);
    let (channel, child_end) = channel::pair()?;
    let mut log = match output {
        Output::Inherit => None,
        Output::Log(writer) => Some(LogPipes::new(writer)?),
    };

    // Blocked before the clone, so no signal is lost before the loop below
    // reads them; the child inherits the mask and clears it before exec.
    let mut signals: SigSet = FORWARDED.iter().copied().collect();
    signals.add(Signal::SIGCHLD);
    let _mask = BlockedSignals::block(&signals)?;

    let cgroup_fd = cgroup_fd.as_ref().map(|fd| fd.as_fd());
    let pid = match sys::clone_into_namespaces(namespaces::flags(spec.network), cgroup_fd) {
        Ok(Forked::Child) => {
            drop(channel);
            if let Some(log) = log.as_mut() {
                if let Err(err) = log.become_stdio() {
                    let _ = child_end.failed(EXIT_ROCKER_FAILED, format!("{err:#}"));
                    sys::exit_now(EXIT_ROCKER_FAILED);
                }
            }
            init::run(child_end, spec, &mounts, &signals)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(err) => {
            return Err(err).context(format!(
                "creating the container's namespaces{}",
                userns::hint()
            ))
        }
    };
    drop(child_end);
    if let Some(log) = log.as_mut() {
        log.close_write_ends();
    }
    // Declared before the container so that they are dropped after it: the
    // container is killed and reaped before its file system and network go.
    let mut _fuse: Option<FuseOverlay> = None;
    let mut _network: Option<Slirp> = None;
    let mut container = Supervised::new(pid);

    let user = spec.process.user;
    userns::write_id_maps(
        pid,
        (user.uid, getuid().as_raw()),
        (user.gid, getgid().as_raw()),
    )
    .with_context(|| format!("writing the id maps{}", userns::hint()))?;
    channel.mapping_written()?;
    if let Rootfs::FuseOverlay {
        dir,
        lowers,
        mount_point,
    } = &spec.rootfs
    {
        channel.wait_for_rootfs_wanted()?;
        _fuse = Some(FuseOverlay::start(pid, dir, lowers, mount_point)?);
        channel.rootfs_mounted()?;
    }
    if let NetworkMode::Slirp4netns(options) = &spec.network {
        let started = Slirp::start(
            pid,
            options,
            user.uid == 0 && user.gid == 0,
            dirs.ensure_runtime()?,
            live_dir.path(),
        )
        .and_then(|slirp| {
            let slirp = _network.insert(slirp);
            spec.ports.iter().try_for_each(|port| slirp.publish(port))
        });
        if let Err(err) = started {
            return Err(childs_error_or(err, &channel));
        }
        channel.network_ready()?;
    }

    let leaf = cgroup.as_ref().map(ContainerCgroup::leaf);
    let code = supervise::run_to_exit(
        &channel,
        &mut container,
        &signals,
        spec.process.terminal,
        spec.process.stdin,
        log.as_mut(),
        &mut || started(pid, leaf.as_deref()),
    )?;
    if let Some(log) = log.as_mut() {
        log.drain();
    }
    let oom_killed = cgroup.as_ref().is_some_and(ContainerCgroup::oom_killed);
    Ok(Exit { code, oom_killed })
}

/// A step of the monitor that failed because the child had already failed
/// (slirp4netns finds no network namespace to join) should report the
/// child's reason, which is the real one.
/// A child still busy setting up says nothing for a while; one that
/// failed has sent its reason (or closed the channel) by the time its
/// namespaces are gone.
fn childs_error_or(err: anyhow::Error, channel: &ParentEnd) -> anyhow::Error {
    if channel.has_news_within(Duration::from_millis(200)) {
        if let Err(childs) = channel.wait_for_exec() {
            return childs;
        }
    }
    err
}
