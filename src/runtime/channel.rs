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
//!         network_ready()          -->  [-t] wait_for_network()
//!   (no ports, no IPv6: not sent;        (then it waits for its default
//!    see network::starts_on_default_route)  route instead, the same way)
//! [-t] wait_for_console()          <--  send_console(pty master)
//! [-t] set window size, console_sized() -->  wait_for_console_sized()
//!                                        caps, no_new_privs
//!                                        [no -t] wait_for_network()
//!                                        execve
//! wait_for_exec(): EOF means exec  <--  (socket is close-on-exec)
//!                  Failed{..} means the child failed and why
//! ```
//!
//! Any error in the child before exec is sent as `Failed` with the exit
//! status rocker must end with, so the user sees one clear message.
//!
//! Each side holds its own typed end: the parent's (`ParentEnd`) sends only
//! `ToChild` messages and reads `ToParent` ones, the child's (`ChildEnd`)
//! the other way round, so neither can send what only the other may.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{
    recv, recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::StatusError;
use crate::sys;
use crate::util::wait;

/// What the parent tells the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ToChild {
    MappingWritten,
    ConsoleSized,
    /// fuse-overlayfs has mounted the rootfs (and it has propagated).
    RootfsMounted,
    /// slirp4netns has configured the network and the ports are published.
    NetworkReady,
}

/// What the child tells the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum ToParent {
    /// The pty master travels with this message.
    Console,
    /// The child has made its mount point for fuse-overlayfs shared.
    RootfsWanted,
    Failed {
        status: i32,
        message: String,
    },
}

const MAX_MESSAGE: usize = 64 * 1024;

/// A connected pair: (the parent's end, the child's end). Both are
/// close-on-exec.
pub fn pair() -> Result<(ParentEnd, ChildEnd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("creating the parent/child sync socket")?;
    Ok((ParentEnd(Socket(a)), ChildEnd(Socket(b))))
}

/// One end of the socket: a message per packet, JSON, with at most one
/// descriptor beside it.
struct Socket(OwnedFd);

impl Socket {
    fn send<M: Serialize + std::fmt::Debug>(
        &self,
        message: &M,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(message)?;
        if bytes.len() > MAX_MESSAGE {
            bail!(
                "a sync message of {} bytes is more than the {MAX_MESSAGE} the other side reads",
                bytes.len()
            );
        }
        let raw = fd.map(|fd| [fd.as_raw_fd()]);
        let rights: Vec<ControlMessage> =
            raw.iter().map(|r| ControlMessage::ScmRights(r)).collect();
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &rights,
            MsgFlags::empty(),
            None,
        )
        .with_context(|| format!("sending {message:?} to the other side"))?;
        Ok(())
    }

    /// The next message, or `None` when the other end is closed.
    fn receive<M: DeserializeOwned>(&self) -> Result<Option<(M, Option<OwnedFd>)>> {
        // However long the other side takes (a stuck mount), a Ctrl-C
        // while setup has its signals blocked ends the wait.
        loop {
            match crate::util::wait::readable(self.0.as_fd(), std::time::Duration::from_secs(3600))
            {
                Ok(true) => break,
                Ok(false) => continue,
                Err(nix::errno::Errno::EINTR) => bail!("interrupted while the other side was busy"),
                Err(err) => return Err(err).context("waiting on the sync socket"),
            }
        }
        let length = self.next_length()?;
        if length == 0 {
            return Ok(None);
        }
        if length > MAX_MESSAGE {
            bail!(
                "a sync message of {length} bytes is more than the {MAX_MESSAGE} this side reads"
            );
        }
        // Sized to the message: a buffer of MAX_MESSAGE, zeroed, cost both
        // sides sixteen page faults for messages of a few bytes.
        let mut buffer = vec![0u8; length];
        let mut control = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (length, fd) = {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let received = recvmsg::<()>(
                self.0.as_raw_fd(),
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
            if received.flags.contains(MsgFlags::MSG_TRUNC) {
                bail!("a sync message longer than the {length} bytes announced came in cut");
            }
            (received.bytes, fd)
        };
        let message =
            serde_json::from_slice(&buffer[..length]).context("a malformed sync message")?;
        Ok(Some((message, fd)))
    }

    /// The length of the next packet, without taking it (0 at the end of
    /// the stream: no side sends an empty packet). Peeking with no room
    /// for control data installs none of a packet's descriptors.
    fn next_length(&self) -> Result<usize> {
        let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
        // A side that closes its end with a message of ours still unread
        // (a child failing before it waited for NetworkReady) leaves
        // ECONNRESET pending here, and the kernel reports that before the
        // packets queued ahead of it: its `Failed`. Reading the error
        // clears it, so the next read returns that packet, or the end.
        match recv(self.0.as_raw_fd(), &mut [], peek) {
            Err(nix::errno::Errno::ECONNRESET) => recv(self.0.as_raw_fd(), &mut [], peek),
            other => other,
        }
        .context("reading from the sync socket")
    }
}

/// The parent's end: the monitor's, or `rocker exec`'s.
pub struct ParentEnd(Socket);

/// Readable when the child has news: a message, or its exec (the end).
impl AsFd for ParentEnd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0 .0.as_fd()
    }
}

impl ParentEnd {
    /// Waits for `want`; a `Failed` from the child becomes the error to
    /// report, with its exit status.
    fn expect(&self, want: ToParent) -> Result<Option<OwnedFd>> {
        match self.0.receive::<ToParent>()? {
            Some((ToParent::Failed { status, message }, _)) => {
                Err(StatusError::new(status, message).into())
            }
            Some((message, fd)) if message == want => Ok(fd),
            Some((message, _)) => bail!("expected {want:?} on the sync socket, got {message:?}"),
            None => bail!("the container's process exited before sending {want:?}"),
        }
    }

    pub fn mapping_written(&self) -> Result<()> {
        self.0.send(&ToChild::MappingWritten, None)
    }

    pub fn wait_for_console(&self) -> Result<OwnedFd> {
        self.expect(ToParent::Console)?
            .context("the console message carried no descriptor")
    }

    pub fn console_sized(&self) -> Result<()> {
        self.0.send(&ToChild::ConsoleSized, None)
    }

    /// Returns once the container's command has been executed: the child's
    /// end is close-on-exec, so a successful exec reads as end of stream.
    pub fn wait_for_exec(&self) -> Result<()> {
        match self.0.receive::<ToParent>()? {
            None => Ok(()),
            Some((ToParent::Failed { status, message }, _)) => {
                Err(StatusError::new(status, message).into())
            }
            Some((message, _)) => bail!("unexpected {message:?} while waiting for exec"),
        }
    }

    pub fn wait_for_rootfs_wanted(&self) -> Result<()> {
        self.expect(ToParent::RootfsWanted).map(drop)
    }

    pub fn rootfs_mounted(&self) -> Result<()> {
        self.0.send(&ToChild::RootfsMounted, None)
    }

    /// Whether a message (or the end of the stream) is there within `limit`.
    pub fn has_news_within(&self, limit: std::time::Duration) -> bool {
        wait::readable(self.0 .0.as_fd(), limit).unwrap_or(false)
    }

    /// Tells the child the network is up. Should the child have failed
    /// meanwhile, its own message is the error to report.
    pub fn network_ready(&self) -> Result<()> {
        match self.0.send(&ToChild::NetworkReady, None) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.wait_for_exec()?;
                Err(err)
            }
        }
    }
}

/// The child's end: the container's init, or the process `exec` forks.
pub struct ChildEnd(Socket);

impl ChildEnd {
    /// Waits for `want` from the parent.
    fn expect(&self, want: ToChild) -> Result<()> {
        match self.0.receive::<ToChild>()? {
            Some((message, _)) if message == want => Ok(()),
            Some((message, _)) => bail!("expected {want:?} on the sync socket, got {message:?}"),
            None => bail!("rocker's monitor exited before sending {want:?}"),
        }
    }

    pub fn rootfs_wanted(&self) -> Result<()> {
        self.0.send(&ToParent::RootfsWanted, None)
    }

    pub fn wait_for_rootfs_mounted(&self) -> Result<()> {
        self.expect(ToChild::RootfsMounted)
    }

    pub fn wait_for_network(&self) -> Result<()> {
        self.expect(ToChild::NetworkReady)
    }

    pub fn wait_for_mapping(&self) -> Result<()> {
        self.expect(ToChild::MappingWritten)
    }

    pub fn send_console(&self, master: impl AsFd) -> Result<()> {
        self.0.send(&ToParent::Console, Some(master.as_fd()))
    }

    pub fn wait_for_console_sized(&self) -> Result<()> {
        self.expect(ToChild::ConsoleSized)
    }

    pub fn failed(&self, status: i32, message: String) -> Result<()> {
        // One packet holds it: a longer message (a huge error) is cut,
        // where a character starts.
        let message = if message.len() > MAX_MESSAGE / 2 {
            let mut end = MAX_MESSAGE / 2;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            format!(
                "{}... (cut: the message was {} bytes)",
                &message[..end],
                message.len()
            )
        } else {
            message
        };
        self.0.send(&ToParent::Failed { status, message }, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_and_failure_status() {
        let (parent, child) = pair().unwrap();
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

    #[test]
    fn a_failure_is_read_even_when_the_child_left_a_message_unread() {
        // The race CI hit: the monitor's NetworkReady arrives after the
        // child failed, and the child exits without reading it.
        let (parent, child) = pair().unwrap();
        parent.network_ready().unwrap();
        child.failed(127, "not found".into()).unwrap();
        drop(child);
        let err = parent.wait_for_exec().unwrap_err();
        assert_eq!(crate::error::exit_status_of(&err), 127, "{err:#}");
        parent.wait_for_exec().unwrap();
    }

    #[test]
    fn a_failure_too_long_for_one_packet_comes_through_cut() {
        let (parent, child) = pair().unwrap();
        child.failed(126, "x".repeat(200_000)).unwrap();
        let err = parent.wait_for_exec().unwrap_err();
        assert_eq!(crate::error::exit_status_of(&err), 126);
        assert!(err.to_string().contains("(cut: the message was"), "{err}");
    }

    #[test]
    fn a_message_out_of_turn_is_named() {
        let (parent, child) = pair().unwrap();
        parent.console_sized().unwrap();
        let err = child.wait_for_mapping().unwrap_err().to_string();
        assert!(
            err.contains("expected MappingWritten") && err.contains("ConsoleSized"),
            "{err}"
        );
        drop(parent);
        let err = child.wait_for_network().unwrap_err().to_string();
        assert!(err.contains("monitor exited"), "{err}");
    }
}
