//! rocker's own port forwarder, for what slirp4netns cannot publish: a host
//! address of IPv6 (`-p [::1]:8080:80`; slirp4netns 1.2 takes IPv4 host
//! addresses only). The idea is rootlesskit's "builtin" driver: the monitor
//! binds the host side itself, in the host's network namespace, and hands
//! the listening sockets to a forwarder process (`rocker port-forwarder`,
//! a hidden verb) that enters the container's user and network namespaces;
//! each connection it accepts on the host it relays to a connection it
//! opens inside, to the container's address. The container sees the
//! connection come from its own address, as it sees slirp4netns's come from
//! the gateway: the client's address is not kept either way.
//!
//! The forwarder never outlives the container: it exits when its exit fd
//! (whose other end only the monitor holds) closes, and has a parent-death
//! signal. TCP only.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::unistd::pipe2;

use super::ports::{PortMapping, Protocol};

/// The hidden verb that runs the forwarder.
pub const VERB: &str = "port-forwarder";
const LOG_FILE: &str = "port-forwarder.log";

/// Whether `port` needs rocker's forwarder rather than slirp4netns's.
pub fn needs_forwarder(port: &PortMapping) -> bool {
    port.host_ip.is_ipv6()
}

/// A running forwarder; dropping it ends it.
pub struct Forwarder {
    child: Child,
    exit: Option<OwnedFd>,
}

impl Forwarder {
    /// Binds each of `ports` on the host now (so a port in use fails the
    /// run before its command starts), then starts the forwarder in the
    /// namespaces of the container whose PID 1 is `pid`, relaying to
    /// `target` there. Its log goes into `live_dir`.
    pub fn start(
        ports: &[PortMapping],
        target: IpAddr,
        pid: nix::unistd::Pid,
        live_dir: &Path,
    ) -> Result<Forwarder> {
        let mut listeners = vec![];
        for port in ports {
            if port.protocol != Protocol::Tcp {
                bail!("cannot publish {port}: an IPv6 host address takes TCP ports only here");
            }
            let listener = TcpListener::bind((port.host_ip, port.host_port))
                .map_err(|err| match err.kind() {
                    std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                        "host port {}/tcp on {} is already in use",
                        port.host_port,
                        port.host_ip
                    ),
                    _ => anyhow::Error::from(err),
                })
                .with_context(|| format!("cannot publish {port}"))?;
            listeners.push((listener, port.container_port));
        }
        let open = |kind: &str| crate::host::proc_ns::open(pid.as_raw(), kind);
        let (userns, netns) = (open("user")?, open("net")?);
        let (exit_read, exit_write) =
            pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        let log_path = live_dir.join(LOG_FILE);
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new("/proc/self/exe");
        command
            .arg(VERB)
            .arg(exit_read.as_raw_fd().to_string())
            .arg(userns.as_raw_fd().to_string())
            .arg(netns.as_raw_fd().to_string());
        let mut inherited = vec![exit_read.as_raw_fd(), userns.as_raw_fd(), netns.as_raw_fd()];
        for (listener, container_port) in &listeners {
            let to = SocketAddr::new(target, *container_port);
            command.arg(format!("{}={to}", listener.as_raw_fd()));
            inherited.push(listener.as_raw_fd());
        }
        command
            .current_dir(live_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        crate::sys::inherit_fds_on_spawn(&mut command, inherited, None);
        let child = command
            .spawn()
            .context("starting rocker's port forwarder")?;
        Ok(Forwarder {
            child,
            exit: Some(exit_write),
        })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        drop(self.exit.take());
        let _ = self.child.wait();
    }
}

/// The forwarder itself (the hidden verb): `EXIT-FD USERNS-FD NETNS-FD
/// LISTENER-FD=ADDRESS:PORT...`, as `Forwarder::start` passes them.
pub fn serve(args: &[String]) -> Result<()> {
    let [exit, userns, netns, forwards @ ..] = args else {
        bail!("usage: rocker {VERB} EXIT-FD USERNS-FD NETNS-FD LISTENER-FD=ADDRESS:PORT...");
    };
    let take = |text: &str| -> Result<OwnedFd> {
        let fd: RawFd = text
            .parse()
            .with_context(|| format!("{text:?} is not a descriptor"))?;
        Ok(crate::sys::adopt_received_fd(fd))
    };
    let exit = take(exit)?;
    let (userns, netns) = (take(userns)?, take(netns)?);
    let mut listeners = vec![];
    for forward in forwards {
        let (fd, to) = forward
            .split_once('=')
            .with_context(|| format!("{forward:?} is not LISTENER-FD=ADDRESS:PORT"))?;
        let to: SocketAddr = to
            .parse()
            .with_context(|| format!("{to:?} is no address"))?;
        listeners.push((TcpListener::from(take(fd)?), to));
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("setting the parent-death signal")?;
    // From here on every socket this process makes is the container's.
    nix::sched::setns(&userns, CloneFlags::CLONE_NEWUSER)
        .context("joining the container's user namespace")?;
    nix::sched::setns(&netns, CloneFlags::CLONE_NEWNET)
        .context("joining the container's network namespace")?;
    drop((userns, netns));
    loop {
        let mut polled = vec![PollFd::new(exit.as_fd(), PollFlags::POLLIN)];
        polled.extend(
            listeners
                .iter()
                .map(|(l, _)| PollFd::new(l.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut polled, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context("waiting for connections")?,
        };
        let ready: Vec<bool> = polled
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            // The monitor closed the exit fd: the container has ended.
            return Ok(());
        }
        for ((listener, to), _) in listeners.iter().zip(&ready[1..]).filter(|(_, r)| **r) {
            if let Ok((client, _)) = listener.accept() {
                relay(client, *to);
            }
        }
    }
}

/// Connects to `to` inside the container and copies both ways, a thread
/// each, until both sides have finished.
fn relay(client: TcpStream, to: SocketAddr) {
    let Ok(inside) = TcpStream::connect(to) else {
        // Nothing listens there (yet): the client sees its connection
        // closed, as it would see it refused.
        return;
    };
    let _ = inside.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let pairs = [
        (client.try_clone(), inside.try_clone()),
        (inside.try_clone(), client.try_clone()),
    ];
    for pair in pairs {
        if let (Ok(from), Ok(to)) = pair {
            std::thread::spawn(move || copy_until_done(from, to));
        }
    }
}

fn copy_until_done(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    // The other side learns this one has finished.
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
