//! Carries out a mount plan inside the container's fresh mount namespace and
//! makes the rootfs its `/`.
//!
//! Runs in the child, after the id maps are written (mounting needs the
//! capabilities the user namespace grants) and before anything of the
//! container runs. Every destination is resolved inside the rootfs (see
//! `inroot`), so a hostile image cannot point a mount at a host path.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, AtFlags, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{chdir, fchdir, pivot_root, symlinkat};

use crate::rootfs::backing::container_dir;
use crate::rootfs::inroot::{self, fd_path, Kind};
use crate::rootfs::plan::{GeneratedFiles, MountOp};
use crate::spec::Rootfs;
use crate::sys;

const NONE: Option<&str> = None;

/// What a volatile overlay mount leaves in the container dir (see
/// `mount_overlay`).
const VOLATILE_MARK: &str = "work/work/incompat";

/// Makes every mount of this (new) mount namespace private: nothing
/// mounted from here on may propagate back to the caller's.
pub fn make_mounts_private() -> Result<()> {
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .context("making the container's mounts private")
}

/// Room the container has to grow its generated /etc files.
const GENERATED_FILES_ROOM: usize = 1 << 20;

/// The generated /etc files belong to the runtime dir, often a small tmpfs
/// shared with the user's session: the container must not fill it. They
/// are written, from the contents composed before the clone, onto a tmpfs
/// of their own, a little larger than they are, mounted over their
/// directory in the container's mount namespace alone (call after
/// `make_mounts_private`); the binds of the plan then take them from there.
pub fn confine_generated_files(files: &GeneratedFiles) -> Result<()> {
    let size = files.confined.iter().map(|(_, c)| c.len()).sum::<usize>() + GENERATED_FILES_ROOM;
    mount(
        Some("tmpfs"),
        &files.dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("size={size},mode=0755").as_str()),
    )
    .with_context(|| format!("mounting a tmpfs on {}", files.dir.display()))?;
    write_confined_files(files)
}

/// Writes the generated files of their own dir: in the container's mount
/// namespace onto its tmpfs (above), in the monitor's the copies that
/// `inspect` names. One writer for both, so the two cannot differ.
pub fn write_confined_files(files: &GeneratedFiles) -> Result<()> {
    for (path, content) in &files.confined {
        std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// With `-t`: the container's pty as its /dev/console too, as runc has
/// it. Call after pivoting, while mounts are still allowed: /dev is the
/// container's own tmpfs, so the path is ours.
pub fn bind_console(slave: &OwnedFd) -> Result<()> {
    let console = Path::new("/dev/console");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(console)
        .context("creating /dev/console")?;
    mount(
        Some(fd_path(slave).as_str()),
        console,
        NONE,
        MsFlags::MS_BIND,
        NONE,
    )
    .context("binding the pty on /dev/console")
}

/// Mounts what the rootfs is made of on its mount point: the kernel
/// overlay, or fuse-overlayfs's mount, which `await_fuse_mount` waits for
/// once the mount point is ready for it (someone else starts the helper).
/// A plain directory needs nothing.
pub fn mount_backing(source: &Rootfs, await_fuse_mount: impl FnOnce() -> Result<()>) -> Result<()> {
    match source {
        Rootfs::KernelOverlay {
            dir,
            layers,
            mount_point,
            volatile,
        } => mount_overlay(dir, *layers, mount_point, *volatile),
        Rootfs::FuseOverlay { mount_point, .. } => {
            receive_fuse_mount(mount_point, await_fuse_mount)
        }
        Rootfs::Directory(_) => Ok(()),
    }
}

/// Mounts everything `plan` says onto `rootfs` (already mounted, see
/// `mount_backing`), then pivots into it. On return the process's root and
/// working directory are the container's `/` and the host's tree is no
/// longer reachable.
pub fn enter(rootfs: &Path, plan: &[MountOp], read_only: bool) -> Result<()> {
    // pivot_root needs the new root to be a mount point of its own.
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .with_context(|| format!("bind-mounting the rootfs {}", rootfs.display()))?;
    let root = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening the rootfs {}", rootfs.display()))?;
    refuse_symlinked_mount_points(&root)?;

    for op in plan {
        apply(&root, op).with_context(|| op.to_string())?;
    }
    if read_only {
        make_read_only(&root, false).context("making the root file system read-only")?;
    }

    // pivot_root(".", ".") stacks the old root on top of the new one; the
    // detach then drops it, and with it every path to the host's tree.
    fchdir(&root).context("entering the rootfs")?;
    match pivot_root(".", ".") {
        Ok(()) => {}
        // The kernel refuses to pivot away from the initial ramfs. A
        // chroot instead would leave the host's tree a chroot escape away
        // from a container root holding CAP_SYS_CHROOT: fail, saying why.
        Err(nix::errno::Errno::EINVAL)
            if std::fs::read_to_string("/proc/self/mountinfo")
                .is_ok_and(|text| root_is_initramfs(&text)) =>
        {
            bail!(
                "this host's root file system is the initial ramfs (rootfs), which the kernel \
                 will not pivot_root away from; boot into a real root (switch_root to a tmpfs \
                 or a disk, as most distributions' initramfs do) to run containers"
            )
        }
        Err(err) => return Err(err).context("pivot_root into the rootfs"),
    }
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    chdir("/").context("changing to the new root")?;
    Ok(())
}

/// Whether mountinfo `text` shows `/` on the initial ramfs (`rootfs`).
fn root_is_initramfs(text: &str) -> bool {
    text.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields.iter().position(|f| *f == "-");
        let mount_point = fields.get(4).copied();
        let fstype = separator.and_then(|i| fields.get(i + 1)).copied();
        mount_point == Some("/") && fstype == Some("rootfs")
    })
}

/// Mounts the image's layers and the container's upper dir on
/// `mount_point`. The options name the layers by short relative links
/// (`lN`), so the working directory must be the container's dir while
/// mounting.
pub fn mount_overlay(dir: &Path, layers: usize, mount_point: &Path, volatile: bool) -> Result<()> {
    chdir(dir).with_context(|| format!("entering {}", dir.display()))?;
    // A volatile mount leaves `incompat/volatile` in the work dir, and the
    // kernel refuses to mount that upper dir again while it is there. Only
    // a `--rm` container is mounted so, and it is mounted again only after
    // a start that failed before its command ran (`create --rm`, then
    // `start` twice, or `cp` in between): what the first mount left may go.
    crate::util::fs::remove_tree(&dir.join(VOLATILE_MARK))
        .context("clearing the mark of an earlier volatile mount")?;
    let options = container_dir::overlay_options(layers, volatile);
    mount(
        Some("overlay"),
        mount_point,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .with_context(|| {
        format!(
            "mounting overlayfs of {} on {}",
            dir.display(),
            mount_point.display(),
        )
    })
}

/// fuse-overlayfs mounts in a mount namespace of its own (copied from
/// this one), out of reach of our pivot_root. Its mount reaches us through
/// a shared mount point, made here for the purpose and made private again
/// as soon as the mount has arrived.
fn receive_fuse_mount(merged: &Path, await_mount: impl FnOnce() -> Result<()>) -> Result<()> {
    mount(Some(merged), merged, NONE, MsFlags::MS_BIND, NONE)
        .with_context(|| format!("bind-mounting {}", merged.display()))?;
    mount(NONE, merged, NONE, MsFlags::MS_SHARED, NONE)
        .with_context(|| format!("sharing {}", merged.display()))?;
    await_mount()?;
    mount(
        NONE,
        merged,
        NONE,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        NONE,
    )
    .with_context(|| format!("making {} private", merged.display()))?;
    Ok(())
}

/// A rootfs whose /proc, /dev, /sys or /dev/null is a symlink could steer
/// our mounts (CVE-2019-19921 and its kin). Resolution inside the root
/// already keeps them in the rootfs, but such an image is hostile or broken:
/// refuse it outright.
fn refuse_symlinked_mount_points(root: &OwnedFd) -> Result<()> {
    for path in ["proc", "dev", "sys", "dev/null"] {
        match fstatat(root, path, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat)
                if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK =>
            {
                bail!("the rootfs's /{path} is a symbolic link; refusing to mount over it")
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_directory(fd: &OwnedFd) -> Result<bool> {
    let stat = fstat(fd).context("stat")?;
    Ok(SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// Carries out one step of the plan, resolving its paths inside `root`.
fn apply(root: &OwnedFd, op: &MountOp) -> Result<()> {
    match op {
        MountOp::Filesystem {
            fstype,
            destination,
            flags,
            data,
        } => match mount_filesystem(root, fstype, destination, *flags, data) {
            Err(err) if is_refused(&err) && *fstype == "proc" => Err(masked_proc(err)),
            // Inside another container, whose /sys has masked paths: the
            // caller's /sys, read-only, as crun and podman fall back to.
            Err(err) if is_refused(&err) && *fstype == "sysfs" => {
                bind(root, Path::new("/sys"), destination, true, true)
            }
            other => other,
        },
        MountOp::Bind {
            source,
            destination,
            recursive,
            read_only,
        } => bind(root, source, destination, *recursive, *read_only),
        MountOp::Symlink { target, link } => make_symlink(root, target, link),
        MountOp::Mask { path } => mask(root, path),
        MountOp::ReadOnly { path } => make_path_read_only(root, path),
        MountOp::Sysctl { key, value } => write_sysctl(root, key, value),
        MountOp::SeedVolume { data, marker, path } => seed_volume(root, data, marker, path),
    }
}

/// A volume's first mount: what the container has at `path` (a
/// directory), copied into the empty volume `data`, as docker does; the
/// marker goes after, so a volume is filled once, whatever it holds later.
/// Nothing runs in the container yet, so its tree holds still meanwhile.
fn seed_volume(root: &OwnedFd, data: &Path, marker: &Path, path: &str) -> Result<()> {
    if !marker.exists() {
        return Ok(());
    }
    let source = match open_existing(root, path)? {
        Some(fd) if is_directory(&fd)? => Some(fd),
        _ => None,
    };
    let empty = std::fs::read_dir(data)
        .with_context(|| format!("reading {}", data.display()))?
        .next()
        .is_none();
    if let (Some(source), true) = (source, empty) {
        let from = PathBuf::from(fd_path(&source));
        crate::rootfs::backing::copy::copy_into(&from, data)?;
    }
    match std::fs::remove_file(marker) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", marker.display()))
        }
        _ => Ok(()),
    }
}

fn is_refused(err: &anyhow::Error) -> bool {
    err.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::EPERM)
}

/// A refused proc mount, explained when the /proc rocker runs under is a
/// container's, masked (see `host::nested`).
fn masked_proc(err: anyhow::Error) -> anyhow::Error {
    let masked = crate::host::nested::masked_proc_paths();
    if masked.is_empty() {
        return err;
    }
    let shown: Vec<&str> = masked.iter().take(3).map(String::as_str).collect();
    err.context(format!(
        "the kernel refuses a new /proc here, since the /proc rocker runs under has masked \
         paths ({}{}), as a container's has: {}",
        shown.join(", "),
        if masked.len() > 3 { ", ..." } else { "" },
        crate::host::nested::MASKED_PROC_FIX
    ))
}

/// `--sysctl KEY=VALUE`: the file under the container's /proc/sys.
fn write_sysctl(root: &OwnedFd, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let file = inroot::open(root, &path)
        .with_context(|| format!("--sysctl {key}: the kernel has no {path}"))?;
    std::fs::write(inroot::fd_path(&file), value).with_context(|| {
        format!("--sysctl {key}={value}: the kernel refuses it in the container's namespaces")
    })
}

fn mount_filesystem(
    root: &OwnedFd,
    fstype: &str,
    destination: &str,
    flags: MsFlags,
    data: &str,
) -> Result<()> {
    let target = inroot::open_or_create(root, destination, Kind::Directory)?;
    let data = (!data.is_empty()).then_some(data);
    mount(
        Some(fstype),
        fd_path(&target).as_str(),
        Some(fstype),
        flags,
        data,
    )?;
    Ok(())
}

fn bind(
    root: &OwnedFd,
    source: &Path,
    destination: &str,
    recursive: bool,
    read_only: bool,
) -> Result<()> {
    let kind = match std::fs::metadata(source) {
        Ok(meta) if meta.is_dir() => Kind::Directory,
        Ok(_) => Kind::File,
        Err(err) => return Err(err).context(format!("{}", source.display())),
    };
    let target = inroot::open_or_create(root, destination, kind)?;
    let mut flags = MsFlags::MS_BIND;
    flags.set(MsFlags::MS_REC, recursive);
    mount(Some(source), fd_path(&target).as_str(), NONE, flags, NONE)?;
    if read_only {
        // Reopen: the old descriptor still names what lies beneath.
        let mounted = inroot::open(root, destination)?;
        make_read_only(&mounted, recursive)?;
    }
    Ok(())
}

fn make_symlink(root: &OwnedFd, target: &str, link: &str) -> Result<()> {
    let link = Path::new(link);
    let parent = link.parent().map_or("/".into(), |p| p.to_string_lossy());
    let parent = inroot::open_or_create(root, &parent, Kind::Directory)?;
    let name = link.file_name().context("symlink without a name")?;
    symlinkat(target, parent.as_fd(), name)?;
    Ok(())
}

/// Hides `path`: an empty read-only tmpfs over a directory, /dev/null over
/// anything else. A path the rootfs lacks needs no hiding.
fn mask(root: &OwnedFd, path: &str) -> Result<()> {
    let Some(target) = open_existing(root, path)? else {
        return Ok(());
    };
    if is_directory(&target)? {
        mount(
            Some("tmpfs"),
            fd_path(&target).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=0555"),
        )?;
    } else {
        mount(
            Some("/dev/null"),
            fd_path(&target).as_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )?;
    }
    Ok(())
}

/// Binds `path` onto itself and makes that mount read-only (missing paths
/// are skipped).
fn make_path_read_only(root: &OwnedFd, path: &str) -> Result<()> {
    let Some(target) = open_existing(root, path)? else {
        return Ok(());
    };
    let target_path = fd_path(&target);
    mount(
        Some(target_path.as_str()),
        target_path.as_str(),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )?;
    let mounted = inroot::open(root, path)?;
    make_read_only(&mounted, true)
}

/// Read-only mounts use mount_setattr(2), which changes only that flag: a
/// plain remount would also have to repeat every flag the user namespace
/// locked, and cannot act on a whole tree.
fn make_read_only(mount_root: &OwnedFd, recursive: bool) -> Result<()> {
    match sys::mount_setattr_readonly(mount_root.as_fd(), recursive) {
        Err(nix::errno::Errno::ENOSYS) => {
            bail!("read-only mounts need Linux 5.12 or later (mount_setattr)")
        }
        other => Ok(other?),
    }
}

fn open_existing(root: &OwnedFd, path: &str) -> Result<Option<OwnedFd>> {
    match inroot::open(root, path) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_initramfs_root_is_told_apart() {
        let initramfs = "1 1 0:1 / / rw - rootfs rootfs rw,size=1024k\n";
        let disk = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    25 22 0:22 / /proc rw - proc proc rw\n";
        assert!(root_is_initramfs(initramfs));
        assert!(!root_is_initramfs(disk));
    }
}
