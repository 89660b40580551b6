//! The parent side of `rocker run`: creates the container, writes its id
//! maps, watches its setup, then forwards signals (and relays the terminal)
//! until it exits. Every resource is held by a guard, so any failure on the
//! way out kills the container, reaps it and removes its live directory,
//! in reverse order of acquisition.

use std::os::fd::{AsFd, OwnedFd};

use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getgid, getuid, pipe2, Pid};

use crate::channel::Channel;
use crate::console::Console;
use crate::container::logfile::{LogWriter, Stream};
use crate::dirs::Dirs;
use crate::error::wait_status_to_exit_code;
use crate::error::EXIT_ROCKER_FAILED;
use crate::fuseoverlay::FuseOverlay;
use crate::network::slirp::Slirp;
use crate::spec::{ContainerSpec, NetworkMode, Rootfs};
use crate::state::ContainerDir;
use crate::sys::{self, Forked};
use crate::{child, hostcheck, idmap, mountplan};

/// Signals that, sent to `rocker run`, are meant for the container.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The user namespace comes first: it is what makes the others possible
/// without privilege, and it owns them.
fn namespace_flags(network: NetworkMode) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if network.is_own_namespace() {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// Where the container's stdout and stderr go.
pub enum Output {
    /// Rocker's own (a foreground run).
    Inherit,
    /// Into its log (a detached run): each through a pipe to the monitor.
    Log(LogWriter),
}

/// Runs the container to completion and returns its exit status.
/// `started` is called with the container's PID 1 once its command runs.
pub fn run(
    spec: &ContainerSpec,
    dirs: &Dirs,
    output: Output,
    started: &mut dyn FnMut(Pid) -> Result<()>,
) -> Result<i32> {
    let live_dir = ContainerDir::create(dirs.ensure_runtime()?, spec)?;
    let files = live_dir.write_etc_files(spec)?;
    let mounts = mountplan::plan(spec, &files);
    let (channel, child_end) = Channel::pair()?;
    let mut log = match output {
        Output::Inherit => None,
        Output::Log(writer) => Some(LogPipes::new(writer)?),
    };

    // Blocked before the clone, so no signal is lost before the loop below
    // reads them; the child inherits the mask and clears it before exec.
    let mut signals: SigSet = FORWARDED.iter().copied().collect();
    signals.add(Signal::SIGCHLD);
    let _mask = BlockedSignals::block(&signals)?;

    let pid = match sys::clone_into_namespaces(namespace_flags(spec.network)) {
        Ok(Forked::Child) => {
            drop(channel);
            if let Some(log) = log.as_mut() {
                if let Err(err) = log.become_stdio() {
                    let _ = child_end.failed(EXIT_ROCKER_FAILED, format!("{err:#}"));
                    sys::exit_now(EXIT_ROCKER_FAILED);
                }
            }
            child::run(child_end, spec, &mounts, &signals)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(err) => {
            return Err(err).context(format!(
                "creating the container's namespaces{}",
                hostcheck::userns_hint()
            ))
        }
    };
    drop(child_end);
    if let Some(log) = log.as_mut() {
        log.close_write_ends();
    }
    // Declared before the container so that they are dropped after it: the
    // container is killed and reaped before its file system and network go.
    let mut _fuse: Option<FuseOverlay> = None;
    let mut _network: Option<Slirp> = None;
    let mut container = ContainerProcess { pid, reaped: false };

    let user = spec.process.user;
    idmap::write_id_maps(
        pid,
        (user.uid, getuid().as_raw()),
        (user.gid, getgid().as_raw()),
    )
    .with_context(|| format!("writing the id maps{}", hostcheck::userns_hint()))?;
    channel.mapping_written()?;
    if let Rootfs::FuseOverlay {
        dir,
        lowers,
        mount_point,
    } = &spec.rootfs
    {
        channel.wait_for_rootfs_wanted()?;
        _fuse = Some(FuseOverlay::start(pid, dir, lowers, mount_point)?);
        channel.rootfs_mounted()?;
    }
    if let NetworkMode::Slirp4netns(options) = &spec.network {
        let started = Slirp::start(
            pid,
            options,
            user.uid == 0 && user.gid == 0,
            dirs.ensure_runtime()?,
            live_dir.path(),
        )
        .and_then(|slirp| {
            let slirp = _network.insert(slirp);
            spec.ports.iter().try_for_each(|port| slirp.publish(port))
        });
        if let Err(err) = started {
            return Err(childs_error_or(err, &channel));
        }
        channel.network_ready()?;
    }

    let mut console = match spec.process.terminal {
        true => {
            let console = Console::new(channel.wait_for_console()?);
            channel.console_sized()?;
            Some(console)
        }
        false => None,
    };
    channel.wait_for_exec()?;
    started(pid)?;

    // Raw mode only when we forward input (docker's -it): with -t alone,
    // Ctrl-C stays a SIGINT for rocker, which forwards it.
    if let (Some(console), true) = (console.as_mut(), spec.process.stdin) {
        console.enter_raw_mode()?;
    }
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("creating a signalfd")?;
    let status = supervise(
        &mut container,
        &signal_fd,
        console.as_ref(),
        spec.process.stdin,
        log.as_mut(),
    )?;
    drop(console);
    if let Some(log) = log.as_mut() {
        log.drain();
    }
    Ok(status)
}

/// A step of the monitor that failed because the child had already failed
/// (slirp4netns finds no network namespace to join) should report the
/// child's reason, which is the real one.
/// A child still busy setting up says nothing for a while; one that
/// failed has sent its reason (or closed the channel) by the time its
/// namespaces are gone.
fn childs_error_or(err: anyhow::Error, channel: &Channel) -> anyhow::Error {
    if channel.has_news_within(Duration::from_millis(200)) {
        if let Err(childs) = channel.wait_for_exec() {
            return childs;
        }
    }
    err
}

/// Waits for the container's PID 1 to exit, forwarding signals and relaying
/// the terminal meanwhile.
fn supervise(
    container: &mut ContainerProcess,
    signal_fd: &SignalFd,
    console: Option<&Console>,
    forward_input: bool,
    mut log: Option<&mut LogPipes>,
) -> Result<i32> {
    let mut output_open = console.is_some();
    let mut input_open = console.is_some() && forward_input;
    let stdin = std::io::stdin();
    loop {
        if let Some(log) = log.as_mut() {
            log.copy_ready()?;
        }
        let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
        if let Some(log) = log.as_ref() {
            fds.extend(log.poll_fds());
        }
        let log_fds = fds.len() - 1;
        if let (Some(console), true) = (console, output_open) {
            fds.push(PollFd::new(console.master(), PollFlags::POLLIN));
        }
        if input_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context("waiting for the container")?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut index = 1 + log_fds;
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
                    if let Some(status) = container.try_wait()? {
                        if let Some(console) = console {
                            console.drain();
                        }
                        return Ok(status);
                    }
                }
                // The kernel signals the container's foreground job itself
                // when its terminal's size changes.
                (Signal::SIGWINCH, Some(console)) => console.sync_window_size(),
                (signal, _) => container.signal(signal),
            }
        }
    }
}

/// The container's PID 1, killed and reaped if we leave before it exits.
struct ContainerProcess {
    pid: Pid,
    reaped: bool,
}

impl ContainerProcess {
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

impl Drop for ContainerProcess {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// A blocked signal mask, restored on drop.
struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    fn block(signals: &SigSet) -> Result<BlockedSignals> {
        let mut previous = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(signals), Some(&mut previous))
            .context("blocking signals")?;
        Ok(BlockedSignals { previous })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.previous), None);
    }
}

/// The pipes that carry a detached container's stdout and stderr to its
/// log. The container holds the only write ends, so they read end of file
/// once every process of the container is gone.
struct LogPipes {
    writer: LogWriter,
    /// stdout, stderr: (read end, write end until the clone).
    pipes: Vec<(Stream, Option<OwnedFd>, Option<OwnedFd>)>,
}

impl LogPipes {
    fn new(writer: LogWriter) -> Result<LogPipes> {
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
    fn become_stdio(&mut self) -> Result<()> {
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

    fn close_write_ends(&mut self) {
        for pipe in &mut self.pipes {
            pipe.2 = None;
        }
    }

    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.pipes
            .iter()
            .filter_map(|(_, read, _)| read.as_ref())
            .map(|read| PollFd::new(read.as_fd(), PollFlags::POLLIN))
            .collect()
    }

    /// Logs whatever the pipes hold now; closes a pipe at end of file.
    fn copy_ready(&mut self) -> Result<()> {
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
    fn drain(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.pipes.iter().any(|(_, read, _)| read.is_some())
            && std::time::Instant::now() < deadline
        {
            if self.copy_ready().is_err() {
                break;
            }
            let mut fds = self.poll_fds();
            let _ = poll(&mut fds, PollTimeout::from(100u8));
        }
        self.writer.finish();
    }
}
