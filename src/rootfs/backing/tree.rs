//! A directory tree read through descriptors, never following a symlink:
//! a container's upper dir may change while commit or export reads it, and
//! a directory swapped for a symlink must not lead the reading elsewhere.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, readlinkat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};

/// An open directory.
pub struct DirHandle {
    fd: OwnedFd,
}

/// What kind of entry a stat describes.
pub fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

/// An overlay whiteout: a 0/0 character device.
pub fn is_whiteout(stat: &FileStat) -> bool {
    kind(stat) == SFlag::S_IFCHR && stat.st_rdev == 0
}

impl DirHandle {
    /// Opens the directory at `path` (which may be a symlink to it, as a
    /// container's `lN` links are).
    pub fn open(path: &Path) -> Result<DirHandle> {
        let fd = openat(
            AT_FDCWD,
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", path.display()))?;
        Ok(DirHandle { fd })
    }

    /// The directory `fd` is open on (an `O_PATH` descriptor will do).
    pub fn from_fd(fd: OwnedFd) -> DirHandle {
        DirHandle { fd }
    }

    /// Its entries with their stats, sorted by name (an entry gone
    /// meanwhile is left out).
    pub fn entries(&self) -> Result<Vec<(OsString, FileStat)>> {
        let mut dir = nix::dir::Dir::openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("reopening a directory")?;
        let mut entries = vec![];
        for entry in dir.iter() {
            let entry = entry.context("reading a directory")?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            if let Some(stat) = self.stat(name) {
                entries.push((name.to_os_string(), stat));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// The entry `name` itself (a symlink is not followed).
    pub fn stat(&self, name: &OsStr) -> Option<FileStat> {
        fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()
    }

    /// The subdirectory `name`; None when it is not one (or a symlink, or
    /// gone).
    pub fn subdir(&self, name: &OsStr) -> Result<Option<DirHandle>> {
        match openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(DirHandle { fd })),
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("opening {}", name.to_string_lossy())),
        }
    }

    /// The regular file `name`, for reading; None when it went away since
    /// it was listed (a running container removed it).
    pub fn open_file(&self, name: &OsStr) -> Result<Option<File>> {
        match openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::ENOENT) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("opening {}", name.to_string_lossy())),
        }
    }

    /// Where the symlink `name` points; None when it went away.
    pub fn readlink(&self, name: &OsStr) -> Result<Option<OsString>> {
        match readlinkat(&self.fd, name) {
            Ok(target) => Ok(Some(target)),
            Err(Errno::ENOENT) => Ok(None),
            Err(err) => {
                Err(err).with_context(|| format!("reading the link {}", name.to_string_lossy()))
            }
        }
    }

    /// Whether overlayfs's opaque mark is on it.
    pub fn is_opaque(&self) -> bool {
        crate::util::xattr::is_opaque_fd(self.fd.as_fd())
    }
}
