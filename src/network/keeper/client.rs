//! A monitor's (or a command's) side of the keeper: connecting, starting
//! one if none runs, and the requests of `protocol`.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{
    connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::sys::time::TimeVal;

use super::protocol::{self, AttachRequest, Endpoint, Reply, Request};
use super::{dir, DEADLINE, LOG_FILE, SOCKET, START_LOCK, VERB};
use crate::util::lock::FileLock;
use crate::util::wait;

/// A connection to the keeper; closing it detaches what it attached.
pub struct KeeperConnection {
    socket: OwnedFd,
}

impl KeeperConnection {
    /// Connects to the keeper of the runtime dir `runtime`, starting one if
    /// none runs.
    pub fn connect_or_start(runtime: &Path) -> Result<KeeperConnection> {
        let dir = dir(runtime);
        crate::host::dirs::ensure_private_dir(&dir)?;
        let _lock = FileLock::exclusive(&dir.join(START_LOCK))?;
        if let Some(connection) = KeeperConnection::open(&dir)? {
            return Ok(connection);
        }
        start_keeper(&dir)?;
        KeeperConnection::open(&dir)?.context("the network keeper started but takes no connection")
    }

    /// Connects to the keeper if one runs.
    pub fn if_running(runtime: &Path) -> Result<Option<KeeperConnection>> {
        let dir = dir(runtime);
        if !dir.join(SOCKET).exists() {
            return Ok(None);
        }
        let _lock = FileLock::exclusive(&dir.join(START_LOCK))?;
        KeeperConnection::open(&dir)
    }

    fn open(dir: &Path) -> Result<Option<KeeperConnection>> {
        let socket = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .context("making a socket")?;
        let handle = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", dir.display()))?;
        // Through the dir's descriptor the path stays within a unix
        // socket's 108 bytes however deep the runtime dir is.
        let path = format!("/proc/self/fd/{}/{SOCKET}", handle.as_raw_fd());
        match connect(socket.as_raw_fd(), &UnixAddr::new(path.as_str())?) {
            Ok(()) => {}
            // None there, or one that died: the caller starts another.
            Err(Errno::ENOENT | Errno::ECONNREFUSED) => {
                let _ = std::fs::remove_file(dir.join(SOCKET));
                return Ok(None);
            }
            Err(errno) => {
                return Err(errno).with_context(|| {
                    format!(
                        "connecting to the network keeper at {}",
                        dir.join(SOCKET).display()
                    )
                })
            }
        }
        let timeout = TimeVal::new(DEADLINE.as_secs() as i64, 0);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout).context("setting a timeout")?;
        Ok(Some(KeeperConnection { socket }))
    }

    fn ask(&self, request: &Request, fds: &[i32]) -> Result<(Reply, Vec<OwnedFd>)> {
        protocol::send(self.socket.as_fd(), request, fds)?;
        match protocol::receive::<Reply>(self.socket.as_fd()) {
            Ok(Some((Reply::Error(message), _))) => bail!("{message}"),
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => bail!("the network keeper hung up (its log: {})", LOG_FILE),
            Err(err) => Err(err.context("no answer from the network keeper")),
        }
    }

    /// Reserves the container's address on a network; returns it with the
    /// keeper's user namespace, in which the container must be made.
    pub fn attach(&self, request: AttachRequest) -> Result<(Endpoint, OwnedFd)> {
        let network = request.network.name.clone();
        match self.ask(&Request::Attach(Box::new(request)), &[])? {
            (Reply::Attached(endpoint), mut fds) if fds.len() == 1 => Ok((endpoint, fds.remove(0))),
            _ => bail!("the network keeper answered an attach to {network} strangely"),
        }
    }

    /// Plugs the reserved endpoints into the network namespace `netns`.
    pub fn plug(&self, netns: &OwnedFd) -> Result<()> {
        match self.ask(&Request::Plug, &[netns.as_raw_fd()])? {
            (Reply::Done, _) => Ok(()),
            _ => bail!("the network keeper answered a plug strangely"),
        }
    }

    /// Attaches the running container whose network namespace is `netns`
    /// and PID 1 `pidfd` (see `Request::Connect`).
    pub fn connect(
        &self,
        request: AttachRequest,
        netns: &OwnedFd,
        pidfd: &OwnedFd,
    ) -> Result<Endpoint> {
        let fds = [netns.as_raw_fd(), pidfd.as_raw_fd()];
        match self.ask(&Request::Connect(Box::new(request)), &fds)? {
            (Reply::Attached(endpoint), _) => Ok(endpoint),
            _ => bail!("the network keeper answered a connect strangely"),
        }
    }

    /// Takes the container off the network.
    pub fn disconnect(&self, container_id: &str, network_id: &str) -> Result<()> {
        let request = Request::Disconnect {
            container_id: container_id.to_string(),
            network_id: network_id.to_string(),
        };
        match self.ask(&request, &[])? {
            (Reply::Done, _) => Ok(()),
            _ => bail!("the network keeper answered a disconnect strangely"),
        }
    }

    /// Every container endpoint on every network that is up.
    pub fn status(&self) -> Result<Vec<Endpoint>> {
        match self.ask(&Request::Status, &[])? {
            (Reply::Status(endpoints), _) => Ok(endpoints),
            _ => bail!("the network keeper answered a status request strangely"),
        }
    }
}

/// Starts a keeper and waits for it to take connections. The caller holds
/// the start lock.
fn start_keeper(dir: &Path) -> Result<()> {
    let log_path = dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg(VERB)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut child = command.spawn().context("starting the network keeper")?;
    let mut stdout = child.stdout.take().expect("piped");
    // The process started forks the keeper and exits at once.
    let status = child
        .wait()
        .context("waiting for the network keeper to start")?;
    if !status.success() {
        bail!(
            "the network keeper failed to start ({status}); see {}",
            log_path.display()
        );
    }
    let failed = || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let last = log.lines().last().unwrap_or("no reason given").to_string();
        anyhow::anyhow!(
            "the network keeper failed to start: {last} (its log: {})",
            log_path.display()
        )
    };
    if !wait::readable(stdout.as_fd(), DEADLINE).context("waiting for the network keeper")? {
        bail!(
            "the network keeper did not start within {} s",
            DEADLINE.as_secs()
        );
    }
    let mut ready = [0u8; 6];
    match stdout.read_exact(&mut ready) {
        Ok(()) if &ready == b"ready\n" => Ok(()),
        _ => Err(failed()),
    }
}
