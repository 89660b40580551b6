//! The parent/child sync channel: a SOCK_SEQPACKET socketpair carrying one
//! typed message per packet (and, for the console, a descriptor).
//!
//! The handshake of `rocker run`, each side reading as a script:
//!
//! ```text
//! parent (monitor)                      child (becomes the container)
//! clone(NEWUSER|NEWNS|NEWPID|...)  -->  wait_for_mapping()
//! write setgroups, uid_map, gid_map
//! mapping_written()                -->  mount the rootfs, pivot_root, hostname
//! [fuse] wait_for_rootfs_wanted()  <--  rootfs_wanted() (mount point shared)
//! [fuse] start it, rootfs_mounted() -->  wait_for_rootfs_mounted()
//! [slirp] start it, publish ports,
//!         network_ready()          -->  wait_for_network()
//! [-t] wait_for_console()          <--  send_console(pty master)
//! [-t] set window size, console_sized() -->  wait_for_console_sized()
//!                                        caps, no_new_privs, execve
//! wait_for_exec(): EOF means exec  <--  (socket is close-on-exec)
//!                  Failed{..} means the child failed and why
//! ```
//!
//! Any error in the child before exec is sent as `Failed` with the exit
//! status rocker must end with, so the user sees one clear message.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::error::StatusError;
use crate::sys;

#[derive(Debug, Serialize, Deserialize)]
enum Message {
    MappingWritten,
    /// The pty master travels with this message.
    Console,
    ConsoleSized,
    /// The child has made its mount point for fuse-overlayfs shared.
    RootfsWanted,
    /// fuse-overlayfs has mounted the rootfs (and it has propagated).
    RootfsMounted,
    /// slirp4netns has configured the network and the ports are published.
    NetworkReady,
    Failed {
        status: i32,
        message: String,
    },
}

/// One end of the channel.
pub struct Channel {
    socket: OwnedFd,
}

const MAX_MESSAGE: usize = 64 * 1024;

impl Channel {
    /// A connected pair: (parent's end, child's end). Both are close-on-exec.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating the parent/child sync socket")?;
        Ok((Channel { socket: a }, Channel { socket: b }))
    }

    fn send(&self, message: &Message, fd: Option<BorrowedFd<'_>>) -> Result<()> {
        let bytes = serde_json::to_vec(message)?;
        let raw = fd.map(|fd| [fd.as_raw_fd()]);
        let rights: Vec<ControlMessage> =
            raw.iter().map(|r| ControlMessage::ScmRights(r)).collect();
        sendmsg::<()>(
            self.socket.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &rights,
            MsgFlags::empty(),
            None,
        )
        .with_context(|| format!("sending {message:?} to the other side"))?;
        Ok(())
    }

    /// The next message, or `None` when the other end is closed.
    fn receive(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        let mut control = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (length, fd) = {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let received = recvmsg::<()>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut control[..]),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .context("reading from the sync socket")?;
            let mut fd = None;
            for cmsg in received.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    for raw in fds {
                        // Adopt every descriptor so none leaks; keep the first.
                        let owned = sys::adopt_received_fd(raw);
                        fd.get_or_insert(owned);
                    }
                }
            }
            (received.bytes, fd)
        };
        if length == 0 {
            return Ok(None);
        }
        let message =
            serde_json::from_slice(&buffer[..length]).context("a malformed sync message")?;
        Ok(Some((message, fd)))
    }

    /// Waits for the message `want`; a `Failed` from the other side becomes
    /// the error to report, with its exit status.
    fn expect(&self, want: &str) -> Result<Option<OwnedFd>> {
        match self.receive()? {
            Some((Message::Failed { status, message }, _)) => {
                Err(StatusError::new(status, message).into())
            }
            Some((message, fd)) if variant_name(&message) == want => Ok(fd),
            Some((message, _)) => bail!("expected {want} on the sync socket, got {message:?}"),
            None => bail!("the other side exited before sending {want}"),
        }
    }

    // ---- the parent's steps ----

    pub fn mapping_written(&self) -> Result<()> {
        self.send(&Message::MappingWritten, None)
    }

    pub fn wait_for_console(&self) -> Result<OwnedFd> {
        self.expect("Console")?
            .context("the console message carried no descriptor")
    }

    pub fn console_sized(&self) -> Result<()> {
        self.send(&Message::ConsoleSized, None)
    }

    /// Returns once the container's command has been executed: the child's
    /// end is close-on-exec, so a successful exec reads as end of stream.
    pub fn wait_for_exec(&self) -> Result<()> {
        match self.receive()? {
            None => Ok(()),
            Some((Message::Failed { status, message }, _)) => {
                Err(StatusError::new(status, message).into())
            }
            Some((message, _)) => bail!("unexpected {message:?} while waiting for exec"),
        }
    }

    pub fn wait_for_rootfs_wanted(&self) -> Result<()> {
        self.expect("RootfsWanted").map(drop)
    }

    pub fn rootfs_mounted(&self) -> Result<()> {
        self.send(&Message::RootfsMounted, None)
    }

    /// Whether a message (or the end of the stream) is there within `limit`.
    pub fn has_news_within(&self, limit: std::time::Duration) -> bool {
        let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
    }

    /// Tells the child the network is up. Should the child have failed
    /// meanwhile, its own message is the error to report.
    pub fn network_ready(&self) -> Result<()> {
        match self.send(&Message::NetworkReady, None) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.wait_for_exec()?;
                Err(err)
            }
        }
    }

    // ---- the child's steps ----

    pub fn rootfs_wanted(&self) -> Result<()> {
        self.send(&Message::RootfsWanted, None)
    }

    pub fn wait_for_rootfs_mounted(&self) -> Result<()> {
        self.expect("RootfsMounted").map(drop)
    }

    pub fn wait_for_network(&self) -> Result<()> {
        self.expect("NetworkReady").map(drop)
    }

    pub fn wait_for_mapping(&self) -> Result<()> {
        self.expect("MappingWritten").map(drop)
    }

    pub fn send_console(&self, master: impl AsFd) -> Result<()> {
        self.send(&Message::Console, Some(master.as_fd()))
    }

    pub fn wait_for_console_sized(&self) -> Result<()> {
        self.expect("ConsoleSized").map(drop)
    }

    pub fn failed(&self, status: i32, message: String) -> Result<()> {
        self.send(&Message::Failed { status, message }, None)
    }
}

fn variant_name(message: &Message) -> &'static str {
    match message {
        Message::MappingWritten => "MappingWritten",
        Message::Console => "Console",
        Message::ConsoleSized => "ConsoleSized",
        Message::RootfsWanted => "RootfsWanted",
        Message::RootfsMounted => "RootfsMounted",
        Message::NetworkReady => "NetworkReady",
        Message::Failed { .. } => "Failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_and_failure_status() {
        let (parent, child) = Channel::pair().unwrap();
        parent.mapping_written().unwrap();
        child.wait_for_mapping().unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        child.send_console(&r).unwrap();
        let got = parent.wait_for_console().unwrap();
        assert_ne!(got.as_raw_fd(), r.as_raw_fd());
        child.failed(127, "not found".into()).unwrap();
        let err = parent.wait_for_exec().unwrap_err();
        assert_eq!(crate::error::exit_status_of(&err), 127);
        drop(child);
        parent.wait_for_exec().unwrap();
    }
}
