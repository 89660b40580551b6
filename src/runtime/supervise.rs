//! Waiting on a child while it runs: signals sent to rocker go on to it,
//! its terminal is relayed, its output logged. The monitor supervises the
//! container's PID 1 this way, and `exec` the process that joined it.

use std::os::fd::AsFd;
use std::time::Instant;

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::wait_status_to_exit_code;
use crate::runtime::channel::ParentEnd;
use crate::runtime::console::Console;
use crate::runtime::stdio_pipes::StdioPipes;
use crate::util::wait::Awaited;

/// Signals that, sent to `rocker run` or `rocker exec`, are meant for the
/// container's process.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The end of a start-up handshake, for `run` and `exec` alike: take the
/// pty (with `-t`), wait until the command has been executed (`started`
/// runs then), and supervise `child` until it exits (or `awaited`, a
/// helper still starting, fails).
#[allow(clippy::too_many_arguments)]
pub fn run_to_exit(
    channel: &ParentEnd,
    child: &mut Supervised,
    signals: &SigSet,
    terminal: bool,
    forward_input: bool,
    pipes: Option<&mut StdioPipes>,
    awaited: Option<&mut dyn Awaited>,
    started: &mut dyn FnMut() -> Result<()>,
) -> Result<i32> {
    let mut pipes = pipes;
    let mut console = None;
    if terminal {
        let master = channel.wait_for_console()?;
        // A detached container's terminal is its monitor's to serve to
        // attach clients; a foreground one is relayed to ours.
        match pipes.as_deref_mut().filter(|pipes| pipes.is_detached()) {
            Some(pipes) => pipes.take_terminal(master)?,
            None => console = Some(Console::new(master)),
        }
        channel.console_sized()?;
    }
    channel.wait_for_exec()?;
    started()?;

    // Raw mode only when we forward input (docker's -it): with -t alone,
    // Ctrl-C stays a SIGINT for rocker, which forwards it.
    if let (Some(console), true) = (console.as_mut(), forward_input) {
        console.enter_raw_mode()?;
    }
    let signal_fd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("creating a signalfd")?;
    supervise(
        child,
        &signal_fd,
        console.as_ref(),
        forward_input,
        pipes,
        awaited,
    )
}

/// Waits for `child` to exit, forwarding signals to it and relaying the
/// terminal (or its stdio pipes) meanwhile; returns its exit status.
fn supervise(
    child: &mut Supervised,
    signal_fd: &SignalFd,
    console: Option<&Console>,
    forward_input: bool,
    mut pipes: Option<&mut StdioPipes>,
    mut awaited: Option<&mut dyn Awaited>,
) -> Result<i32> {
    let mut output_open = console.is_some();
    let mut input_open = console.is_some() && forward_input;
    let stdin = std::io::stdin();
    loop {
        if let Some(pipes) = pipes.as_mut() {
            pipes.copy_ready()?;
        }
        let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
        if let Some(pipes) = pipes.as_ref() {
            fds.extend(pipes.poll_fds());
        }
        let pipe_fds = fds.len() - 1;
        if let (Some(console), true) = (console, output_open) {
            fds.push(PollFd::new(console.master(), PollFlags::POLLIN));
        }
        if input_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let mut timeout = PollTimeout::NONE;
        let mut awaited_by = None;
        if let Some((fd, by)) = awaited.as_deref().and_then(Awaited::pending) {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            let left = by.saturating_duration_since(Instant::now());
            timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            awaited_by = Some(by);
        }
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context("waiting for the container")?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        // Last in the set when there.
        if let (Some(by), Some(awaited)) = (awaited_by, awaited.as_deref_mut()) {
            let answered = ready[ready.len() - 1];
            if answered || Instant::now() >= by {
                awaited.settle(answered)?;
            }
        }
        let mut index = 1 + pipe_fds;
        if let (Some(console), true) = (console, output_open) {
            if ready[index] {
                output_open = console.copy_output();
            }
            index += 1;
        }
        if input_open && ready[index] {
            input_open = console.is_some_and(|c| c.copy_input());
        }
        if !ready[0] {
            continue;
        }
        while let Ok(Some(info)) = signal_fd.read_signal() {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match (signal, console) {
                (Signal::SIGCHLD, _) => {
                    if let Some(status) = child.try_wait()? {
                        if let Some(console) = console {
                            console.drain();
                        }
                        return Ok(status);
                    }
                }
                // The kernel signals the container's foreground job itself
                // when its terminal's size changes.
                (Signal::SIGWINCH, Some(console)) => console.sync_window_size(),
                (signal, _) => child.signal(signal),
            }
        }
    }
}

/// A child of ours (the container's PID 1, or exec's joining process),
/// killed and reaped if we leave before it exits.
pub struct Supervised {
    pid: Pid,
    reaped: bool,
}

impl Supervised {
    pub fn new(pid: Pid) -> Supervised {
        Supervised { pid, reaped: false }
    }

    fn try_wait(&mut self) -> Result<Option<i32>> {
        let status =
            waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).context("waiting for the container")?;
        if matches!(status, WaitStatus::StillAlive) {
            return Ok(None);
        }
        let code = wait_status_to_exit_code(status);
        self.reaped = code.is_some();
        Ok(code)
    }

    /// Our own unreaped child cannot be a recycled pid, so kill() is safe.
    fn signal(&self, signal: Signal) {
        let _ = kill(self.pid, signal);
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// The signals a supervisor takes through its signalfd, blocked; the old
/// mask is restored on drop.
pub struct BlockedSignals {
    blocked: SigSet,
    previous: SigSet,
}

impl BlockedSignals {
    /// Blocks `FORWARDED` and SIGCHLD. Done before the fork or clone of the
    /// child to supervise, so that no signal is lost before `run_to_exit`
    /// reads them; the child inherits the mask, and the command's process
    /// clears it before exec.
    pub fn for_supervision() -> Result<BlockedSignals> {
        let mut blocked: SigSet = FORWARDED.iter().copied().collect();
        blocked.add(Signal::SIGCHLD);
        let mut previous = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut previous))
            .context("blocking signals")?;
        Ok(BlockedSignals { blocked, previous })
    }

    /// The signals blocked.
    pub fn signals(&self) -> &SigSet {
        &self.blocked
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // What arrived and was never read (a Ctrl-C during setup) is taken
        // now and noted, not let through to kill rocker in the middle of
        // its cleanup: the run ends with 128+N once it has cleaned up.
        if let Ok(pending) = SignalFd::with_flags(
            &self.blocked,
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        ) {
            while let Ok(Some(info)) = pending.read_signal() {
                if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                    crate::util::wait::note_termination(signal);
                }
            }
        }
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}
