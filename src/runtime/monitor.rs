//! The parent side of `rocker run`: creates the container, writes its id
//! maps, watches its setup, then forwards signals (and relays the terminal)
//! until it exits. Every resource is held by a guard, so any failure on the
//! way out kills the container, reaps it and removes its live directory,
//! in reverse order of acquisition.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use nix::unistd::{getgid, getuid, Pid};

use crate::cgroups::ContainerCgroup;
use crate::container::connected::{self, Connection};
use crate::container::live_dir::LiveDir;
use crate::container::logfile::LogWriter;
use crate::error::{StatusError, EXIT_ROCKER_FAILED};
use crate::host::dirs::Dirs;
use crate::host::userns;
use crate::network::forwarder::{needs_forwarder, Forwarder};
use crate::network::keeper::client::KeeperConnection;
use crate::network::keeper::protocol::{AttachRequest, Endpoint};
use crate::network::networks::{dns_names, Networks};
use crate::network::pasta::Pasta;
use crate::network::slirp::{Slirp, Target};
use crate::rootfs::backing::fuse_overlayfs::FuseOverlay;
use crate::rootfs::plan::{self, GeneratedFiles, MountOp};
use crate::runtime::attach_server::{AttachServer, Offer};
use crate::runtime::channel::{self, ParentEnd};
use crate::runtime::host_pid::ContainerProcesses;
use crate::runtime::seccomp::Program;
use crate::runtime::stdio_pipes::StdioPipes;
use crate::runtime::supervise::{self, BlockedSignals, Supervised};
use crate::runtime::{init, namespaces};
use crate::spec::{ContainerSpec, NetworkMode, Rootfs};
use crate::sys::{self, Forked};

/// Where the container's stdout and stderr go.
pub enum Output {
    /// Rocker's own (a foreground run).
    Inherit,
    /// Into its log (a detached run): each through a pipe to the monitor;
    /// to attach clients only with `--log-driver none`.
    Log(Option<LogWriter>),
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its exit status (128+N for signal N).
    pub code: i32,
    /// The kernel's OOM killer killed one of its processes (`--memory`).
    pub oom_killed: bool,
}

/// What `run` calls as the container comes up (see `Started`).
pub trait Hooks {
    /// Once the child is cloned and its ids are mapped. It then mounts its
    /// root (a millisecond or more) while the monitor has little to do, so
    /// work done here is off the way to the command and to its exit
    /// status. An error ends the container before its command runs.
    fn cloned(&mut self, container: &Started) -> Result<()>;
    /// Once its command runs; an error ends the container.
    fn started(&mut self, container: &Started) -> Result<()>;
}

/// What `run` tells its hooks about the container, all of it known from
/// the clone on.
pub struct Started<'a> {
    /// The container's PID 1.
    pub init: Pid,
    /// Its cgroup's leaf, if it has a cgroup of its own.
    pub cgroup: Option<&'a Path>,
    /// Its mount namespace (see `Remains`), for a process forked now to
    /// hold as well.
    pub mount_namespace: Option<BorrowedFd<'a>>,
}

impl<'a> Started<'a> {
    fn new(init: Pid, cgroup: Option<&'a Path>, mount_namespace: Option<&'a OwnedFd>) -> Self {
        Started {
            init,
            cgroup,
            mount_namespace: mount_namespace.map(AsFd::as_fd),
        }
    }
}

/// What of a container outlives `run`, for the caller to let go of once it
/// has recorded the end.
#[derive(Default)]
pub struct Remains {
    /// Its live dir: until it goes, the live state names this monitor.
    pub live_dir: Option<LiveDir>,
    /// Its mount namespace, open from the clone on. Without it the kernel
    /// tears the namespace down (the root's unmount and its 28 other
    /// mounts, then a wait for an RCU grace period) inside the container's
    /// exit, before the monitor hears of it: about 0.2 ms of every run on
    /// the way to the exit status (measured on a 2-core VM). Held, that waits for this descriptor's
    /// last close, which `--rm` leaves to its sweep after rocker's exit.
    pub mount_namespace: Option<OwnedFd>,
}

/// What the monitor holds for a container, released by `Drop` in an
/// order written out there, not left to the order of declarations.
#[derive(Default)]
struct Held {
    cgroup: Option<ContainerCgroup>,
    live_dir: Option<LiveDir>,
    mount_namespace: Option<OwnedFd>,
    mask: Option<BlockedSignals>,
    container: Option<Supervised>,
    /// `--pid host`: the rest of the container, killed after its command.
    processes: Option<ContainerProcesses>,
    fuse: Option<FuseOverlay>,
    network: Option<Slirp>,
    /// On a user-defined network: closing it detaches the container.
    keeper: Option<KeeperConnection>,
    /// Relays the ports slirp4netns cannot publish.
    forwarder: Option<Forwarder>,
    pasta: Option<Pasta>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // The container first, killed and reaped if it still runs: nothing
        // of it may outlive its network, its file system or its cgroup.
        drop(self.container.take());
        if let Some(processes) = self.processes.take() {
            processes.kill_all();
        }
        drop(self.forwarder.take());
        drop(self.pasta.take());
        drop(self.network.take());
        drop(self.keeper.take());
        drop(self.fuse.take());
        drop(self.mask.take());
        drop(self.live_dir.take());
        // Last, as it was first: the cgroup kills whatever is left in it.
        drop(self.cgroup.take());
    }
}

/// Runs the container to completion and returns how it ended. `hooks`
/// are called with the container's PID 1, its cgroup and its mount
/// namespace (`Started`) once it is cloned and once its command runs.
/// The container's live dir and mount namespace are handed back in
/// `remains` (whatever happened) for the caller to let go of once it has
/// recorded the end: until then, the container's live state says its
/// monitor answers for it, and no one sees it stopped without an end.
/// `name` is the container's, which its peers on a user-defined network
/// know it by.
pub fn run(
    spec: &ContainerSpec,
    name: &str,
    seccomp: Option<&Program>,
    dirs: &Dirs,
    output: Output,
    hooks: &mut dyn Hooks,
    remains: &mut Remains,
) -> Result<Exit> {
    let mut held = Held::default();
    let result = run_container(&mut held, spec, name, seccomp, dirs, output, hooks);
    remains.live_dir = held.live_dir.take();
    remains.mount_namespace = held.mount_namespace.take();
    drop(held);
    result.map_err(|err| {
        // A Ctrl-C (or TERM) during setup, held pending by the blocked
        // signals, made a wait give up: the run ends as if the signal
        // had ended it, having cleaned up.
        match crate::util::wait::termination_pending() {
            Some(signal) => StatusError::new(
                128 + signal as i32,
                format!("interrupted by {signal} while the container was being set up"),
            )
            .into(),
            None => err,
        }
    })
}

fn run_container(
    held: &mut Held,
    spec: &ContainerSpec,
    name: &str,
    seccomp: Option<&Program>,
    dirs: &Dirs,
    output: Output,
    hooks: &mut dyn Hooks,
) -> Result<Exit> {
    // Before the cgroup: a keeper started now must not stay in the
    // container's, which goes with the container.
    if let NetworkMode::Bridge { .. } = spec.network {
        held.keeper = Some(KeeperConnection::connect_or_start(dirs.ensure_runtime()?)?);
    }
    // The monitor's own cgroup first: it moves this process out of the
    // container's, and the container is cloned straight into its own.
    held.cgroup = spec
        .resources
        .as_ref()
        .map(|r| ContainerCgroup::create(&r.delegated, &spec.id, &r.limits))
        .transpose()?;
    let cgroup = held.cgroup.as_ref();
    let live_dir = &*held
        .live_dir
        .insert(LiveDir::create(dirs.ensure_runtime()?, spec)?);
    let (endpoints, shared_hosts) = match (&spec.network, &held.keeper) {
        (NetworkMode::Bridge { network, aliases }, Some(keeper)) => {
            let dir = crate::container::record::Containers::open(dirs)?.dir(&spec.id);
            // Its own network first (eth0), then those `network connect`
            // added.
            let mut wanted = vec![Connection {
                network: network.clone(),
                aliases: aliases.clone(),
            }];
            wanted.extend(connected::read(&dir)?);
            let hosts = dir.join(super::SHARED_HOSTS_FILE);
            let endpoints = attach(keeper, spec, name, &wanted, dirs, &hosts)?;
            live_dir.write_endpoints(&endpoints)?;
            (endpoints, Some(hosts))
        }
        _ => (vec![], None),
    };
    // On another container's network: its namespaces, joined below.
    let peer = match &spec.network {
        NetworkMode::Container { container } => Some(peer_init(dirs, container)?),
        _ => None,
    };
    let peer_root = peer
        .as_ref()
        .map(|(_, pid)| PathBuf::from(format!("/proc/{pid}/root")));
    let files = live_dir.compose_etc_files(
        spec,
        endpoints.first(),
        shared_hosts.as_deref(),
        peer_root.as_deref(),
    )?;
    let mounts = plan::plan(spec, &files);
    let mut pipes = match output {
        // Without -t, the container must not hold our terminal.
        Output::Inherit if spec.process.terminal => None,
        Output::Inherit => StdioPipes::for_terminals(spec.process.stdin)?,
        Output::Log(writer) => {
            let offer = Offer {
                terminal: spec.process.terminal,
                stdin: spec.process.stdin,
            };
            Some(StdioPipes::to_log(
                writer,
                AttachServer::bind(live_dir.path(), offer)?,
                offer.terminal,
                offer.stdin,
            )?)
        }
    };
    if let Some((pidfd, pid)) = &peer {
        // Its user namespace first, which owns its network namespace:
        // the container's own user namespace is then made inside it.
        namespaces::join(
            pidfd,
            *pid,
            CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET,
        )
        .context("joining the other container's network")?;
    }
    let mask = &*held.mask.insert(BlockedSignals::for_supervision()?);
    let (channel, pid) =
        clone_container(spec, seccomp, cgroup, &files, &mounts, pipes.as_mut(), mask)?;
    let container = held.container.insert(Supervised::new(pid));
    if spec.host_namespaces.pid {
        held.processes = Some(ContainerProcesses::of(pid)?);
    }

    write_id_maps(pid, spec)?;
    // Before the child goes on (it makes itself non-dumpable, which closes
    // its /proc/PID/ns to us). Only a speed-up: without it, the namespace
    // goes at the container's exit, as it always did.
    held.mount_namespace = crate::host::proc_ns::open(pid.as_raw(), "mnt").ok();
    // For slirp4netns, which then never has to find the container by its
    // pid (see `slirp::Target`).
    let slirp_namespaces = match &spec.network {
        NetworkMode::Slirp4netns(_) => Some(
            crate::host::proc_ns::open(pid.as_raw(), "user")
                .and_then(|user| Ok((user, crate::host::proc_ns::open(pid.as_raw(), "net")?)))
                .map_err(|err| childs_error_or(err, &channel))?,
        ),
        _ => None,
    };
    channel.mapping_written()?;
    // slirp4netns first: its start (its exec and libraries, its child that
    // configures the interface) is the longest way to the command's
    // network, and what follows overlaps it.
    if let (NetworkMode::Slirp4netns(options), Some((user, net))) =
        (&spec.network, &slirp_namespaces)
    {
        let target = Target::Container {
            pid,
            root_mapped: spec.process.user.uid == 0 && spec.process.user.gid == 0,
            user: user.as_fd(),
            net: net.as_fd(),
            publishes: spec.ports.iter().any(|port| !needs_forwarder(port)),
        };
        match Slirp::spawn(target, options, dirs.ensure_runtime()?, live_dir.path()) {
            Ok(slirp) => held.network = Some(slirp),
            Err(err) => return Err(childs_error_or(err, &channel)),
        }
    }
    // slirp4netns has its own copies.
    drop(slirp_namespaces);
    // While the container mounts its root: nothing reads these before it
    // is reported started.
    let program = seccomp.map(Program::to_bytes);
    live_dir.keep_for_later_commands(program.as_deref(), &files)?;
    let leaf = cgroup.map(ContainerCgroup::leaf);
    let about = |mount_namespace| Started::new(pid, leaf.as_deref(), mount_namespace);
    hooks.cloned(&about(held.mount_namespace.as_ref()))?;
    if let Rootfs::FuseOverlay {
        dir,
        lowers,
        mount_point,
    } = &spec.rootfs
    {
        channel.wait_for_rootfs_wanted()?;
        held.fuse = Some(FuseOverlay::start(pid, dir, lowers, mount_point)?);
        channel.rootfs_mounted()?;
    }
    if let (NetworkMode::Slirp4netns(options), Some(slirp)) = (&spec.network, held.network.as_mut())
    {
        if crate::network::starts_on_default_route(&spec.network, &spec.ports) {
            // The child goes on once its default route is there; what
            // is left of slirp4netns's start is watched while it runs.
            if let Err(err) = ready_or_child_on_its_way(slirp, &channel) {
                return Err(childs_error_or(err, &channel));
            }
        } else {
            let published = slirp.wait_until_ready().and_then(|()| {
                spec.ports
                    .iter()
                    .filter(|port| !needs_forwarder(port))
                    .try_for_each(|port| slirp.publish(port, None).map(drop))
            });
            if let Err(err) = published {
                return Err(childs_error_or(err, &channel));
            }
            match forward_ports(spec, options.container_address(), pid, live_dir) {
                Ok(forwarder) => held.forwarder = forwarder,
                Err(err) => return Err(childs_error_or(err, &channel)),
            }
            channel.network_ready()?;
        }
    }

    if let NetworkMode::Pasta {
        options,
        allow_host_loopback,
    } = &spec.network
    {
        match Pasta::start(
            pid,
            &spec.ports,
            *allow_host_loopback,
            options,
            live_dir.path(),
        ) {
            Ok(pasta) => held.pasta = Some(pasta),
            Err(err) => return Err(childs_error_or(err, &channel)),
        }
        channel.network_ready()?;
    }
    if let Some(keeper) = &held.keeper {
        let plugged = crate::host::proc_ns::open(pid.as_raw(), "net")
            .and_then(|netns| keeper.plug(&netns))
            .and_then(|()| forward_ports(spec, endpoints[0].address, pid, live_dir));
        match plugged {
            Ok(forwarder) => held.forwarder = forwarder,
            Err(err) => return Err(childs_error_or(err, &channel)),
        }
        channel.network_ready()?;
    }

    let code = supervise::run_to_exit(
        &channel,
        container,
        mask.signals(),
        spec.process.terminal,
        spec.process.stdin,
        pipes.as_mut(),
        held.network
            .as_mut()
            .map(|slirp| slirp as &mut dyn crate::util::wait::Awaited),
        &mut || hooks.started(&about(held.mount_namespace.as_ref())),
    )?;
    // Before the output drains: what is left of a --pid host container
    // would hold its pipes open.
    if let Some(processes) = &held.processes {
        match processes.kill_all() {
            // None left: nothing for Held's drop to sweep again.
            true => held.processes = None,
            false => eprintln!(
                "rocker: warning: processes of the container kept appearing as they were killed"
            ),
        }
    }
    if let Some(pipes) = pipes.as_mut() {
        pipes.drain();
        pipes.finish_attach(code);
    }
    let oom_killed = cgroup.is_some_and(ContainerCgroup::oom_killed);
    Ok(Exit { code, oom_killed })
}

/// Waits until slirp4netns is ready or the child has news (it has gone on
/// to exec, or to its console's handshake, or failed), whichever comes
/// first: a child started on its default route (see
/// `network::starts_on_default_route`) need not wait for the rest. An
/// error if slirp4netns failed, or was not ready in time, first.
fn ready_or_child_on_its_way(slirp: &mut Slirp, channel: &ParentEnd) -> Result<()> {
    use crate::util::wait::Awaited;
    let Some((ready, by)) = slirp.pending() else {
        return Ok(());
    };
    let left = by.saturating_duration_since(std::time::Instant::now());
    match crate::util::wait::first_readable(&[ready, channel.as_fd()], left) {
        Ok(Some(1)) => Ok(()),
        Ok(answered) => slirp.settle(answered.is_some()),
        Err(err) => Err(err).context("waiting for slirp4netns"),
    }
}

/// Clones the container's PID 1 into its namespaces (and its cgroup's
/// leaf), where it carries out `init`; returns the monitor's end of the
/// channel and the container's pid. With `pipes`, the container's stdout and
/// stderr are its pipes.
fn clone_container(
    spec: &ContainerSpec,
    seccomp: Option<&Program>,
    cgroup: Option<&ContainerCgroup>,
    files: &GeneratedFiles,
    mounts: &[MountOp],
    mut pipes: Option<&mut StdioPipes>,
    mask: &BlockedSignals,
) -> Result<(ParentEnd, Pid)> {
    let cgroup_fd = cgroup.map(ContainerCgroup::open_leaf).transpose()?;
    let (channel, child_end) = channel::pair()?;
    let cgroup_fd = cgroup_fd.as_ref().map(|fd| fd.as_fd());
    match sys::clone_into_namespaces(
        namespaces::flags(&spec.network, spec.host_namespaces),
        cgroup_fd,
    ) {
        Ok(Forked::Child) => {
            drop(channel);
            if let Some(pipes) = pipes.as_mut() {
                if let Err(err) = pipes.become_stdio() {
                    let _ = child_end.failed(EXIT_ROCKER_FAILED, format!("{err:#}"));
                    sys::exit_now(EXIT_ROCKER_FAILED);
                }
            }
            init::run(child_end, spec, files, mounts, seccomp, mask.signals())
        }
        Ok(Forked::Parent(pid)) => {
            if let Some(pipes) = pipes {
                pipes.close_container_ends();
            }
            Ok((channel, pid))
        }
        Err(err) => Err(err).context(format!(
            "creating the container's namespaces{}",
            userns::hint()
        )),
    }
}

/// Reserves the container's place on each of its user-defined networks
/// (`wanted`) and joins the keeper's user namespace, where the container is
/// then made (see `network::keeper`). Returns the container's endpoints.
fn attach(
    keeper: &KeeperConnection,
    spec: &ContainerSpec,
    name: &str,
    wanted: &[Connection],
    dirs: &Dirs,
    hosts: &Path,
) -> Result<Vec<Endpoint>> {
    let networks = Networks::open(&dirs.data)?;
    let mut endpoints = vec![];
    let mut keepers_namespace = None;
    for connection in wanted {
        let network = &connection.network;
        let record = networks.get(network)?.with_context(|| {
            format!("the network {network} is gone: rocker network create {network}")
        })?;
        let request = AttachRequest {
            container_id: spec.id.clone(),
            names: dns_names(name, &connection.aliases, &spec.id),
            isolated: networks.others_subnets(&record)?,
            network: record,
            hosts: hosts.to_path_buf(),
            // Published ports go through the first network's way out (but
            // those rocker's forwarder relays).
            ports: match endpoints.is_empty() {
                true => spec
                    .ports
                    .iter()
                    .filter(|port| !needs_forwarder(port))
                    .cloned()
                    .collect(),
                false => vec![],
            },
        };
        let (endpoint, userns) = keeper
            .attach(request)
            .with_context(|| format!("attaching the container to the network {network}"))?;
        endpoints.push(endpoint);
        keepers_namespace = Some(userns);
    }
    if let Some(userns) = keepers_namespace {
        let context = "joining the network keeper's user namespace";
        crate::sys::ensure_single_threaded().context(context)?;
        nix::sched::setns(&userns, CloneFlags::CLONE_NEWUSER).context(context)?;
    }
    Ok(endpoints)
}

/// Starts rocker's forwarder for the ports slirp4netns cannot publish (see
/// `network::forwarder`), relaying to the container's `address`.
fn forward_ports(
    spec: &ContainerSpec,
    address: std::net::Ipv4Addr,
    pid: Pid,
    live_dir: &LiveDir,
) -> Result<Option<Forwarder>> {
    let ports: Vec<_> = spec
        .ports
        .iter()
        .filter(|p| needs_forwarder(p))
        .cloned()
        .collect();
    if ports.is_empty() {
        return Ok(None);
    }
    Forwarder::start(&ports, address.into(), pid, live_dir.path()).map(Some)
}

/// The PID 1 (a pidfd, and its pid) of the running container `id`, whose
/// network a container shares (`--network container:NAME`).
fn peer_init(dirs: &Dirs, id: &str) -> Result<(std::os::fd::OwnedFd, i32)> {
    let containers = crate::container::record::Containers::open(dirs)?;
    let not_running = || {
        StatusError::new(
            EXIT_ROCKER_FAILED,
            format!(
                "cannot join the network of container {}: it is not running",
                &id[..12]
            ),
        )
    };
    match containers.state(id)? {
        crate::container::record::State::Running(live) => {
            let pidfd = live.init.open().ok_or_else(not_running)?;
            Ok((pidfd, live.init.pid))
        }
        _ => Err(not_running().into()),
    }
}

/// Maps the container's user onto the caller's uid and gid, the one pair
/// an unprivileged process may map (see `host::userns`).
fn write_id_maps(pid: Pid, spec: &ContainerSpec) -> Result<()> {
    let user = spec.process.user;
    userns::write_id_maps(
        pid,
        (user.uid, getuid().as_raw()),
        (user.gid, getgid().as_raw()),
    )
    .with_context(|| format!("writing the id maps{}", userns::hint()))
}

/// A step of the monitor that failed because the child had already failed
/// (slirp4netns finds no network namespace to join) should report the
/// child's reason, which is the real one.
/// A child still busy setting up says nothing for a while; one that
/// failed has sent its reason (or closed the channel) by the time its
/// namespaces are gone.
fn childs_error_or(err: anyhow::Error, channel: &ParentEnd) -> anyhow::Error {
    if channel.has_news_within(Duration::from_millis(200)) {
        // Its own report of a failure; a message of its setup (it wants
        // its fuse mount) says nothing about this one.
        if let Err(childs) = channel.wait_for_exec() {
            if childs.downcast_ref::<StatusError>().is_some() {
                return childs;
            }
        }
    }
    err
}
