//! The pipes between a container and where its stdio really goes: a
//! detached container's stdout and stderr into its log, and, without
//! `-t`, the caller's terminal, which a container must never hold (with it
//! the container could change the caller's terminal settings and window
//! size, or push input into it). docker and podman never hand the
//! caller's tty to a container that did not ask for one with `-t`.
//!
//! The container holds the only write ends of its output pipes (and the
//! only read end of its input pipe), so the monitor reads end of file once
//! every process of the container is gone.
//!
//! A detached container's stdin (`-di`) is a pipe the monitor keeps
//! open, filled with what attach clients type; a detached `-t` container's
//! terminal is a pty whose master the monitor keeps, read as its stdout and
//! written with clients' input.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;

use crate::container::logfile::{LogWriter, Stream};
use crate::runtime::attach_server::{AttachServer, FromClient};
use crate::sys;
use crate::util::wait;

/// Clients' input the container has not read yet, at most: beyond it
/// the monitor stops reading clients until the container catches up.
const MAX_PENDING_INPUT: usize = 1 << 20;

/// A detached terminal's size until a client sends its own.
const DEFAULT_ROWS: u16 = 24;
const DEFAULT_COLUMNS: u16 = 80;

/// Where the container's output goes.
enum Sink {
    /// Its log (none with `--log-driver none`: attach clients only).
    Log(Option<LogWriter>),
    /// The caller's own stdout and stderr.
    Caller,
}

/// One output stream's pipe: our read end, and the container's write end
/// until the clone.
struct OutputPipe {
    stream: Stream,
    read: Option<OwnedFd>,
    write: Option<OwnedFd>,
}

pub struct StdioPipes {
    sink: Sink,
    outputs: Vec<OutputPipe>,
    /// A detached container's attach socket: its clients get the output
    /// too.
    attach: Option<AttachServer>,
    input: Input,
    /// A detached `-t` container's pty master, once it has come.
    terminal: Option<OwnedFd>,
}

/// Where the container's stdin comes from, when not straight from ours.
enum Input {
    None,
    /// Our stdin, relayed: the container's read end until the clone, and
    /// ours, which a thread fills from our stdin once the container runs.
    Caller {
        read: Option<OwnedFd>,
        write: Option<OwnedFd>,
    },
    /// What attach clients type (`-di`, `-dit`): the container's read end
    /// until the clone (none with a terminal), ours (the pty master with
    /// a terminal, once it has come), and what it has not taken yet.
    Clients {
        read: Option<OwnedFd>,
        write: Option<OwnedFd>,
        pending: Vec<u8>,
    },
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).context("creating a pipe for the container's stdio")
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .context("setting up the container's stdio")?;
    Ok(())
}

fn is_terminal(fd: impl AsFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

impl StdioPipes {
    /// A detached container's stdout and stderr, into its log (and to
    /// the clients of its attach socket), and with `stdin` its input from
    /// those clients. With `terminal`, there are no pipes: the pty comes
    /// later (`take_terminal`) and carries both.
    pub fn to_log(
        writer: Option<LogWriter>,
        attach: AttachServer,
        terminal: bool,
        stdin: bool,
    ) -> Result<StdioPipes> {
        let streams: &[Stream] = match terminal {
            true => &[],
            false => &[Stream::Stdout, Stream::Stderr],
        };
        let mut pipes = StdioPipes::new(Sink::Log(writer), streams, false)?;
        pipes.attach = Some(attach);
        if stdin {
            let (read, write) = match terminal {
                true => (None, None),
                false => {
                    let (read, write) = pipe()?;
                    // Our end only: the container reads as from any pipe.
                    set_nonblocking(&write)?;
                    (Some(read), Some(write))
                }
            };
            pipes.input = Input::Clients {
                read,
                write,
                pending: vec![],
            };
        }
        Ok(pipes)
    }

    /// Whether the output goes to a log and attach clients (a detached
    /// container) rather than to the caller.
    pub fn is_detached(&self) -> bool {
        self.attach.is_some()
    }

    /// A detached container's pty master: read as its output, written
    /// with clients' input, sized by them (80x24 until one says).
    pub fn take_terminal(&mut self, master: OwnedFd) -> Result<()> {
        let size = sys::WindowSize {
            ws_row: DEFAULT_ROWS,
            ws_col: DEFAULT_COLUMNS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        sys::set_window_size(master.as_fd(), &size).context("sizing the container's terminal")?;
        set_nonblocking(&master)?;
        let clone = || {
            master
                .try_clone()
                .context("sharing the container's terminal")
        };
        self.outputs.push(OutputPipe {
            stream: Stream::Stdout,
            read: Some(clone()?),
            write: None,
        });
        if let Input::Clients { write, .. } = &mut self.input {
            *write = Some(clone()?);
        }
        self.terminal = Some(master);
        Ok(())
    }

    /// Tells the attached clients how the container ended.
    pub fn finish_attach(&mut self, code: i32) {
        if let Some(attach) = self.attach.as_mut() {
            attach.finish(code);
        }
    }

    /// A foreground container without `-t`: each of our stdout and stderr
    /// that is a terminal is relayed through a pipe, and so is stdin when
    /// it is passed (`-i`) and is one. None when nothing is a terminal.
    pub fn for_terminals(pass_stdin: bool) -> Result<Option<StdioPipes>> {
        let mut streams = vec![];
        if is_terminal(std::io::stdout()) {
            streams.push(Stream::Stdout);
        }
        if is_terminal(std::io::stderr()) {
            streams.push(Stream::Stderr);
        }
        let input = pass_stdin && is_terminal(std::io::stdin());
        if streams.is_empty() && !input {
            return Ok(None);
        }
        StdioPipes::new(Sink::Caller, &streams, input).map(Some)
    }

    fn new(sink: Sink, streams: &[Stream], input: bool) -> Result<StdioPipes> {
        let mut outputs = vec![];
        for stream in streams {
            let (read, write) = pipe()?;
            // Only our end is non-blocking: the container's writes block
            // as they would on a terminal.
            set_nonblocking(&read)?;
            outputs.push(OutputPipe {
                stream: *stream,
                read: Some(read),
                write: Some(write),
            });
        }
        let input = match input {
            true => {
                let (read, write) = pipe()?;
                Input::Caller {
                    read: Some(read),
                    write: Some(write),
                }
            }
            false => Input::None,
        };
        Ok(StdioPipes {
            sink,
            outputs,
            attach: None,
            input,
            terminal: None,
        })
    }

    /// In the container's process: the pipes become its fds 0, 1 and 2,
    /// and it keeps none of the monitor's ends (an `--init` reaper that
    /// held the input's write end would keep the command from ever reading
    /// end of file).
    pub fn become_stdio(&mut self) -> Result<()> {
        let read = match &mut self.input {
            Input::None => None,
            Input::Caller { read, write } | Input::Clients { read, write, .. } => {
                *write = None;
                read.take()
            }
        };
        for output in &mut self.outputs {
            output.read = None;
            let write = output.write.take().context("the output pipe is gone")?;
            match output.stream {
                Stream::Stdout => nix::unistd::dup2_stdout(&write),
                Stream::Stderr => nix::unistd::dup2_stderr(&write),
            }
            .context("connecting the output pipe")?;
        }
        if let Some(read) = read {
            nix::unistd::dup2_stdin(&read).context("connecting the input pipe")?;
        }
        Ok(())
    }

    /// In the monitor, once the container holds its ends: drop ours of
    /// them, and start copying our stdin into the input pipe. A thread does
    /// that, blocking on our stdin; it ends at our end of file (closing the
    /// container's) or when the container no longer reads. Clients' input
    /// is written by `copy_ready`.
    pub fn close_container_ends(&mut self) {
        for output in &mut self.outputs {
            output.write = None;
        }
        match &mut self.input {
            Input::None => {}
            Input::Clients { read, .. } => *read = None,
            Input::Caller { read, write } => {
                *read = None;
                if let Some(write) = write.take() {
                    std::thread::spawn(move || {
                        let mut pipe = std::fs::File::from(write);
                        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut pipe);
                    });
                }
            }
        }
    }

    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds: Vec<PollFd<'_>> = self
            .outputs
            .iter()
            .filter_map(|output| output.read.as_ref())
            .map(|read| PollFd::new(read.as_fd(), PollFlags::POLLIN))
            .collect();
        // A new attach client wakes the supervisor too (copy_ready takes
        // it), and so does a client's input, unless the container is
        // behind with what it was sent; then the container's readiness to
        // take more does.
        if let Some(attach) = self.attach.as_ref() {
            fds.push(PollFd::new(attach.listener_fd(), PollFlags::POLLIN));
            let backlog = match &self.input {
                Input::Clients {
                    write: Some(write),
                    pending,
                    ..
                } if !pending.is_empty() => {
                    fds.push(PollFd::new(write.as_fd(), PollFlags::POLLOUT));
                    pending.len()
                }
                _ => 0,
            };
            if backlog < MAX_PENDING_INPUT {
                fds.extend(
                    attach
                        .sending_fds()
                        .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
                );
            }
        }
        fds
    }

    /// Passes on whatever the pipes hold now; closes a pipe at end of file.
    pub fn copy_ready(&mut self) -> Result<()> {
        let mut buffer = [0u8; 65536];
        if let Some(attach) = self.attach.as_mut() {
            attach.accept_waiting();
        }
        for output in &mut self.outputs {
            while let Some(fd) = output.read.as_ref() {
                match nix::unistd::read(fd, &mut buffer) {
                    // A pty master reads EIO once its terminal is closed.
                    Ok(0) | Err(nix::errno::Errno::EIO) => output.read = None,
                    Ok(n) => {
                        deliver(&mut self.sink, output.stream, &buffer[..n]);
                        if let Some(attach) = self.attach.as_mut() {
                            attach.broadcast(output.stream, &buffer[..n]);
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(err) => return Err(err).context("reading the container's output"),
                }
            }
        }
        self.take_clients_input();
        Ok(())
    }

    /// Clients' input into the container (when its stdin is open), their
    /// window size onto its terminal (when it has one); then as much of
    /// the input as the container takes now.
    fn take_clients_input(&mut self) {
        let Some(attach) = self.attach.as_mut() else {
            return;
        };
        let backlog = match &self.input {
            Input::Clients { pending, .. } => pending.len(),
            _ => 0,
        };
        if backlog < MAX_PENDING_INPUT {
            for message in attach.read_clients() {
                match message {
                    FromClient::Input(data) => {
                        if let Input::Clients {
                            write: Some(_),
                            pending,
                            ..
                        } = &mut self.input
                        {
                            pending.extend_from_slice(&data);
                        }
                    }
                    FromClient::Resize(rows, columns) => {
                        if let Some(master) = &self.terminal {
                            let size = sys::WindowSize {
                                ws_row: rows,
                                ws_col: columns,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            };
                            let _ = sys::set_window_size(master.as_fd(), &size);
                        }
                    }
                }
            }
        }
        if let Input::Clients { write, pending, .. } = &mut self.input {
            while let (Some(fd), false) = (write.as_ref(), pending.is_empty()) {
                match nix::unistd::write(fd, pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(nix::errno::Errno::EAGAIN) => break,
                    // The container closed its stdin: nothing more goes in.
                    Err(_) => {
                        pending.clear();
                        *write = None;
                    }
                }
            }
        }
    }

    /// After the container's PID 1 has exited: the kernel is ending the
    /// rest of its processes; pass on what they wrote until the pipes close.
    pub fn drain(&mut self) {
        wait::until(Duration::from_secs(2), Duration::ZERO, || {
            if self.copy_ready().is_err() {
                return Some(());
            }
            // Checked after the copy, which closes the pipes at their end:
            // polling no pipe at all would only sleep.
            if self.outputs.iter().all(|output| output.read.is_none()) {
                return Some(());
            }
            let mut fds = self.poll_fds();
            let _ = poll(&mut fds, PollTimeout::from(100u8));
            None
        });
        if let Sink::Log(Some(writer)) = &mut self.sink {
            writer.finish();
        }
    }
}

/// Output of the container's `stream` to where it goes. A caller whose
/// output is gone (a closed terminal) loses it, as a terminal would.
fn deliver(sink: &mut Sink, stream: Stream, data: &[u8]) {
    match sink {
        Sink::Log(Some(writer)) => writer.write(stream, data),
        Sink::Log(None) => {}
        Sink::Caller => {
            let _ = match stream {
                Stream::Stdout => std::io::stdout().lock().write_all(data),
                Stream::Stderr => std::io::stderr().lock().write_all(data),
            };
        }
    }
}
