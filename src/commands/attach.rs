//! `rocker attach CONTAINER`: a detached container's output, live, from
//! its monitor's attach socket (see `runtime::attach_server`), and its exit
//! status at the end; signals sent to attach go on to the container (docker's
//! `--sig-proxy`).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::container::running;
use crate::cli::args::AttachArgs;
use crate::container::record::Containers;
use crate::host::dirs::Dirs;
use crate::runtime::attach_server::{
    in_dir, ATTACH_SOCKET, FRAME_EXIT, FRAME_STDERR, FRAME_STDOUT,
};
use crate::runtime::supervise::FORWARDED;

pub fn attach_command(args: AttachArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    let containers = Containers::open(&dirs)?;
    let record = containers.find(&args.container)?;
    let live = running(&containers, &record, "attach to")?;
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
    // What `run` passes on to its container, but the window size: attach
    // holds no terminal.
    let signals: SigSet = FORWARDED
        .iter()
        .copied()
        .filter(|signal| *signal != Signal::SIGWINCH)
        .collect();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .context("blocking signals")?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("creating a signalfd")?;
    loop {
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(err).context("waiting on the container"),
        }
        let signalled = fds[1].revents().is_some_and(|r| !r.is_empty());
        let readable = fds[0].revents().is_some_and(|r| !r.is_empty());
        if signalled {
            while let Ok(Some(info)) = signal_fd.read_signal() {
                let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                if !args.sig_proxy {
                    // Without the proxy a signal ends the attach alone.
                    return Ok(128 + signal as i32);
                }
                live.init.signal(signal)?;
            }
        }
        if readable {
            let Some((kind, data)) = read_frame(&mut socket)? else {
                bail!(
                    "the monitor of container {} went away without saying how it ended",
                    record.name
                );
            };
            match kind {
                FRAME_STDOUT => write_out(&mut std::io::stdout().lock(), &data)?,
                FRAME_STDERR => write_out(&mut std::io::stderr().lock(), &data)?,
                FRAME_EXIT => {
                    let code: [u8; 4] = data
                        .try_into()
                        .map_err(|_| anyhow::anyhow!("a malformed exit frame"))?;
                    return Ok(i32::from_be_bytes(code));
                }
                other => bail!("an unknown frame ({other}) from the attach socket"),
            }
        }
    }
}

fn write_out(out: &mut impl Write, data: &[u8]) -> Result<()> {
    out.write_all(data)?;
    out.flush()?;
    Ok(())
}

/// One frame, or None at the end of the stream.
fn read_frame(socket: &mut UnixStream) -> Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    match socket.read_exact(&mut header) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err).context("reading the attach socket"),
    }
    let len = u32::from_be_bytes(header[1..].try_into().expect("four bytes")) as usize;
    if len > 1 << 20 {
        bail!("a frame of {len} bytes from the attach socket: more than any output chunk");
    }
    let mut data = vec![0; len];
    socket
        .read_exact(&mut data)
        .context("reading the attach socket")?;
    Ok(Some((header[0], data)))
}
