//! Path resolution inside a root file system that may be hostile.
//!
//! A rootfs is untrusted: `/etc` may be a symlink to `/home/me`, a volume's
//! destination may climb out with `../..`. Every path inside it is resolved
//! with `openat2(RESOLVE_IN_ROOT)`, which treats the rootfs as `/` for
//! absolute symlinks and `..` alike, so a lookup can never leave it (crun
//! does the same). Mounts then target `/proc/self/fd/N` of the resolved fd.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// What to create when a path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn relative(path: &str) -> &str {
    match path.trim_start_matches('/') {
        "" => ".",
        rest => rest,
    }
}

/// Opens `path` (absolute inside the root) as an `O_PATH` descriptor.
pub fn open(root: impl AsFd, path: &str) -> nix::Result<OwnedFd> {
    openat2(root, relative(path), how(OFlag::O_PATH))
}

/// Opens `path` inside the root, creating it (and missing parents) as `kind`
/// when absent. Each component is created relative to an already-resolved
/// parent, so a symlink planted in the rootfs is followed only within it; a
/// dangling one gets its target created, inside the root.
pub fn open_or_create(root: impl AsFd, path: &str, kind: Kind) -> nix::Result<OwnedFd> {
    create_within(root.as_fd(), path, kind, 0)
}

/// How many dangling symlinks one lookup may create targets for (the
/// kernel's own limit on nested links).
const MAX_LINK_DEPTH: u32 = 40;

fn create_within(root: BorrowedFd<'_>, path: &str, kind: Kind, depth: u32) -> nix::Result<OwnedFd> {
    match open(root, path) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    if depth > MAX_LINK_DEPTH {
        return Err(Errno::ELOOP);
    }
    let as_path = Path::new(path);
    let (Some(parent_path), Some(name)) = (as_path.parent(), as_path.file_name()) else {
        return Err(Errno::ENOENT);
    };
    let parent = create_within(root, &parent_path.to_string_lossy(), Kind::Directory, depth)?;
    let created = match kind {
        Kind::Directory => mkdirat(&parent, name, Mode::from_bits_truncate(0o755)),
        Kind::File => openat(
            &parent,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match created {
        Ok(()) => open(root, path),
        Err(Errno::EEXIST) => match open(root, path) {
            // A dangling symlink: create what it points to, in the root.
            Err(Errno::ENOENT) => {
                let target = readlinkat(&parent, name)?;
                let target = parent_path.join(target);
                create_within(root, &target.to_string_lossy(), kind, depth + 1)?;
                open(root, path)
            }
            other => other,
        },
        Err(err) => Err(err),
    }
}

/// Reads a small text file inside the root; `None` when it does not exist.
/// The rootfs is untrusted: a FIFO must not hang us (O_NONBLOCK, regular
/// files only) and an endless file must not fill memory (`limit`).
pub fn read_to_string(root: &Path, path: &str, limit: u64) -> std::io::Result<Option<String>> {
    use std::io::{Error, ErrorKind, Read};
    let root = std::fs::File::open(root)?;
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let file = match openat2(&root, relative(path), how(flags)) {
        Ok(fd) => std::fs::File::from(fd),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    if !file.metadata()?.is_file() {
        return Err(Error::new(ErrorKind::InvalidData, "not a regular file"));
    }
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(Some(text))
}

/// The path through which the kernel reaches what `fd` refers to.
pub fn fd_path(fd: &impl std::os::fd::AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> ScratchDir {
        let dir = ScratchDir::new(&format!("inroot-{name}"));
        std::fs::create_dir_all(dir.join("root/etc")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        dir
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = scratch("symlink");
        let root_path = dir.join("root");
        std::fs::write(dir.join("outside/secret"), "host").unwrap();
        std::fs::write(root_path.join("etc/secret"), "container").unwrap();
        // Both an absolute link and one climbing with .. land inside the root.
        symlink("/etc", root_path.join("abs")).unwrap();
        symlink("../../../../../etc", root_path.join("climb")).unwrap();
        for path in ["/abs/secret", "/climb/secret", "/../../etc/secret"] {
            let got = read_to_string(&root_path, path, 100).unwrap();
            assert_eq!(got.as_deref(), Some("container"), "{path}");
        }
        assert_eq!(read_to_string(&root_path, "/missing", 100).unwrap(), None);
        assert!(
            read_to_string(&root_path, "/etc/secret", 4).is_err(),
            "over the limit"
        );
        nix::unistd::mkfifo(&root_path.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            read_to_string(&root_path, "/fifo", 100).is_err(),
            "a FIFO is refused"
        );
    }

    #[test]
    fn creation_follows_links_only_within_the_root() {
        let dir = scratch("create");
        let root_path = dir.join("root");
        symlink(dir.join("outside"), root_path.join("escape")).unwrap();
        let root = std::fs::File::open(&root_path).unwrap();
        open_or_create(&root, "/escape/made/file", Kind::File).unwrap();
        // The absolute host path in the link was taken as a path in the root.
        let inside = root_path
            .join(dir.strip_prefix("/").unwrap())
            .join("outside/made/file");
        assert!(inside.is_file(), "{}", inside.display());
        assert!(!dir.join("outside/made").exists());
    }
}
