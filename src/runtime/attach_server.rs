//! The attach socket of a detached container's monitor (`attach.sock` in
//! its live dir): every client that connects gets the container's output
//! from then on, framed by stream, and its exit status at the end. The log
//! is written as before, attached or not.
//!
//! A frame is one byte of kind (1 stdout, 2 stderr, 3 the exit status),
//! four of length (big-endian), then the data (for the exit status, the
//! status as four big-endian bytes).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::container::logfile::Stream;

/// The socket's name in the live dir.
pub const ATTACH_SOCKET: &str = "attach.sock";

pub const FRAME_STDOUT: u8 = 1;
pub const FRAME_STDERR: u8 = 2;
pub const FRAME_EXIT: u8 = 3;

pub struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<UnixStream>,
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
    let short = PathBuf::from(format!(
        "/proc/self/fd/{}/{ATTACH_SOCKET}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ));
    socket_call(&short)
}

/// One frame, as the clients read it.
pub fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5 + data.len());
    bytes.push(kind);
    bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
    bytes.extend_from_slice(data);
    bytes
}

impl AttachServer {
    /// Listens in the live dir `live_dir` (private to the user: 0700).
    pub fn bind(live_dir: &Path) -> Result<AttachServer> {
        let path = live_dir.join(ATTACH_SOCKET);
        let listener = in_dir(live_dir, |short| UnixListener::bind(short))
            .with_context(|| format!("listening on {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("making the attach socket non-blocking")?;
        Ok(AttachServer {
            listener,
            path,
            clients: vec![],
        })
    }

    /// What the supervisor polls for new clients.
    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Takes in the clients that are waiting.
    pub fn accept_waiting(&mut self) {
        while let Ok((client, _)) = self.listener.accept() {
            // A client's writes are short (frames): blocking is fine, and a
            // client that stops reading for 5 s is dropped, not waited on.
            let _ = client.set_nonblocking(false);
            let _ = client.set_write_timeout(Some(std::time::Duration::from_secs(5)));
            self.clients.push(client);
        }
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
            .retain_mut(|client| client.write_all(&bytes).is_ok());
    }

    /// The container ended with `code`: each client hears it, and goes.
    pub fn finish(&mut self, code: i32) {
        self.accept_waiting();
        let bytes = frame(FRAME_EXIT, &code.to_be_bytes());
        for mut client in self.clients.drain(..) {
            let _ = client.write_all(&bytes);
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

    #[test]
    fn clients_get_the_output_from_when_they_came_and_the_status() {
        let dir = ScratchDir::new("attach-server");
        let mut server = AttachServer::bind(&dir.join(".")).unwrap();
        server.broadcast(Stream::Stdout, b"before anyone came\n");
        let mut client = in_dir(&dir.join("."), |path| UnixStream::connect(path)).unwrap();
        server.accept_waiting();
        server.broadcast(Stream::Stderr, b"oops\n");
        server.finish(7);
        let mut bytes = vec![];
        client.read_to_end(&mut bytes).unwrap();
        let mut expected = frame(FRAME_STDERR, b"oops\n");
        expected.extend(frame(FRAME_EXIT, &7i32.to_be_bytes()));
        assert_eq!(bytes, expected);
    }
}
