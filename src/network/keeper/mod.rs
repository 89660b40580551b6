//! The network keeper: the one process that holds rocker's network
//! namespace while any container is on a user-defined network, and builds
//! the networks in it. No daemon: the first container that needs it starts
//! it (under a lock), and it exits when the last attached container's
//! connection closes, which happens however that container's monitor ends,
//! SIGKILL included. With it go the namespace, the bridges, the veths and
//! the slirp4netns processes; a crash of the keeper takes them along too,
//! and the next run starts a fresh one.
//!
//! The keeper makes a user namespace of its own (mapping the caller's uid
//! to 0, as every rocker namespace does) and, from a thread, the network
//! namespace. It stays in the host's network namespace itself, so the
//! slirp4netns processes it starts reach the host. Containers on a network
//! are made inside the keeper's user namespace (their monitors join it
//! first), which is what lets the keeper move a veth into a container's
//! network namespace and configure it: an unprivileged process is
//! privileged only over namespaces below its own.
//!
//! A network up in the namespace is a bridge `br-ID` with slirp4netns's tap
//! device on it (its virtual network is the network's subnet, so its
//! gateway and DNS forwarder serve every container on the bridge, and
//! published ports are forwarded to a container's address), and a veth
//! per container. Names resolve through each container's /etc/hosts,
//! which the keeper rewrites as peers come and go (`hosts`).

pub mod client;
mod hosts;
pub mod protocol;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, Flock, FlockArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::socket::{
    accept4, bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::unistd::{getgid, getuid, Pid};

use self::protocol::{AttachRequest, Endpoint, Reply, Request};
use super::netlink::{LinkSpec, Netlink};
use super::networks::NetworkRecord;
use super::ports::PortMapping;
use super::slirp::{Slirp, Target};
use super::{Ipv4Network, SlirpOptions};
use crate::host::userns;

/// The keeper's dir under the runtime dir.
const KEEPER_DIR: &str = "networks";
const SOCKET: &str = "keeper.sock";
/// Held while a keeper is started or connected to, and by a keeper
/// deciding to exit: one never exits under a container connecting.
const START_LOCK: &str = "start.lock";
const LOG_FILE: &str = "keeper.log";
/// The hidden verb that runs the keeper (`rocker network-keeper`).
pub const VERB: &str = "network-keeper";
/// Every link of a network: slirp4netns's largest, as for a container's
/// own network.
const MTU: u32 = 65520;

/// The keeper's dir for the runtime dir `runtime`.
pub fn dir(runtime: &Path) -> PathBuf {
    runtime.join(KEEPER_DIR)
}

/// A container's endpoint and what the keeper made for it.
struct Member {
    client: u64,
    endpoint: Endpoint,
    hosts: PathBuf,
    ports: Vec<PortMapping>,
    isolated: Vec<Ipv4Network>,
    /// The veth's end on the bridge.
    veth: String,
    plugged: bool,
    /// slirp4netns's ids of its published ports.
    forwards: Vec<u64>,
    /// A netlink socket in the container's network namespace, once
    /// plugged: `disconnect` closes the route it opened.
    inside: Option<Netlink>,
}

/// A network that is up: its bridge, its way out, its containers.
struct Bridge {
    record: NetworkRecord,
    index: i32,
    slirp: Option<Slirp>,
    members: Vec<Member>,
}

struct Client {
    id: u64,
    socket: OwnedFd,
}

/// Endpoints `network connect` made, under a client id of their own: they
/// last as long as their container's PID 1, whose pidfd turns readable
/// when it exits.
struct Held {
    client: u64,
    pidfd: OwnedFd,
}

struct Keeper {
    runtime: PathBuf,
    dir: PathBuf,
    /// The network namespace, held open for as long as the keeper runs.
    netns: OwnedFd,
    userns: OwnedFd,
    netlink: Netlink,
    /// By network id: stores of their own (another data dir) may share the
    /// runtime dir, and their network names.
    networks: BTreeMap<String, Bridge>,
    clients: Vec<Client>,
    held: Vec<Held>,
    next_client: u64,
    /// Numbers the veths.
    attachments: u64,
}

/// Runs the keeper (the hidden verb). The process started hands over to
/// a child and exits, so the keeper is no monitor's child; the child
/// prints `ready` on stdout once it takes connections.
pub fn serve(runtime: &Path) -> Result<()> {
    if let crate::sys::Forked::Parent(_) = crate::sys::fork().context("forking the keeper")? {
        return Ok(());
    }
    // Out of the caller's session: no terminal signal reaches it.
    let _ = nix::unistd::setsid();
    let dir = dir(runtime);
    std::env::set_current_dir(&dir).with_context(|| format!("entering {}", dir.display()))?;
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    unshare(CloneFlags::CLONE_NEWUSER)
        .with_context(|| format!("creating the keeper's user namespace{}", userns::hint()))?;
    userns::write_id_maps(Pid::this(), (0, uid), (0, gid))
        .context("mapping the keeper's user namespace")?;
    let userns = open(
        "/proc/self/ns/user",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening the keeper's user namespace")?;
    let (netns, netlink) = make_network_namespace()?;
    let listener = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("making the keeper's socket")?;
    let _ = std::fs::remove_file(SOCKET);
    bind(listener.as_raw_fd(), &UnixAddr::new(SOCKET)?).context("binding the keeper's socket")?;
    listen(&listener, Backlog::new(64)?).context("listening on the keeper's socket")?;
    // The starter may be gone already: nothing to tell then.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), b"ready\n");
    let mut keeper = Keeper {
        runtime: runtime.to_path_buf(),
        dir,
        netns,
        userns,
        netlink,
        networks: BTreeMap::new(),
        clients: vec![],
        held: vec![],
        next_client: 0,
        attachments: 0,
    };
    keeper.serve(&listener)
}

/// rocker's network namespace, made by a thread so the keeper itself stays
/// in the host's (a thread may have a network namespace of its own), with
/// loopback up and a netlink socket in it.
fn make_network_namespace() -> Result<(OwnedFd, Netlink)> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<(OwnedFd, Netlink)> {
                unshare(CloneFlags::CLONE_NEWNET).context("creating the network namespace")?;
                let netns = open(
                    "/proc/thread-self/ns/net",
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .context("opening the network namespace")?;
                let mut netlink = Netlink::open()?;
                let lo = netlink.link_index("lo")?;
                netlink.set_up(lo, None)?;
                Ok((netns, netlink))
            })
            .join()
            .unwrap_or_else(|_| bail!("the thread making the network namespace panicked"))
    })
}

impl Keeper {
    fn serve(&mut self, listener: &OwnedFd) -> Result<()> {
        loop {
            let idle = self.clients.is_empty() && self.held.is_empty();
            let mut polled = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            polled.extend(
                self.clients
                    .iter()
                    .map(|c| PollFd::new(c.socket.as_fd(), PollFlags::POLLIN)),
            );
            polled.extend(
                self.held
                    .iter()
                    .map(|h| PollFd::new(h.pidfd.as_fd(), PollFlags::POLLIN)),
            );
            // Idle, it retries its exit every 50 ms (the start lock may be
            // held by a run about to connect).
            let timeout = match idle {
                true => PollTimeout::from(50u16),
                false => PollTimeout::NONE,
            };
            match poll(&mut polled, timeout) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => other.context("waiting for the keeper's connections")?,
            };
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let accept = ready(&polled[0]);
            let talking: Vec<u64> = polled[1..]
                .iter()
                .zip(&self.clients)
                .filter(|(fd, _)| ready(fd))
                .map(|(_, client)| client.id)
                .collect();
            let ended: Vec<u64> = polled[1 + self.clients.len()..]
                .iter()
                .zip(&self.held)
                .filter(|(fd, _)| ready(fd))
                .map(|(_, held)| held.client)
                .collect();
            drop(polled);
            for client in ended {
                self.held.retain(|h| h.client != client);
                self.detach(client);
            }
            if accept {
                if let Ok(socket) = accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                    self.next_client += 1;
                    self.clients.push(Client {
                        id: self.next_client,
                        // accept4 returned a descriptor no one else owns.
                        socket: crate::sys::adopt_received_fd(socket),
                    });
                }
            }
            for id in talking {
                self.answer(id);
            }
            reap_exited_children();
            if self.clients.is_empty() && self.held.is_empty() && self.may_exit(listener)? {
                return Ok(());
            }
        }
    }

    /// Reads one message of client `id` and answers it; a hang-up detaches
    /// whatever the client attached.
    fn answer(&mut self, id: u64) {
        let Some(position) = self.clients.iter().position(|c| c.id == id) else {
            return;
        };
        let received = protocol::receive::<Request>(self.clients[position].socket.as_fd());
        let (request, fds) = match received {
            Ok(Some(message)) => message,
            Ok(None) | Err(_) => {
                self.clients.remove(position);
                self.detach(id);
                return;
            }
        };
        let mut passed = vec![];
        let reply = match request {
            Request::Attach(request) => match self.attach(id, *request) {
                Ok(endpoint) => {
                    passed.push(self.userns.as_raw_fd());
                    Reply::Attached(endpoint)
                }
                Err(err) => Reply::Error(format!("{err:#}")),
            },
            Request::Plug => match fds.into_iter().next() {
                None => Reply::Error("plugging needs the container's network namespace".into()),
                Some(netns) => match self.plug(id, &netns) {
                    Ok(()) => Reply::Done,
                    Err(err) => Reply::Error(format!("{err:#}")),
                },
            },
            Request::Connect(request) => match <[OwnedFd; 2]>::try_from(fds) {
                Err(_) => Reply::Error(
                    "connecting needs the container's network namespace and PID 1".into(),
                ),
                Ok([netns, pidfd]) => match self.connect(*request, netns, pidfd) {
                    Ok(endpoint) => Reply::Attached(endpoint),
                    Err(err) => Reply::Error(format!("{err:#}")),
                },
            },
            Request::Disconnect {
                container_id,
                network_id,
            } => match self.disconnect(&container_id, &network_id) {
                Ok(()) => Reply::Done,
                Err(err) => Reply::Error(format!("{err:#}")),
            },
            Request::Status => Reply::Status(
                self.networks
                    .values()
                    .flat_map(|n| n.members.iter().map(|m| m.endpoint.clone()))
                    .collect(),
            ),
        };
        let socket = self.clients[position].socket.as_fd();
        if protocol::send(socket, &reply, &passed).is_err() {
            self.clients.remove(position);
            self.detach(id);
        }
    }

    /// Reserves an address for the container on its network, bringing the
    /// network up if it is not.
    fn attach(&mut self, client: u64, request: AttachRequest) -> Result<Endpoint> {
        let id = request.network.id.clone();
        if !self.networks.contains_key(&id) {
            let bridge = self.bring_up(&request.network)?;
            self.networks.insert(id.clone(), bridge);
        }
        // The container's lowest free ethN, whoever attached the others.
        let taken: Vec<&str> = self
            .networks
            .values()
            .flat_map(|n| &n.members)
            .filter(|m| m.endpoint.container_id == request.container_id)
            .map(|m| m.endpoint.interface.as_str())
            .collect();
        let interface = (0..)
            .map(|n| format!("eth{n}"))
            .find(|name| !taken.contains(&name.as_str()))
            .expect("a free name");
        let bridge = self.networks.get_mut(&id).expect("brought up");
        self.attachments += 1;
        let result = reserve(bridge, (client, self.attachments), &request, interface);
        if result.is_err() {
            self.take_down_if_unused(&id);
        }
        result
    }

    fn bring_up(&mut self, record: &NetworkRecord) -> Result<Bridge> {
        let name = record.bridge_name();
        // Left by `take_down_if_unused` when the keeper seemed done.
        if self.netlink.add_bridge(&name, MTU).is_err() {
            self.netlink.delete_link(&name)?;
            self.netlink.add_bridge(&name, MTU)?;
        }
        let index = self.netlink.link_index(&name)?;
        let slirp = match record.internal {
            true => None,
            false => match self.way_out(record, index) {
                Ok(slirp) => Some(slirp),
                Err(err) => {
                    let _ = self.netlink.delete_link(&name);
                    return Err(
                        err.context(format!("giving the network {} its way out", record.name))
                    );
                }
            },
        };
        Ok(Bridge {
            record: record.clone(),
            index,
            slirp,
            members: vec![],
        })
    }

    /// slirp4netns for the network, its tap device on the bridge.
    fn way_out(&mut self, record: &NetworkRecord, bridge: i32) -> Result<Slirp> {
        let work = self.dir.join(&record.id[..12]);
        // What a killed keeper left (slirp4netns's socket would be in the
        // way of the new one's).
        let _ = crate::util::fs::remove_tree(&work);
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let tap = format!("tp-{}", &record.id[..12]);
        let options = SlirpOptions {
            allow_host_loopback: false,
            mtu: MTU,
            enable_ipv6: false,
            cidr: record.subnet,
        };
        let target = Target::Bridge {
            netns: self.netns.as_fd(),
            tap: &tap,
        };
        let slirp = Slirp::start(target, &options, &self.runtime, &work)?;
        let tap_index = self.netlink.link_index(&tap)?;
        self.netlink.set_master(tap_index, bridge)?;
        self.netlink.set_up(tap_index, Some(MTU))?;
        Ok(slirp)
    }

    /// Puts the client's reserved endpoints into the container's network
    /// namespace `netns`: a veth each, its address and route, its ports.
    fn plug(&mut self, client: u64, netns: &OwnedFd) -> Result<()> {
        // eth0 first: its routes are the ones later interfaces adjust.
        let mut waiting: Vec<(String, String)> = self
            .networks
            .iter()
            .flat_map(|(id, bridge)| {
                bridge
                    .members
                    .iter()
                    .filter(|m| m.client == client && !m.plugged)
                    .map(move |m| (m.endpoint.interface.clone(), id.clone()))
            })
            .collect();
        waiting.sort_by_key(|(interface, _)| interface[3..].parse::<u32>().unwrap_or(u32::MAX));
        for (_, id) in waiting {
            let bridge = self.networks.get_mut(&id).expect("listed");
            let name = bridge.record.name.clone();
            let member = bridge
                .members
                .iter_mut()
                .find(|m| m.client == client && !m.plugged)
                .expect("waiting");
            plug_member(
                &mut self.netlink,
                bridge.index,
                bridge.slirp.as_ref(),
                member,
                netns,
            )
            .with_context(|| format!("attaching the container to the network {name}"))?;
            rewrite_hosts(bridge);
        }
        Ok(())
    }

    /// `network connect`: attaches and plugs at once, for as long as the
    /// container's PID 1 lives.
    fn connect(
        &mut self,
        request: AttachRequest,
        netns: OwnedFd,
        pidfd: OwnedFd,
    ) -> Result<Endpoint> {
        self.next_client += 1;
        let client = self.next_client;
        let result = self
            .attach(client, request)
            .and_then(|endpoint| self.plug(client, &netns).map(|()| endpoint));
        match result {
            Ok(endpoint) => {
                self.held.push(Held { client, pidfd });
                Ok(endpoint)
            }
            Err(err) => {
                self.detach(client);
                let refused = err.chain().any(|cause| {
                    cause.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::EPERM)
                });
                match refused {
                    true => Err(err.context(
                        "only a container started on a user-defined network (--network NAME) \
                         can join another while it runs; start it with --network NAME, or connect \
                         it while it is stopped",
                    )),
                    false => Err(err),
                }
            }
        }
    }

    /// `network disconnect`: the container's endpoint on the network goes,
    /// whoever attached it.
    fn disconnect(&mut self, container_id: &str, network_id: &str) -> Result<()> {
        let bridge = self
            .networks
            .get_mut(network_id)
            .context("the container is not on that network")?;
        let position = bridge
            .members
            .iter()
            .position(|m| m.endpoint.container_id == container_id)
            .context("the container is not on that network")?;
        let mut member = bridge.members.remove(position);
        remove_member(&mut self.netlink, bridge, &member, true);
        // Kept from the network again, as before it joined.
        if let Some(inside) = member.inside.as_mut() {
            let subnet = bridge.record.subnet;
            let _ = inside.add_unreachable_route(subnet.address, subnet.prefix);
        }
        // Its own file loses the network's section.
        if let Ok(text) = std::fs::read_to_string(&member.hosts) {
            let _ = hosts::rewrite_in_place(
                &member.hosts,
                &hosts::with_peers(&text, &bridge.record.name, &[]),
            );
        }
        rewrite_hosts(bridge);
        let client = member.client;
        self.take_down_if_unused(network_id);
        let attached = self
            .networks
            .values()
            .any(|n| n.members.iter().any(|m| m.client == client));
        if !attached {
            self.held.retain(|h| h.client != client);
        }
        Ok(())
    }

    /// Undoes what client `id` attached: its ports, its veths, its names
    /// in its peers' hosts files, and networks nothing else uses.
    fn detach(&mut self, id: u64) {
        let ids: Vec<String> = self.networks.keys().cloned().collect();
        for network in ids {
            let bridge = self.networks.get_mut(&network).expect("listed");
            let (leaving, staying): (Vec<Member>, Vec<Member>) =
                std::mem::take(&mut bridge.members)
                    .into_iter()
                    .partition(|m| m.client == id);
            bridge.members = staying;
            if leaving.is_empty() {
                continue;
            }
            for member in &leaving {
                remove_member(&mut self.netlink, bridge, member, false);
            }
            rewrite_hosts(bridge);
            self.take_down_if_unused(&network);
        }
    }

    fn take_down_if_unused(&mut self, id: &str) {
        if self.networks.get(id).is_some_and(|n| n.members.is_empty()) {
            let bridge = self.networks.remove(id).expect("present");
            drop(bridge.slirp);
            // The last network of a keeper about to exit goes with its
            // idspace, in the background: removing it here would keep
            // the next run waiting while the kernel unregisters it.
            if !self.networks.is_empty() || !self.clients.is_empty() || !self.held.is_empty() {
                let _ = self.netlink.delete_link(&bridge.record.bridge_name());
            }
            let _ = crate::util::fs::remove_tree(&self.dir.join(&bridge.record.id[..12]));
        }
    }

    /// With no one connected: exits unless a run holds the start lock or
    /// is waiting to be accepted. The socket goes before the lock is let
    /// go, so a run that takes the lock next starts a new keeper.
    fn may_exit(&self, listener: &OwnedFd) -> Result<bool> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(START_LOCK)
            .context("opening the keeper's start lock")?;
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            return Ok(false);
        };
        let mut pending = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if poll(&mut pending, PollTimeout::ZERO).unwrap_or(1) > 0 {
            return Ok(false);
        }
        let _ = std::fs::remove_file(SOCKET);
        drop(lock);
        Ok(true)
    }
}

/// slirp4netns processes of networks taken down exit on their own (see
/// `network::slirp`); the keeper, their parent, reaps them as it goes.
fn reap_exited_children() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Picks the container's address: the lowest free one of the subnet.
fn reserve(
    bridge: &mut Bridge,
    (client, attachment): (u64, u64),
    request: &AttachRequest,
    interface: String,
) -> Result<Endpoint> {
    let record = &bridge.record;
    if bridge
        .members
        .iter()
        .any(|m| m.endpoint.container_id == request.container_id)
    {
        bail!("the container is already on the network {}", record.name);
    }
    let taken: Vec<u32> = bridge
        .members
        .iter()
        .map(|m| u32::from(m.endpoint.address) - u32::from(record.subnet.address))
        .collect();
    let offset = record
        .host_offsets()
        .find(|offset| !taken.contains(offset))
        .with_context(|| format!("the network {} has no address left", record.name))?;
    let address = record.subnet.host(offset);
    let octets = address.octets();
    let endpoint = Endpoint {
        network: record.name.clone(),
        network_id: record.id.clone(),
        container_id: request.container_id.clone(),
        names: request.names.clone(),
        interface,
        address,
        prefix: record.subnet.prefix,
        gateway: (!record.internal).then(|| record.gateway()),
        nameserver: (!record.internal).then(|| record.nameserver()),
        // docker's: 02:42 and the address.
        mac: format!(
            "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3]
        ),
    };
    bridge.members.push(Member {
        client,
        endpoint: endpoint.clone(),
        hosts: request.hosts.clone(),
        ports: request.ports.clone(),
        isolated: request.isolated.clone(),
        // The container's id and the attachment's number: a container
        // started again gets a new name while the kernel may still be
        // removing the old veth with the old namespace.
        veth: format!(
            "v{}{:05x}",
            &request.container_id[..8],
            attachment & 0xfffff
        ),
        plugged: false,
        forwards: vec![],
        inside: None,
    });
    Ok(endpoint)
}

fn plug_member(
    netlink: &mut Netlink,
    bridge: i32,
    slirp: Option<&Slirp>,
    member: &mut Member,
    netns: &OwnedFd,
) -> Result<()> {
    let endpoint = &member.endpoint;
    let mac = parse_mac(&endpoint.mac)?;
    netlink.add_veth(
        &LinkSpec {
            name: &member.veth,
            mtu: MTU,
            mac: None,
        },
        bridge,
        &LinkSpec {
            name: &endpoint.interface,
            mtu: MTU,
            mac: Some(mac),
        },
        netns.as_fd(),
    )?;
    member.plugged = true;
    let near = netlink.link_index(&member.veth)?;
    netlink.set_up(near, None)?;
    let inside = member.inside.insert(Netlink::open_in(netns.as_fd())?);
    let index = inside.link_index(&endpoint.interface)?;
    inside.set_up(index, None)?;
    // A container on a network already is kept from this one by a route
    // (see `isolated`), which goes now.
    let subnet = Ipv4Network::containing(endpoint.address, endpoint.prefix);
    inside.delete_unreachable_route(subnet.address, subnet.prefix)?;
    inside.add_address(index, endpoint.address, endpoint.prefix)?;
    // The first network is the way out; those connected later only reach
    // their own subnet.
    if endpoint.interface == FIRST_INTERFACE {
        if let Some(gateway) = endpoint.gateway {
            inside.add_default_route(gateway)?;
        }
        for other in &member.isolated {
            inside.add_unreachable_route(other.address, other.prefix)?;
        }
    }
    for port in &member.ports {
        let slirp = slirp.with_context(|| {
            format!(
                "cannot publish {port}: the network {} is internal",
                endpoint.network
            )
        })?;
        member
            .forwards
            .push(slirp.publish(port, Some(endpoint.address))?);
    }
    Ok(())
}

/// The interface of the network a container was made on.
const FIRST_INTERFACE: &str = "eth0";

fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{text} is not a MAC address"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{text} is not a MAC address"))
}

/// Undoes what was made for `member`, which has left `bridge`: its
/// published ports and, while its container lives on (`disconnect`), its
/// veth. A container that ended takes its veth along: the kernel removes
/// both ends with its network namespace, in the background, whereas a
/// removal here would hold the keeper (and the next run) for the 10-20 ms
/// the kernel takes to unregister a device.
fn remove_member(netlink: &mut Netlink, bridge: &Bridge, member: &Member, lives_on: bool) {
    if let Some(slirp) = &bridge.slirp {
        for forward in &member.forwards {
            let _ = slirp.unpublish(*forward);
        }
    }
    if member.plugged && lives_on {
        let _ = netlink.delete_link(&member.veth);
    }
}

/// Gives every plugged container of the network the others' names. A
/// container whose file is gone has ended; its hang-up comes next.
fn rewrite_hosts(bridge: &Bridge) {
    let plugged: Vec<&Member> = bridge.members.iter().filter(|m| m.plugged).collect();
    for member in &plugged {
        let Ok(text) = std::fs::read_to_string(&member.hosts) else {
            continue;
        };
        let peers: Vec<_> = plugged
            .iter()
            .filter(|peer| peer.endpoint.container_id != member.endpoint.container_id)
            .map(|peer| (peer.endpoint.address, peer.endpoint.names.as_slice()))
            .collect();
        let content = hosts::with_peers(&text, &bridge.record.name, &peers);
        if content != text {
            let _ = hosts::rewrite_in_place(&member.hosts, &content);
        }
    }
}

/// How long a run waits for a keeper to start, or to answer.
pub const DEADLINE: Duration = Duration::from_secs(20);
