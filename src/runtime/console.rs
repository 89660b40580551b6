//! The monitor's end of `-t`: the pty master from the container, the
//! caller's terminal in raw mode (so Ctrl-C, Ctrl-Z and friends travel as
//! bytes to the container's terminal, whose line discipline turns them into
//! signals there), and the window size kept in sync.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::isatty;

use crate::sys;

pub struct Console {
    master: OwnedFd,
    raw: Option<RawMode>,
}

/// The caller's terminal settings, restored on drop.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts the caller's terminal (stdin) in raw mode until the value is
    /// dropped; None when stdin is not a terminal.
    pub fn enter() -> Result<Option<RawMode>> {
        let stdin = std::io::stdin();
        if !isatty(stdin.as_fd()).unwrap_or(false) {
            return Ok(None);
        }
        let saved = tcgetattr(stdin.as_fd()).context("reading the terminal settings")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).context("setting raw mode")?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// The window size of the caller's terminal, if stdin or stdout is one.
pub fn caller_window_size() -> Option<sys::WindowSize> {
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let size = [stdin.as_fd(), stdout.as_fd()]
        .into_iter()
        .filter(|fd| isatty(fd).unwrap_or(false))
        .find_map(|fd| sys::window_size(fd).ok());
    size
}

impl Console {
    pub fn new(master: OwnedFd) -> Console {
        let console = Console { master, raw: None };
        console.sync_window_size();
        console
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// Copies the caller's window size to the container's terminal (at start
    /// and on every SIGWINCH). Without a caller terminal there is none.
    pub fn sync_window_size(&self) {
        if let Some(size) = caller_window_size() {
            let _ = sys::set_window_size(self.master.as_fd(), &size);
        }
    }

    /// Puts the caller's terminal (stdin) in raw mode until the console is
    /// dropped. Nothing to do when stdin is not a terminal.
    pub fn enter_raw_mode(&mut self) -> Result<()> {
        self.raw = RawMode::enter()?;
        Ok(())
    }

    /// Moves what the container wrote to our stdout. Returns false once the
    /// container's side of the terminal is closed.
    pub fn copy_output(&self) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        match nix::unistd::read(self.master.as_fd(), &mut buffer) {
            Ok(0) | Err(Errno::EIO) => false,
            Ok(n) => {
                let mut out = std::io::stdout().lock();
                // A closed stdout must not stop the container: drop output.
                let _ = out.write_all(&buffer[..n]).and_then(|_| out.flush());
                true
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => true,
            Err(_) => false,
        }
    }

    /// Moves caller input to the container. Returns false at end of input.
    pub fn copy_input(&self) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        match nix::unistd::read(std::io::stdin().as_fd(), &mut buffer) {
            Ok(0) => false,
            Ok(n) => write_all(self.master.as_fd(), &buffer[..n]).is_ok(),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => true,
            Err(_) => false,
        }
    }

    /// After the container's PID 1 is gone, output may still sit in the
    /// pty: read until the terminal reports it is closed.
    pub fn drain(&self) {
        let _ = nix::fcntl::fcntl(
            self.master.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let mut buffer = [0u8; 16 * 1024];
        let mut out = std::io::stdout().lock();
        while let Ok(n @ 1..) = nix::unistd::read(self.master.as_fd(), &mut buffer) {
            let _ = out.write_all(&buffer[..n]);
        }
        let _ = out.flush();
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
