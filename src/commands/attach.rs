//! `rocker attach CONTAINER`: a detached container's output, live, from
//! its monitor's attach socket (see `runtime::attach_server`), and its exit
//! status at the end. With an open stdin (`-i`), what is typed here goes
//! in; with a terminal (`-t`), this terminal is raw and its size follows.
//! The detach keys (Ctrl-P Ctrl-Q) leave the container running. Without a
//! terminal, signals sent to attach go on to the container (docker's
//! `--sig-proxy`).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::container::running;
use crate::cli::args::AttachArgs;
use crate::container::record::{ContainerRecord, Containers, State};
use crate::error::StatusError;
use crate::host::dirs::Dirs;
use crate::runtime::attach_server::{
    frame, in_dir, take_frame, Offer, ATTACH_SOCKET, FRAME_EXIT, FRAME_HELLO, FRAME_INPUT,
    FRAME_RESIZE, FRAME_STDERR, FRAME_STDOUT,
};
use crate::runtime::console::{caller_window_size, RawMode};
use crate::runtime::supervise::FORWARDED;

/// The monitor tells its clients the exit status before it records the
/// end in the status file. As docker's CLI waits for the daemon's state,
/// wait (a few milliseconds; at most 5 s, should the monitor hang) until
/// the record no longer says running, so that a `ps` or `inspect` right
/// after this attach sees the container ended (or restarting).
fn await_recorded_end(containers: &Containers, id: &str) {
    let _ = crate::util::wait::until(Duration::from_secs(5), Duration::from_millis(2), || {
        (!matches!(containers.state(id), Ok(State::Running(_)))).then_some(())
    });
}

/// How this client attaches.
pub struct AttachOptions {
    /// Pass our stdin in, when the container's is open.
    pub stdin: bool,
    /// Pass signals on (without a terminal).
    pub sig_proxy: bool,
    /// The keys that detach (typed on a terminal).
    pub detach_keys: Vec<u8>,
}

pub fn attach_command(args: AttachArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    let containers = Containers::open(&dirs)?;
    let record = containers.find(&args.container)?;
    let options = AttachOptions {
        stdin: !args.no_stdin,
        sig_proxy: args.sig_proxy,
        detach_keys: args.detach_keys.0,
    };
    attach_to(&containers, &record, &options)
}

/// Attaches to the running container `record` until it exits (its status)
/// or the detach keys are typed (1, as docker).
pub fn attach_to(
    containers: &Containers,
    record: &ContainerRecord,
    options: &AttachOptions,
) -> Result<i32> {
    let live = running(containers, record, "attach to")?;
    let live_dir = containers.live_dir(&record.id);
    let path = live_dir.join(ATTACH_SOCKET);
    let mut socket = in_dir(&live_dir, |short| UnixStream::connect(short)).with_context(|| {
        format!(
            "container {} has no attach socket ({}): it runs in the foreground elsewhere, or \
             was started by a rocker without attach",
            record.name,
            path.display()
        )
    })?;
    let mut inbox = vec![];
    let offer = greeting(&mut socket, &mut inbox)?;
    let forward_stdin = offer.stdin && options.stdin;
    let stdin = std::io::stdin();
    let on_terminal = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    // Typed keys go to the container's terminal as bytes (Ctrl-C is its
    // SIGINT there); the settings come back on every way out.
    let _raw = match offer.terminal && forward_stdin {
        true => RawMode::enter()?,
        false => None,
    };
    let mut keys = DetachScanner::new(match forward_stdin && on_terminal {
        true => options.detach_keys.clone(),
        false => vec![],
    });
    let signals: SigSet = FORWARDED.iter().copied().collect();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .context("blocking signals")?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("creating a signalfd")?;
    if offer.terminal {
        send_window_size(&mut socket)?;
    }
    let mut stdin_open = forward_stdin;
    loop {
        // What the greeting's read brought along comes first.
        while let Some((kind, data)) = take_frame(&mut inbox)? {
            if let Some(code) = deliver(kind, data)? {
                await_recorded_end(containers, &record.id);
                return Ok(code);
            }
        }
        let mut fds = vec![
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(err).context("waiting on the container"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[1] {
            while let Ok(Some(info)) = signal_fd.read_signal() {
                let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match (signal, offer.terminal) {
                    (Signal::SIGWINCH, true) => send_window_size(&mut socket)?,
                    (Signal::SIGWINCH, false) => {}
                    // docker proxies signals to containers without a
                    // terminal only; with one, Ctrl-C is typed, not sent.
                    (signal, false) if options.sig_proxy => {
                        live.init.signal(signal)?;
                    }
                    (signal, _) => return Ok(128 + signal as i32),
                }
            }
        }
        if stdin_open && ready[2] {
            let mut buffer = [0u8; 16 * 1024];
            match nix::unistd::read(stdin.as_fd(), &mut buffer) {
                Ok(0) | Err(_) => {
                    // Our input ended; the container's stays open, as
                    // docker leaves it for the next client.
                    stdin_open = false;
                }
                Ok(n) => {
                    let (typed, detached) = keys.feed(&buffer[..n]);
                    if !typed.is_empty() {
                        socket
                            .write_all(&frame(FRAME_INPUT, &typed))
                            .context("passing input to the container")?;
                    }
                    if detached {
                        return Err(StatusError::new(1, "read escape sequence").into());
                    }
                }
            }
        }
        if ready[0] {
            let mut buffer = [0u8; 64 * 1024];
            match socket.read(&mut buffer) {
                Ok(0) => bail!(
                    "the monitor of container {} went away without saying how it ended",
                    record.name
                ),
                Ok(n) => inbox.extend_from_slice(&buffer[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).context("reading the attach socket"),
            }
        }
    }
}

/// What the monitor offers, from its hello frame. A monitor of a rocker
/// from before input was passed sends none: its first frame is output,
/// left in `inbox`, and it offers nothing.
fn greeting(socket: &mut UnixStream, inbox: &mut Vec<u8>) -> Result<Offer> {
    let mut buffer = [0u8; 4096];
    loop {
        let n = socket
            .read(&mut buffer)
            .context("reading the attach socket")?;
        if n == 0 {
            bail!("the container's monitor closed the attach socket before it said anything");
        }
        inbox.extend_from_slice(&buffer[..n]);
        if inbox.len() < 5 {
            continue;
        }
        if inbox[0] != FRAME_HELLO {
            return Ok(Offer::default());
        }
        if let Some((_, data)) = take_frame(inbox)? {
            return Ok(Offer::from_byte(data.first().copied().unwrap_or(0)));
        }
    }
}

/// One frame from the monitor: output is written out; the exit frame
/// gives the status.
fn deliver(kind: u8, data: Vec<u8>) -> Result<Option<i32>> {
    match kind {
        FRAME_STDOUT => write_out(&mut std::io::stdout().lock(), &data)?,
        FRAME_STDERR => write_out(&mut std::io::stderr().lock(), &data)?,
        FRAME_EXIT => {
            let code: [u8; 4] = data
                .try_into()
                .map_err(|_| anyhow!("a malformed exit frame"))?;
            return Ok(Some(i32::from_be_bytes(code)));
        }
        other => bail!("an unknown frame ({other}) from the attach socket"),
    }
    Ok(None)
}

/// Our terminal's size, for the container's (nothing without a terminal).
fn send_window_size(socket: &mut UnixStream) -> Result<()> {
    let Some(size) = caller_window_size() else {
        return Ok(());
    };
    let mut data = size.ws_row.to_be_bytes().to_vec();
    data.extend_from_slice(&size.ws_col.to_be_bytes());
    socket
        .write_all(&frame(FRAME_RESIZE, &data))
        .context("passing the window size to the container")
}

fn write_out(out: &mut impl Write, data: &[u8]) -> Result<()> {
    out.write_all(data)?;
    out.flush()?;
    Ok(())
}

/// Watches typed input for the detach keys. Keys that begin the sequence
/// are held back until it is whole (then they detach, and are not sent)
/// or broken (then they go, with what broke it).
struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    /// No keys: nothing detaches.
    fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// The bytes of `input` to send on, and whether the sequence was
    /// typed (what follows it is dropped).
    fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut send = vec![];
        for &byte in input {
            if byte != self.keys[self.matched] && self.matched > 0 {
                send.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
            }
            if byte == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (send, true);
                }
            } else {
                send.push(byte);
            }
        }
        (send, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_held_until_whole_or_broken() {
        let mut scanner = DetachScanner::new(vec![0x10, 0x11]);
        assert_eq!(scanner.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        // Ctrl-P alone is held, then goes with what broke the sequence.
        assert_eq!(scanner.feed(&[0x10]), (vec![], false));
        assert_eq!(scanner.feed(b"x"), (vec![0x10, b'x'], false));
        // Ctrl-P Ctrl-P: the first goes, the second may still begin it.
        assert_eq!(scanner.feed(&[0x10, 0x10]), (vec![0x10], false));
        assert_eq!(scanner.feed(&[0x11, b'z']), (vec![], true));
        let mut scanner = DetachScanner::new(vec![b'a']);
        assert_eq!(scanner.feed(b"xay"), (b"x".to_vec(), true));
        let mut nothing = DetachScanner::new(vec![]);
        assert_eq!(nothing.feed(&[0x10, 0x11]), (vec![0x10, 0x11], false));
    }
}
