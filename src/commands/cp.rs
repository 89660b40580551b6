//! `rocker cp`: files between the host and a container (running or not),
//! with docker's path rules, or a tar stream on stdin or stdout (`-`).
//!
//! Everything inside the container is reached from a descriptor of its
//! root: paths are resolved with `openat2(RESOLVE_IN_ROOT)` (a symlink in
//! the container leads only within it), and what is read or written below
//! goes through descriptors that follow no symlink at all. The copy goes
//! as a tar: made from the source, unpacked at the destination by the same
//! extractor as image layers (modes kept, owners the caller's).

use std::ffi::OsStr;
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::stat::{fstat, SFlag};

use crate::cli::args::CpArgs;
use crate::container::record::{ContainerRecord, Containers, RootfsKind, State};
use crate::error::StatusError;
use crate::host::dirs::Dirs;
use crate::image::layer::unpack::{unpack_files, Limits};
use crate::rootfs::backing::container_dir::lower_count;
use crate::rootfs::backing::layer_tar::write_subtree;
use crate::rootfs::backing::tree::DirHandle;
use crate::rootfs::inroot;
use crate::runtime::container_root::{with_mounted_root, with_running_root};

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    Host(PathBuf),
    /// `-`: a tar on stdin or stdout.
    Stream,
    Container {
        name: String,
        path: String,
    },
}

/// docker's reading: `-`, a path that starts with `/` or `.`, or
/// `CONTAINER:PATH`; anything else is a host path.
fn side(text: &str) -> Side {
    if text == "-" {
        return Side::Stream;
    }
    if text.starts_with('/') || text.starts_with('.') {
        return Side::Host(PathBuf::from(text));
    }
    match text.split_once(':') {
        Some((name, path)) if !name.is_empty() => Side::Container {
            name: name.to_string(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_string()
            },
        },
        _ => Side::Host(PathBuf::from(text)),
    }
}

/// A path's last component and the rest; `/.` at the end means "the
/// contents of this directory".
struct Split {
    parent: String,
    name: String,
    contents: bool,
}

fn split(path: &str) -> Split {
    let contents = path.ends_with("/.") || path == ".";
    let trimmed = path.trim_end_matches("/.").trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        _ if trimmed.is_empty() || trimmed == "." => Split {
            parent: "/".into(),
            name: ".".into(),
            contents: true,
        },
        Some((parent, name)) => Split {
            parent: if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            name: name.into(),
            contents,
        },
        None => Split {
            parent: ".".into(),
            name: trimmed.into(),
            contents,
        },
    }
}

pub fn cp_command(args: CpArgs) -> Result<i32> {
    match (side(&args.source), side(&args.destination)) {
        (Side::Container { name, path }, destination @ (Side::Host(_) | Side::Stream)) => {
            let destination = match destination {
                Side::Host(path) => Some(path),
                _ => None,
            };
            with_container_root(&name, |root| {
                copy_out(root, &name, &path, destination.as_deref())
            })?;
        }
        (source @ (Side::Host(_) | Side::Stream), Side::Container { name, path }) => {
            with_container_root(&name, |root| copy_in(root, &source, &name, &path))?;
        }
        (Side::Container { .. }, Side::Container { .. }) => {
            bail!("copying between containers is not supported: copy to the host in between")
        }
        _ => bail!("one of SRC and DEST must be CONTAINER:PATH (or - for a tar stream)"),
    }
    Ok(0)
}

/// Runs `work` with a descriptor of the container's root as the container
/// sees it: a running one's through /proc (its volumes included), a
/// stopped one's mounted for the moment (see `runtime::offline_root`), a
/// copy-mode or `--rootfs` one's directory.
fn with_container_root(name: &str, work: impl FnOnce(BorrowedFd<'_>) -> Result<()>) -> Result<()> {
    let dirs = Dirs::discover()?;
    let containers = Containers::open(&dirs)?;
    let record = containers.find(name)?;
    let open_dir = |path: &Path| -> Result<OwnedFd> {
        nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("opening {}", path.display()))
    };
    if let State::Running(live) = containers.state(&record.id)? {
        // A pidfd checked against the recorded start time: the process
        // joined is the container's, not a reuse of its pid.
        let Some(init) = live.init.open() else {
            bail!("container {} stopped meanwhile", record.name);
        };
        return with_running_root(&init, live.init.pid, work);
    }
    let dir = containers.dir(&record.id);
    match record.rootfs_mode {
        RootfsKind::Directory => work(open_dir(Path::new(&record.image))?.as_fd()),
        RootfsKind::Copy => work(open_dir(&dir.join("rootfs"))?.as_fd()),
        RootfsKind::Overlay | RootfsKind::FuseOverlayfs => offline(&dirs, &record, &dir, work),
    }
}

fn offline(
    dirs: &Dirs,
    record: &ContainerRecord,
    dir: &Path,
    work: impl FnOnce(BorrowedFd<'_>) -> Result<()>,
) -> Result<()> {
    let mount_point =
        dirs.ensure_runtime()?
            .join(format!("cp-{}-{}", std::process::id(), &record.id[..12]));
    std::fs::create_dir(&mount_point)
        .with_context(|| format!("creating {}", mount_point.display()))?;
    let result = with_mounted_root(dir, lower_count(dir)?, &mount_point, work).with_context(|| {
        format!(
            "copying with the root of the stopped container {} (if this host cannot mount \
             overlay in a user namespace, start the container and copy then)",
            record.name
        )
    });
    let _ = std::fs::remove_dir(&mount_point);
    result
}

/// `/proc/self/fd/N`: the path of an open directory, for the extractor.
fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn is_dir(fd: &impl AsFd) -> bool {
    fstat(fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

fn no_such_path(container: &str, path: &str) -> anyhow::Error {
    StatusError::new(
        1,
        format!("no such file or directory in container {container}: {path}"),
    )
    .into()
}

/// A pipe: what one thread writes as a tar, another unpacks.
fn pipe() -> Result<(File, File)> {
    let (read, write) = nix::unistd::pipe().context("creating a pipe")?;
    Ok((File::from(read), File::from(write)))
}

/// Container to host (or to stdout, as a tar).
fn copy_out(
    root: BorrowedFd<'_>,
    container: &str,
    path: &str,
    destination: Option<&Path>,
) -> Result<()> {
    let source = split(path);
    let parent = match inroot::open(root, &source.parent) {
        Ok(fd) => DirHandle::from_fd(fd),
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Err(no_such_path(container, path)),
        Err(err) => return Err(err).with_context(|| format!("opening {path} in {container}")),
    };
    let name = OsStr::new(&source.name);
    let Some(stat) = parent.stat(name) else {
        return Err(no_such_path(container, path));
    };
    let source_is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let Some(destination) = destination else {
        if std::io::stdout().is_terminal() {
            bail!("refusing to write a tar to a terminal; redirect the output");
        }
        let top = if source.contents {
            PathBuf::new()
        } else {
            PathBuf::from(&source.name)
        };
        let out = std::io::BufWriter::new(std::io::stdout().lock());
        write_subtree(&parent, name, &top, out)?;
        return Ok(());
    };
    let (into, top) = host_target(destination, source_is_dir, source.contents, &source.name)?;
    let (reader, writer) = pipe()?;
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            write_subtree(&parent, name, &top, std::io::BufWriter::new(writer)).map(drop)
        });
        let unpacked = unpack_files(reader, &into, &Limits::default());
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reading thread panicked")));
        produced.and(unpacked.map(drop))
    })
    .with_context(|| format!("copying {container}:{path} to {}", destination.display()))
}

/// docker's rules for where a copy lands on the host: the directory to
/// unpack in, and the name the source takes there (empty: its contents).
fn host_target(
    destination: &Path,
    source_is_dir: bool,
    contents: bool,
    name: &str,
) -> Result<(PathBuf, PathBuf)> {
    let text = destination.to_string_lossy();
    match std::fs::metadata(destination) {
        Ok(meta) if meta.is_dir() => Ok((
            destination.to_path_buf(),
            if contents {
                PathBuf::new()
            } else {
                PathBuf::from(name)
            },
        )),
        Ok(_) if source_is_dir => bail!("cannot copy a directory onto the file {text}"),
        Ok(_) => landing_beside(destination),
        Err(_) if text.ends_with('/') && !source_is_dir => {
            bail!("the destination directory {text} does not exist")
        }
        Err(_) => landing_beside(destination),
    }
}

/// A destination that is not a directory: the source lands in its parent
/// under its name.
fn landing_beside(destination: &Path) -> Result<(PathBuf, PathBuf)> {
    let name = destination
        .file_name()
        .with_context(|| format!("{} names no file", destination.display()))?;
    let parent = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!(
            "the destination directory {} does not exist",
            parent.display()
        );
    }
    Ok((parent, PathBuf::from(name)))
}

/// Host (or a tar on stdin) to container.
fn copy_in(root: BorrowedFd<'_>, source: &Side, container: &str, path: &str) -> Result<()> {
    let target = match inroot::open(root, path) {
        Ok(fd) => Some(fd),
        Err(Errno::ENOENT) => None,
        Err(err) => return Err(err).with_context(|| format!("opening {path} in {container}")),
    };
    let Side::Host(host) = source else {
        // A tar stream goes into a directory that exists.
        let Some(dir) = target.filter(is_dir) else {
            bail!(
                "the destination {container}:{path} must be an existing directory for a tar stream"
            );
        };
        unpack_files(std::io::stdin().lock(), &fd_path(&dir), &Limits::default())?;
        return Ok(());
    };
    let meta =
        std::fs::symlink_metadata(host).with_context(|| format!("reading {}", host.display()))?;
    let from = split(&host.to_string_lossy());
    let (into, top) = match target {
        Some(dir) if is_dir(&dir) => (
            dir,
            if from.contents {
                PathBuf::new()
            } else {
                PathBuf::from(&from.name)
            },
        ),
        Some(_) if meta.is_dir() => {
            bail!("cannot copy a directory onto the file {container}:{path}")
        }
        None if path.ends_with('/') && !meta.is_dir() => {
            bail!("the destination directory {container}:{path} does not exist")
        }
        _ => {
            let to = split(path);
            let parent = inroot::open(root, &to.parent)
                .ok()
                .filter(is_dir)
                .with_context(|| {
                    format!(
                        "the destination directory {container}:{} does not exist",
                        to.parent
                    )
                })?;
            (parent, PathBuf::from(&to.name))
        }
    };
    let (reader, writer) = pipe()?;
    let from_path = host.clone();
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> Result<()> {
            let host = from_path;
            let mut tar = tar::Builder::new(std::io::BufWriter::new(writer));
            tar.follow_symlinks(false);
            if meta.is_dir() {
                let top = if top.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    top
                };
                tar.append_dir_all(&top, &host)?;
            } else {
                tar.append_path_with_name(&host, &top)?;
            }
            tar.into_inner()?;
            Ok(())
        });
        let unpacked = unpack_files(reader, &fd_path(&into), &Limits::default());
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reading thread panicked")));
        produced.and(unpacked.map(drop))
    })
    .with_context(|| format!("copying {} to {container}:{path}", host.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_as_docker_reads_them() {
        assert_eq!(side("-"), Side::Stream);
        assert_eq!(side("./a:b"), Side::Host("./a:b".into()));
        assert_eq!(side("/tmp/x"), Side::Host("/tmp/x".into()));
        assert_eq!(
            side("web:/etc/hosts"),
            Side::Container {
                name: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(side("file"), Side::Host("file".into()));
    }

    #[test]
    fn paths_split_with_their_contents_mark() {
        let s = split("/srv/site/.");
        assert_eq!(
            (s.parent.as_str(), s.name.as_str(), s.contents),
            ("/srv", "site", true)
        );
        let s = split("/srv/site/");
        assert_eq!(
            (s.parent.as_str(), s.name.as_str(), s.contents),
            ("/srv", "site", false)
        );
        let s = split("/etc");
        assert_eq!((s.parent.as_str(), s.name.as_str()), ("/", "etc"));
        let s = split("/");
        assert_eq!((s.name.as_str(), s.contents), (".", true));
        let s = split("site");
        assert_eq!((s.parent.as_str(), s.name.as_str()), (".", "site"));
    }
}
