//! Waiting with a deadline: for a condition checked at intervals, or for a
//! descriptor to become readable. Every wait in rocker that could hang on a
//! helper or a kernel that is slow to let go has a limit.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// A signal that asks rocker to stop (SIGINT, SIGTERM, SIGHUP, SIGQUIT)
/// and waits, blocked, to be read: while a container is set up, every wait
/// gives up when one has come (see `runtime::monitor`).
pub fn termination_pending() -> Option<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal;
    let noted = NOTED_TERMINATION.load(std::sync::atomic::Ordering::Relaxed);
    if let Ok(signal) = Signal::try_from(noted) {
        return Some(signal);
    }
    let pending = crate::sys::pending_signals().ok()?;
    TERMINATIONS
        .into_iter()
        .find(|signal| pending.contains(*signal))
}

const TERMINATIONS: [nix::sys::signal::Signal; 4] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGHUP,
    nix::sys::signal::Signal::SIGQUIT,
];

/// A termination signal taken from the pending ones (when the blocked
/// signals are let go): still counts as pending.
static NOTED_TERMINATION: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Notes `signal`, taken while it was blocked, if it asks rocker to stop.
pub fn note_termination(signal: nix::sys::signal::Signal) {
    if TERMINATIONS.contains(&signal) {
        NOTED_TERMINATION.store(signal as i32, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Calls `check` every `interval` until it gives a value, or until `limit`
/// has passed or a termination signal is pending (then None). `check`
/// runs at least once.
pub fn until<T>(
    limit: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() >= limit || termination_pending().is_some() {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// Runs a helper program (`systemctl`, `slirp4netns --help`) to its end
/// within `limit`: its output, or None when it could not start or ran out
/// of time (then it is killed). A helper that hangs must not hang rocker.
pub fn helper_output(
    command: &mut std::process::Command,
    limit: Duration,
) -> Option<std::process::Output> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Read as it comes, so that a chatty helper never blocks on a full pipe.
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut bytes = vec![];
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let Some(status) = until(limit, Duration::from_millis(5), || {
        child.try_wait().ok().flatten()
    }) else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    Some(std::process::Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: vec![],
    })
}

/// Waits up to `limit` for `fd` to be readable (or at its end, or in
/// error, which a read then tells); false when the time ran out. A signal
/// delivered does not cut the wait short; a termination signal pending
/// (blocked) does, with EINTR.
pub fn readable(fd: BorrowedFd<'_>, limit: Duration) -> nix::Result<bool> {
    first_readable(&[fd], limit).map(|first| first.is_some())
}

/// `readable` for several descriptors: the index of one that is readable,
/// or None when the time ran out.
pub fn first_readable(fds: &[BorrowedFd<'_>], limit: Duration) -> nix::Result<Option<usize>> {
    let start = Instant::now();
    // Made once: each poll sets every entry's answer afresh.
    let mut polled: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    loop {
        if termination_pending().is_some() {
            return Err(nix::errno::Errno::EINTR);
        }
        // In slices, to look at pending signals now and then.
        let left = limit
            .saturating_sub(start.elapsed())
            .min(Duration::from_millis(100));
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut polled, timeout) {
            Ok(0) if start.elapsed() >= limit => return Ok(None),
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {
                return Ok(polled
                    .iter()
                    .position(|fd| fd.revents().is_some_and(|r| !r.is_empty())))
            }
            Err(err) => return Err(err),
        }
    }
}

/// A helper that was let start without being waited for (slirp4netns
/// still building its sandbox when the container's command starts): its
/// supervisor watches it meanwhile, and its failure ends the run.
pub trait Awaited {
    /// While it has not answered: the descriptor readable when it does,
    /// and by when it must.
    fn pending(&self) -> Option<(BorrowedFd<'_>, Instant)>;
    /// Its answer, once that descriptor is readable (`answered`) or its
    /// time is up.
    fn settle(&mut self, answered: bool) -> anyhow::Result<()>;
}

/// Waits, at most `limit`, until the helper process `child` says it is
/// ready by writing to `ready` (a pipe whose write end only it holds);
/// `what` names it in errors. End of file on the pipe means it died
/// first: its exit status is given then.
pub fn helper_ready(
    child: &mut std::process::Child,
    ready: std::os::fd::OwnedFd,
    limit: Duration,
    what: &str,
) -> anyhow::Result<()> {
    use anyhow::{bail, Context};
    use std::os::fd::AsFd;
    if !readable(ready.as_fd(), limit).with_context(|| format!("waiting for {what}"))? {
        bail!(
            "{what} did not configure the network within {} s",
            limit.as_secs()
        );
    }
    helper_has_answered(child, ready, what)
}

/// The helper's answer on its ready pipe, once that is readable: Ok if it
/// said it is ready, its failure if the pipe ended first.
pub fn helper_has_answered(
    child: &mut std::process::Child,
    ready: std::os::fd::OwnedFd,
    what: &str,
) -> anyhow::Result<()> {
    use anyhow::{bail, Context};
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::from(ready)
        .read(&mut bytes)
        .with_context(|| format!("reading {what}'s ready signal"))?;
    if read == 0 {
        let status = child
            .wait()
            .with_context(|| format!("waiting for {what}"))?;
        bail!("{what} failed to set up the network ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_that_hangs_is_killed_at_its_limit() {
        let start = Instant::now();
        let mut sleeper = std::process::Command::new("sleep");
        sleeper.arg("30");
        assert!(helper_output(&mut sleeper, Duration::from_millis(200)).is_none());
        assert!(start.elapsed() < Duration::from_secs(5));
        let mut echo = std::process::Command::new("echo");
        echo.arg("hi");
        let out = helper_output(&mut echo, Duration::from_secs(10)).unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert!(out.status.success());
    }
    use std::os::fd::AsFd;

    #[test]
    fn a_condition_is_checked_until_it_holds_or_time_runs_out() {
        let mut calls = 0;
        let got = until(Duration::from_secs(5), Duration::ZERO, || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
        let never = until(Duration::from_millis(20), Duration::from_millis(5), || {
            None::<()>
        });
        assert_eq!(never, None);
    }

    #[test]
    fn a_pipe_is_readable_once_written_or_closed() {
        let (read, write) = nix::unistd::pipe().unwrap();
        assert!(!readable(read.as_fd(), Duration::from_millis(20)).unwrap());
        nix::unistd::write(&write, b"x").unwrap();
        assert!(readable(read.as_fd(), Duration::from_secs(5)).unwrap());
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(write);
        assert!(readable(read.as_fd(), Duration::from_secs(5)).unwrap());
    }
}
