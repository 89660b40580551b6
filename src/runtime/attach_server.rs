//! The attach socket of a detached container's monitor (`attach.sock` in
//! its live dir). Every client that connects is told what the container
//! has (a terminal, an open stdin), then gets the container's output from
//! then on, framed by stream, and its exit status at the end; what clients
//! type goes to the container's stdin or terminal, and their window size
//! to its terminal. The log is written as before, attached or not.
//!
//! A frame is one byte of kind, four of length (big-endian), then the data.
//! From the monitor: 1 stdout, 2 stderr, 3 the exit status (four
//! big-endian bytes), 4 hello (one byte of `Offer` bits, sent first).
//! From a client: 5 input, 6 a window size (rows and columns, two
//! big-endian bytes each).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sys::socket::{recv, MsgFlags};

use crate::container::logfile::Stream;

/// The socket's name in the live dir.
pub const ATTACH_SOCKET: &str = "attach.sock";

pub const FRAME_STDOUT: u8 = 1;
pub const FRAME_STDERR: u8 = 2;
pub const FRAME_EXIT: u8 = 3;
pub const FRAME_HELLO: u8 = 4;
pub const FRAME_INPUT: u8 = 5;
pub const FRAME_RESIZE: u8 = 6;

/// The largest frame either side sends or takes: an output chunk is at
/// most 64 KiB, input is sent as it is read.
pub const MAX_FRAME: usize = 1 << 20;

/// What a container offers its attach clients, as the hello frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer {
    /// It runs on a terminal (`-t`): output is one stream, and the
    /// client's window size matters.
    pub terminal: bool,
    /// Its stdin is open (`-i`): clients' input reaches it.
    pub stdin: bool,
}

impl Offer {
    fn to_byte(self) -> u8 {
        u8::from(self.terminal) | u8::from(self.stdin) << 1
    }

    pub fn from_byte(byte: u8) -> Offer {
        Offer {
            terminal: byte & 1 != 0,
            stdin: byte & 2 != 0,
        }
    }
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum FromClient {
    Input(Vec<u8>),
    /// Rows and columns.
    Resize(u16, u16),
}

struct Client {
    stream: UnixStream,
    /// Bytes of a frame not yet whole.
    inbox: Vec<u8>,
    /// The client may still send: false after its end of file.
    sending: bool,
}

pub struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    offer: Offer,
    clients: Vec<Client>,
}

/// Runs `socket_call` with a short path to the attach socket in `dir`:
/// `/proc/self/fd/N/attach.sock`, where N holds `dir` open. A socket's path
/// must fit in 108 bytes, which a live dir under /run/user/UID/rocker/
/// containers/ID/ does not leave room for.
pub fn in_dir<T>(
    dir: &Path,
    socket_call: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let dir = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{ATTACH_SOCKET}", dir.as_raw_fd()));
    socket_call(&short)
}

/// One frame, as the other side reads it.
pub fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5 + data.len());
    bytes.push(kind);
    bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The first whole frame in `bytes`, taken out of it; None until one is
/// whole. A frame longer than `MAX_FRAME` is an error: the peer is not
/// speaking this protocol.
pub fn take_frame(bytes: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>> {
    if bytes.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes(bytes[1..5].try_into().expect("four bytes")) as usize;
    if len > MAX_FRAME {
        anyhow::bail!("a frame of {len} bytes on the attach socket: more than any peer sends");
    }
    if bytes.len() < 5 + len {
        return Ok(None);
    }
    let kind = bytes[0];
    let data = bytes[5..5 + len].to_vec();
    bytes.drain(..5 + len);
    Ok(Some((kind, data)))
}

/// Whether the peer of `stream` has closed both ways.
fn hung_up(stream: &UnixStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

impl AttachServer {
    /// Listens in the live dir `live_dir` (private to the user: 0700).
    pub fn bind(live_dir: &Path, offer: Offer) -> Result<AttachServer> {
        let path = live_dir.join(ATTACH_SOCKET);
        let listener = in_dir(live_dir, |short| UnixListener::bind(short))
            .with_context(|| format!("listening on {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("making the attach socket non-blocking")?;
        Ok(AttachServer {
            listener,
            path,
            offer,
            clients: vec![],
        })
    }

    /// What the supervisor polls for new clients.
    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// What the supervisor polls for clients' input.
    pub fn sending_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.clients
            .iter()
            .filter(|client| client.sending)
            .map(|client| client.stream.as_fd())
    }

    /// Takes in the clients that are waiting, and greets them.
    pub fn accept_waiting(&mut self) {
        let hello = frame(FRAME_HELLO, &[self.offer.to_byte()]);
        while let Ok((mut stream, _)) = self.listener.accept() {
            // Writes to a client block (they are short frames), but a
            // client that stops reading for 5 s is dropped, not waited on.
            // Reads never block: they are done with MSG_DONTWAIT.
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(5)));
            if stream.write_all(&hello).is_ok() {
                self.clients.push(Client {
                    stream,
                    inbox: vec![],
                    sending: true,
                });
            }
        }
    }

    /// What the clients sent since the last call, in order of arrival per
    /// client. A client that sends what is not a frame is dropped.
    pub fn read_clients(&mut self) -> Vec<FromClient> {
        let mut received = vec![];
        let mut buffer = [0u8; 16 * 1024];
        self.clients.retain_mut(|client| {
            while client.sending {
                match recv(
                    client.stream.as_raw_fd(),
                    &mut buffer,
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    // A client gone whole (not one that only stopped
                    // sending) goes now, not at the next output.
                    Ok(0) if hung_up(&client.stream) => return false,
                    Ok(0) => client.sending = false,
                    Ok(n) => client.inbox.extend_from_slice(&buffer[..n]),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(_) => return false,
                }
            }
            loop {
                match take_frame(&mut client.inbox) {
                    Ok(Some((FRAME_INPUT, data))) => received.push(FromClient::Input(data)),
                    Ok(Some((FRAME_RESIZE, data))) if data.len() == 4 => {
                        let rows = u16::from_be_bytes([data[0], data[1]]);
                        let columns = u16::from_be_bytes([data[2], data[3]]);
                        received.push(FromClient::Resize(rows, columns));
                    }
                    Ok(None) => return true,
                    Ok(Some(_)) | Err(_) => return false,
                }
            }
        });
        received
    }

    /// Sends the container's output to every client; a client gone (or
    /// stuck) is dropped.
    pub fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        let kind = match stream {
            Stream::Stdout => FRAME_STDOUT,
            Stream::Stderr => FRAME_STDERR,
        };
        let bytes = frame(kind, data);
        self.clients
            .retain_mut(|client| client.stream.write_all(&bytes).is_ok());
    }

    /// The container ended with `code`: each client hears it, and goes.
    pub fn finish(&mut self, code: i32) {
        self.accept_waiting();
        let bytes = frame(FRAME_EXIT, &code.to_be_bytes());
        for mut client in self.clients.drain(..) {
            let _ = client.stream.write_all(&bytes);
        }
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;
    use std::io::Read;

    fn connect(dir: &Path) -> UnixStream {
        in_dir(&dir.join("."), |path| UnixStream::connect(path)).unwrap()
    }

    #[test]
    fn clients_are_greeted_then_get_the_output_from_when_they_came_and_the_status() {
        let dir = ScratchDir::new("attach-server");
        let offer = Offer {
            terminal: false,
            stdin: true,
        };
        let mut server = AttachServer::bind(&dir.join("."), offer).unwrap();
        server.broadcast(Stream::Stdout, b"before anyone came\n");
        let mut client = connect(&dir);
        server.accept_waiting();
        server.broadcast(Stream::Stderr, b"oops\n");
        server.finish(7);
        let mut bytes = vec![];
        client.read_to_end(&mut bytes).unwrap();
        let mut expected = frame(FRAME_HELLO, &[2]);
        expected.extend(frame(FRAME_STDERR, b"oops\n"));
        expected.extend(frame(FRAME_EXIT, &7i32.to_be_bytes()));
        assert_eq!(bytes, expected);
        assert_eq!(Offer::from_byte(2), offer);
    }

    #[test]
    fn input_and_window_sizes_arrive_whole_however_they_are_split() {
        let dir = ScratchDir::new("attach-server-input");
        let mut server = AttachServer::bind(&dir.join("."), Offer::default()).unwrap();
        let mut client = connect(&dir);
        server.accept_waiting();
        let mut sent = frame(FRAME_INPUT, b"ls\r");
        sent.extend(frame(FRAME_RESIZE, &[0, 40, 0, 100]));
        client.write_all(&sent[..3]).unwrap();
        assert_eq!(server.read_clients(), vec![]);
        client.write_all(&sent[3..]).unwrap();
        assert_eq!(
            server.read_clients(),
            vec![
                FromClient::Input(b"ls\r".to_vec()),
                FromClient::Resize(40, 100)
            ]
        );
        // A client that closes its sending side still gets output.
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(server.read_clients(), vec![]);
        assert_eq!(server.sending_fds().count(), 0);
        server.broadcast(Stream::Stdout, b"still here");
        server.finish(0);
        let mut bytes = vec![];
        client.read_to_end(&mut bytes).unwrap();
        assert!(bytes.ends_with(&frame(FRAME_EXIT, &0i32.to_be_bytes())));
    }

    #[test]
    fn a_client_that_goes_is_dropped_at_once() {
        let dir = ScratchDir::new("attach-server-gone");
        let mut server = AttachServer::bind(&dir.join("."), Offer::default()).unwrap();
        let client = connect(&dir);
        server.accept_waiting();
        drop(client);
        server.read_clients();
        assert_eq!(server.clients.len(), 0);
    }

    #[test]
    fn a_client_speaking_nonsense_is_dropped() {
        let dir = ScratchDir::new("attach-server-nonsense");
        let mut server = AttachServer::bind(&dir.join("."), Offer::default()).unwrap();
        let mut client = connect(&dir);
        server.accept_waiting();
        client
            .write_all(&frame(FRAME_STDOUT, b"not for you"))
            .unwrap();
        server.read_clients();
        assert_eq!(server.clients.len(), 0);
    }
}
