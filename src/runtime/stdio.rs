//! The caller's stdio as the container receives it. A descriptor is a way
//! into whatever it names: a directory on fd 0, 1 or 2 would let the
//! container `fchdir` to it and walk up to the caller's `/`. Such stdio is
//! refused before anything starts (an O_PATH descriptor too, which names a
//! place rather than a stream).

use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, SFlag};

/// Checks the caller's stdout and stderr, and stdin when it is passed
/// (`-i`): each must be a stream (a terminal, pipe, socket or file), not a
/// directory or a bare path.
pub fn refuse_paths(pass_stdin: bool) -> Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut fds = vec![("stdout", 1, stdout.as_fd()), ("stderr", 2, stderr.as_fd())];
    if pass_stdin {
        fds.insert(0, ("stdin", 0, stdin.as_fd()));
    }
    for (name, number, fd) in fds {
        if let Some(what) = is_a_path(fd).with_context(|| format!("checking {name}"))? {
            bail!(
                "{name} (fd {number}) is {what}: the container would get a way into your file \
                 system through it; give it a file, a pipe or a terminal"
            );
        }
    }
    Ok(())
}

/// Some("a directory") or Some("an O_PATH descriptor") for what a
/// container must not get; None for a stream. A closed descriptor is
/// fine: the container gets none either.
fn is_a_path(fd: BorrowedFd<'_>) -> Result<Option<&'static str>> {
    let flags = match fcntl(fd, FcntlArg::F_GETFL) {
        Ok(flags) => OFlag::from_bits_truncate(flags),
        Err(nix::errno::Errno::EBADF) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    if flags.contains(OFlag::O_PATH) {
        return Ok(Some("an O_PATH descriptor"));
    }
    let stat = fstat(fd)?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    Ok((kind == SFlag::S_IFDIR).then_some("a directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_o_path_descriptors_are_paths_streams_are_not() {
        let dir = std::fs::File::open("/").unwrap();
        assert_eq!(is_a_path(dir.as_fd()).unwrap(), Some("a directory"));
        let path = nix::fcntl::open("/etc", OFlag::O_PATH, nix::sys::stat::Mode::empty()).unwrap();
        assert_eq!(
            is_a_path(path.as_fd()).unwrap(),
            Some("an O_PATH descriptor")
        );
        let (read, _write) = nix::unistd::pipe().unwrap();
        assert_eq!(is_a_path(read.as_fd()).unwrap(), None);
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(is_a_path(file.as_fd()).unwrap(), None);
    }
}
