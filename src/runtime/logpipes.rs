//! The pipes that carry a detached container's stdout and stderr to its
//! log file.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;

use crate::container::logfile::{LogWriter, Stream};
use crate::util::wait;

/// The pipes that carry a detached container's stdout and stderr to its
/// log. The container holds the only write ends, so they read end of file
/// once every process of the container is gone.
pub struct LogPipes {
    writer: LogWriter,
    /// stdout, stderr: (read end, write end until the clone).
    pipes: Vec<(Stream, Option<OwnedFd>, Option<OwnedFd>)>,
}

impl LogPipes {
    pub fn new(writer: LogWriter) -> Result<LogPipes> {
        let mut pipes = vec![];
        for stream in [Stream::Stdout, Stream::Stderr] {
            let (read, write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .context("creating a pipe for the log")?;
            // Only our end is non-blocking: the container's writes block
            // as they would on a terminal.
            nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
                .context("setting up the log pipe")?;
            pipes.push((stream, Some(read), Some(write)));
        }
        Ok(LogPipes { writer, pipes })
    }

    /// In the container's process: the write ends become fds 1 and 2.
    pub fn become_stdio(&mut self) -> Result<()> {
        for (stream, _, write) in &mut self.pipes {
            let write = write.take().context("the log pipe is gone")?;
            match stream {
                Stream::Stdout => nix::unistd::dup2_stdout(&write),
                Stream::Stderr => nix::unistd::dup2_stderr(&write),
            }
            .context("connecting the log pipe")?;
        }
        Ok(())
    }

    pub fn close_write_ends(&mut self) {
        for pipe in &mut self.pipes {
            pipe.2 = None;
        }
    }

    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.pipes
            .iter()
            .filter_map(|(_, read, _)| read.as_ref())
            .map(|read| PollFd::new(read.as_fd(), PollFlags::POLLIN))
            .collect()
    }

    /// Logs whatever the pipes hold now; closes a pipe at end of file.
    pub fn copy_ready(&mut self) -> Result<()> {
        let mut buffer = [0u8; 65536];
        for (stream, read, _) in &mut self.pipes {
            while let Some(fd) = read.as_ref() {
                match nix::unistd::read(fd, &mut buffer) {
                    Ok(0) => *read = None,
                    Ok(n) => self.writer.write(*stream, &buffer[..n]),
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(err) => return Err(err).context("reading the container's output"),
                }
            }
        }
        Ok(())
    }

    /// After the container's PID 1 has exited: the kernel is ending the
    /// rest of its processes; log what they wrote until the pipes close.
    pub fn drain(&mut self) {
        wait::until(Duration::from_secs(2), Duration::ZERO, || {
            let all_closed = self.pipes.iter().all(|(_, read, _)| read.is_none());
            if all_closed || self.copy_ready().is_err() {
                return Some(());
            }
            let mut fds = self.poll_fds();
            let _ = poll(&mut fds, PollTimeout::from(100u8));
            None
        });
        self.writer.finish();
    }
}
