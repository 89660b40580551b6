//! What a container's monitor and the keeper say to each other: one JSON
//! message per datagram of a unix SOCK_SEQPACKET connection (boundaries
//! kept, descriptors passed alongside, a hang-up seen as end of file).
//! The connection lasts as long as the container's attachment: its end,
//! however the monitor ends, detaches the container.

use std::io::{IoSlice, IoSliceMut};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::network::networks::NetworkRecord;
use crate::network::ports::PortMapping;
use crate::network::Ipv4Network;

/// The largest message either side sends.
const MAX_MESSAGE: usize = 256 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Reserve an address on a network (made if it is not up yet); the
    /// reply carries the keeper's user namespace, for the container's own
    /// to be made inside it.
    Attach(Box<AttachRequest>),
    /// Plug the reserved endpoints into the container's network namespace,
    /// which comes with the message.
    Plug,
    /// `network connect`: attach a running container made in the keeper's
    /// user namespace, whose network namespace and PID 1 (a pidfd) come
    /// with the message; the endpoint lasts as long as that process.
    Connect(Box<AttachRequest>),
    /// `network disconnect`: take a container off a network.
    Disconnect {
        container_id: String,
        network_id: String,
    },
    /// What is attached where.
    Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachRequest {
    pub container_id: String,
    /// The container's name and aliases: what its peers call it.
    pub names: Vec<String>,
    pub network: NetworkRecord,
    /// The container's /etc/hosts (in its live dir), which the keeper
    /// keeps listing its peers.
    pub hosts: PathBuf,
    pub ports: Vec<PortMapping>,
    /// The subnets of the store's other networks: unreachable from this
    /// one. (Its way out would otherwise take such a packet to the host,
    /// which routes it to the world, not to the other network.)
    pub isolated: Vec<Ipv4Network>,
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub network_id: String,
    pub container_id: String,
    pub names: Vec<String>,
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// None on an internal network.
    pub gateway: Option<Ipv4Addr>,
    pub nameserver: Option<Ipv4Addr>,
    pub mac: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Attached(Endpoint),
    Done,
    Status(Vec<Endpoint>),
    Error(String),
}

/// Sends `message` with `fds` beside it.
pub fn send<T: Serialize>(socket: BorrowedFd<'_>, message: &T, fds: &[RawFd]) -> Result<()> {
    let bytes = serde_json::to_vec(message)?;
    let control = [ControlMessage::ScmRights(fds)];
    let control: &[ControlMessage] = if fds.is_empty() { &[] } else { &control };
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        control,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .context("sending to the network keeper's connection")?;
    Ok(())
}

/// The next message and the descriptors that came with it; None at the
/// other side's hang-up.
pub fn receive<T: DeserializeOwned>(socket: BorrowedFd<'_>) -> Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let mut control = nix::cmsg_space!([RawFd; 4]);
    let (length, fds) = {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let message = recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("reading from the network keeper's connection")?;
        let mut fds = vec![];
        for cmsg in message.cmsgs().context("reading passed descriptors")? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                fds.extend(received.into_iter().map(crate::sys::adopt_received_fd));
            }
        }
        (message.bytes, fds)
    };
    if length == 0 {
        return Ok(None);
    }
    if length == MAX_MESSAGE {
        bail!("a message of {MAX_MESSAGE} bytes or more from the network keeper's connection");
    }
    let message = serde_json::from_slice(&buffer[..length]).with_context(|| {
        format!(
            "a message that is not rocker's: {:?}",
            String::from_utf8_lossy(&buffer[..length])
        )
    })?;
    Ok(Some((message, fds)))
}
