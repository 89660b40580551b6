//! Unpacks one layer tar into its own directory, whatever the tar holds.
//!
//! Nothing is ever written outside the layer directory: names are
//! normalized (`..` refused, leading `/` dropped), and every parent is
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so neither
//! a symlink planted by an earlier entry nor a hardlink can lead elsewhere.
//! Whiteouts become what overlayfs reads in `userxattr` mode: `.wh.NAME` a
//! 0/0 character device (which an unprivileged user may create) and
//! `.wh..wh..opq` the `user.overlay.opaque` xattr on its directory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};

use super::header_guard::HeaderGuard;
use crate::util::xattr;

/// Bounds that make a hostile layer fail cleanly instead of filling memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    pub max_name: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 2_000_000,
            max_name: 4096,
        }
    }
}

/// What an extraction did, for the user and the store.
#[derive(Debug, Default)]
pub struct Summary {
    pub entries: u64,
    /// Device nodes an unprivileged user cannot create.
    pub skipped_devices: u64,
    /// Extended attributes outside `user.*`, which we may not set.
    pub skipped_xattrs: u64,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Splits an archive name into safe components below the layer root.
fn normalize(name: &Path, limits: &Limits) -> Result<Vec<PathBuf>> {
    if name.as_os_str().len() > limits.max_name {
        bail!("an entry name is longer than {} bytes", limits.max_name);
    }
    let mut parts = vec![];
    for component in name.components() {
        match component {
            Component::Normal(part) => parts.push(PathBuf::from(part)),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                bail!("entry {} climbs out of the layer with ..", name.display())
            }
            Component::Prefix(_) => bail!("entry {} has a prefix", name.display()),
        }
    }
    Ok(parts)
}

fn beneath(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )
}

fn join(parts: &[PathBuf]) -> PathBuf {
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

/// The directory `parts` names, created (0755) where missing. Refuses to
/// pass through a symlink or a non-directory.
fn directory(root: &OwnedFd, parts: &[PathBuf]) -> Result<OwnedFd> {
    // Mostly it exists (an earlier entry made it): one lookup in the
    // kernel, however deep, instead of a step per level (a layer of
    // thousand-level paths must cost in proportion to its size).
    if !parts.is_empty() {
        if let Ok(fd) = openat2(
            root,
            &join(parts),
            beneath(OFlag::O_PATH | OFlag::O_DIRECTORY),
        ) {
            return Ok(fd);
        }
    }
    let mut current = openat2(root, ".", beneath(OFlag::O_PATH | OFlag::O_DIRECTORY))?;
    for (depth, part) in parts.iter().enumerate() {
        current = subdirectory(&current, part, || join(&parts[..=depth]))?;
    }
    Ok(current)
}

/// The directory `name` in `parent`, created (0755) where missing; `path`
/// names it for messages. Refuses a symlink or a non-directory there.
fn subdirectory(parent: &OwnedFd, name: &Path, path: impl Fn() -> PathBuf) -> Result<OwnedFd> {
    match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(err) => return Err(err).with_context(|| format!("creating {}", path().display())),
    }
    match openat2(parent, name, beneath(OFlag::O_PATH | OFlag::O_DIRECTORY)) {
        Ok(fd) => Ok(fd),
        Err(err) => {
            let is_link = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| {
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
                });
            let why = match (is_link, err) {
                (true, _) | (_, Errno::ELOOP) | (_, Errno::EXDEV) => {
                    "is a symbolic link".to_string()
                }
                (_, Errno::ENOTDIR) => "is not a directory".to_string(),
                (_, other) => other.to_string(),
            };
            bail!("{} {why}; refusing to write through it", path().display());
        }
    }
}

/// The directory of the previous entry, kept open: tar lists a directory's
/// entries together, so most entries skip the walk from the root.
#[derive(Default)]
struct ParentCache {
    parts: Vec<PathBuf>,
    fd: Option<Rc<OwnedFd>>,
}

impl ParentCache {
    fn get(&mut self, root: &OwnedFd, parts: &[PathBuf]) -> Result<Rc<OwnedFd>> {
        if let Some(fd) = &self.fd {
            // Entries never move a directory, only remove it (a later entry
            // replacing it): a directory still linked is still at `parts`.
            let linked = nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| st.st_nlink > 0);
            if linked && self.parts == parts {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(directory(root, parts)?);
        self.parts = parts.to_vec();
        self.fd = Some(fd.clone());
        Ok(fd)
    }
}

/// Removes whatever is at `name` so an entry can take its place (a later
/// entry for the same name wins, as in tar). Directories stay.
fn clear(parent: &OwnedFd, name: &OsStr, keep_directory: bool) -> Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) if keep_directory => Ok(()),
        Err(Errno::EISDIR) => {
            // A directory replaced by a non-directory: remove the tree.
            let path = parent_path(parent)?.join(name);
            crate::util::fs::remove_tree(&path)
        }
        Err(err) => Err(err).with_context(|| format!("replacing {}", Path::new(name).display())),
    }
}

fn parent_path(fd: &OwnedFd) -> Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).context("locating a directory")
}

/// Extracts `tar` into `root` (an empty directory). Directory modes and
/// times are applied at the end, so a read-only directory can still be
/// filled first.
pub fn unpack(tar: impl Read, root: &Path, limits: &Limits) -> Result<Summary> {
    extract(tar, root, limits, true)
}

/// Extracts a plain tar (not a layer: `.wh.` names are files like any)
/// into the directory `root`, which may hold files already: an entry
/// replaces what is there, a directory merges. As for a layer, nothing is
/// written outside `root`, and no symlink in it is followed (`cp`).
pub fn unpack_files(tar: impl Read, root: &Path, limits: &Limits) -> Result<Summary> {
    extract(tar, root, limits, false)
}

fn extract(tar: impl Read, root: &Path, limits: &Limits, layer: bool) -> Result<Summary> {
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", root.display()))?;
    let mut unpacker = Unpacker {
        root: root_fd,
        limits,
        parents: ParentCache::default(),
        directories: HashMap::new(),
        summary: Summary::default(),
        layer,
    };
    let mut archive = tar::Archive::new(HeaderGuard::new(tar));
    for entry in archive.entries().context("reading the layer")? {
        unpacker.entry(entry.context("reading a layer entry")?)?;
    }
    unpacker.finish_directories()?;
    Ok(unpacker.summary)
}

/// A directory's mode and time, which wait for the end of the layer.
struct PendingDirectory {
    mode: u32,
    mtime: i64,
}

/// One layer's extraction in progress.
struct Unpacker<'a> {
    root: OwnedFd,
    limits: &'a Limits,
    parents: ParentCache,
    /// By path below the layer root: a directory listed again takes the
    /// later entry's mode and time, and costs no more memory.
    directories: HashMap<PathBuf, PendingDirectory>,
    summary: Summary,
    /// A layer: overlay's markers (`.wh.` names) take their overlay form.
    layer: bool,
}

/// One entry, placed: its parent directory (open), its name there and its
/// name in the archive (for messages).
struct Place {
    parent: Rc<OwnedFd>,
    name: std::ffi::OsString,
    archive_name: PathBuf,
}

impl Place {
    fn describe(&self) -> String {
        self.archive_name.display().to_string()
    }
}

/// What creating an entry leaves to do.
enum Created {
    /// Its xattrs, mode and time (not following a symlink when it is one).
    Metadata { symlink: bool },
    /// Nothing: a hardlink shares its target's, a directory waits for the
    /// end, and what is skipped has none.
    Done,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        self.summary.entries += 1;
        if self.summary.entries > self.limits.max_entries {
            bail!(
                "the layer has more than {} entries",
                self.limits.max_entries
            );
        }
        let archive_name = entry.path().context("an entry name")?.into_owned();
        let parts = normalize(&archive_name, self.limits)?;
        let Some((file_name, parent_parts)) = parts.split_last() else {
            return Ok(()); // the root itself
        };
        let place = Place {
            parent: self.parents.get(&self.root, parent_parts)?,
            name: file_name.as_os_str().to_owned(),
            archive_name: archive_name.clone(),
        };
        if self.layer && self.overlay_marker(&place, parent_parts)? {
            return Ok(());
        }
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let created = match header.entry_type() {
            tar::EntryType::Directory => {
                clear(&place.parent, &place.name, true)?;
                let path = join(parent_parts).join(&place.name);
                subdirectory(&place.parent, Path::new(&place.name), || path.clone())?;
                self.directories
                    .insert(path, PendingDirectory { mode, mtime });
                Created::Done
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                create_file(&place, &mut entry)?
            }
            tar::EntryType::Symlink => self.create_symlink(&place, &header)?,
            tar::EntryType::Link => self.create_hardlink(&place, &header)?,
            tar::EntryType::Fifo => create_fifo(&place)?,
            tar::EntryType::Char | tar::EntryType::Block => {
                self.summary.skipped_devices += 1;
                Created::Done
            }
            // PAX and GNU metadata records are consumed by the tar reader.
            _ => Created::Done,
        };
        if let Created::Metadata { symlink } = created {
            self.apply_metadata(&place, &mut entry, symlink, mode, mtime)?;
        }
        Ok(())
    }

    /// Turns the overlay markers of the layer format into what overlayfs
    /// reads: `.wh..wh..opq` marks its directory opaque, `.wh.NAME` becomes
    /// a whiteout (a 0/0 character device) for NAME. True when the entry
    /// was one.
    fn overlay_marker(&self, place: &Place, parent_parts: &[PathBuf]) -> Result<bool> {
        let text = place.name.to_string_lossy();
        if text == OPAQUE_MARKER {
            set_xattr(&place.parent, None, xattr::OVERLAY_OPAQUE, b"y")
                .with_context(|| format!("marking {} opaque", join(parent_parts).display()))?;
            return Ok(true);
        }
        let Some(hidden) = text.strip_prefix(WHITEOUT_PREFIX) else {
            return Ok(false);
        };
        if hidden.starts_with(".wh.") {
            return Ok(true); // aufs bookkeeping (.wh..wh.plnk and the like)
        }
        // `.wh..` and `.wh...` would whiteout the directory itself or its
        // parent: removing what is there first would reach outside.
        if matches!(hidden, "" | "." | "..") || hidden.contains('/') {
            bail!(
                "the whiteout {} names {hidden:?}, which is no entry of its directory; \
                 refusing the layer",
                place.describe()
            );
        }
        clear(&place.parent, OsStr::new(hidden), false)?;
        mknodat(&place.parent, hidden, SFlag::S_IFCHR, Mode::empty(), 0).with_context(|| {
            format!(
                "creating the whiteout for {} (needs Linux 5.8 or later)",
                place.describe()
            )
        })?;
        Ok(true)
    }

    fn create_symlink(&self, place: &Place, header: &tar::Header) -> Result<Created> {
        let target = header
            .link_name()
            .context("a symlink target")?
            .context("a symlink without a target")?;
        if target.as_os_str().len() > self.limits.max_name {
            bail!(
                "the symlink {} has a target longer than {} bytes",
                place.describe(),
                self.limits.max_name
            );
        }
        clear(&place.parent, &place.name, false)?;
        symlinkat(
            target.as_ref(),
            place.parent.as_fd(),
            place.name.as_os_str(),
        )
        .with_context(|| format!("creating the symlink {}", place.describe()))?;
        Ok(Created::Metadata { symlink: true })
    }

    /// A hardlink to an earlier entry, found from the layer root again: its
    /// name may not lead outside the layer either.
    fn create_hardlink(&self, place: &Place, header: &tar::Header) -> Result<Created> {
        let target = header
            .link_name()
            .context("a hardlink target")?
            .context("a hardlink without a target")?;
        let target_parts = normalize(&target, self.limits)?;
        let Some((target_name, target_parent)) = target_parts.split_last() else {
            bail!("the hardlink {} points at the layer root", place.describe());
        };
        let source_dir = directory(&self.root, target_parent)?;
        clear(&place.parent, &place.name, false)?;
        linkat(
            &source_dir,
            target_name.as_path(),
            place.parent.as_ref(),
            place.name.as_os_str(),
            AtFlags::empty(),
        )
        .with_context(|| format!("linking {} to {}", place.describe(), target.display()))?;
        Ok(Created::Done)
    }

    /// The entry's `user.*` xattrs (others are counted and skipped: an
    /// unprivileged user may not set them), then its mode and time. The
    /// xattrs come first: a mode-000 file could not be opened after.
    fn apply_metadata<R: Read>(
        &mut self,
        place: &Place,
        entry: &mut tar::Entry<'_, R>,
        symlink: bool,
        mode: u32,
        mtime: i64,
    ) -> Result<()> {
        if let Some(extensions) = entry.pax_extensions().ok().flatten() {
            for extension in extensions.flatten() {
                let Some(key) = extension
                    .key()
                    .ok()
                    .and_then(|k| k.strip_prefix("SCHILY.xattr."))
                else {
                    continue;
                };
                if !symlink && key.starts_with("user.") {
                    set_xattr(
                        &place.parent,
                        Some(&place.name),
                        key,
                        extension.value_bytes(),
                    )
                    .with_context(|| format!("setting {key} on {}", place.describe()))?;
                } else {
                    self.summary.skipped_xattrs += 1;
                }
            }
        }
        if !symlink {
            fchmodat(
                place.parent.as_ref(),
                place.name.as_os_str(),
                Mode::from_bits_truncate(mode as _),
                FchmodatFlags::FollowSymlink,
            )
            .with_context(|| format!("setting the mode of {}", place.describe()))?;
        }
        let time = TimeSpec::new(mtime, 0);
        let flag = match symlink {
            true => UtimensatFlags::NoFollowSymlink,
            false => UtimensatFlags::FollowSymlink,
        };
        utimensat(
            place.parent.as_ref(),
            place.name.as_os_str(),
            &time,
            &time,
            flag,
        )
        .with_context(|| format!("setting the time of {}", place.describe()))?;
        Ok(())
    }

    /// The directories' modes and times, deepest first, so setting a
    /// parent's time is not undone by its child. Each is opened from the
    /// root in one lookup; one a later entry replaced is skipped.
    fn finish_directories(&mut self) -> Result<()> {
        let mut directories: Vec<(PathBuf, PendingDirectory)> =
            std::mem::take(&mut self.directories).into_iter().collect();
        directories.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        for (path, dir) in directories {
            let fd = match openat2(
                &self.root,
                &path,
                beneath(OFlag::O_RDONLY | OFlag::O_DIRECTORY),
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR) => continue,
                Err(err) => return Err(err).with_context(|| format!("opening {}", path.display())),
            };
            // The owner keeps write and search access, or the store could
            // not remove the layer later; the container sees the caller as
            // owner.
            let mode = dir.mode | 0o700;
            fchmod(&fd, Mode::from_bits_truncate(mode as _))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
            let time = TimeSpec::new(dir.mtime, 0);
            futimens(&fd, &time, &time)
                .with_context(|| format!("setting the time of {}", path.display()))?;
        }
        Ok(())
    }
}

fn create_file(place: &Place, content: &mut impl Read) -> Result<Created> {
    clear(&place.parent, &place.name, false)?;
    let fd = openat(
        place.parent.as_ref(),
        place.name.as_os_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .with_context(|| format!("creating {}", place.describe()))?;
    let mut file = std::fs::File::from(fd);
    std::io::copy(content, &mut file).with_context(|| format!("writing {}", place.describe()))?;
    Ok(Created::Metadata { symlink: false })
}

fn create_fifo(place: &Place) -> Result<Created> {
    clear(&place.parent, &place.name, false)?;
    mknodat(
        place.parent.as_ref(),
        place.name.as_os_str(),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .with_context(|| format!("creating the fifo {}", place.describe()))?;
    Ok(Created::Metadata { symlink: false })
}

/// Sets an xattr on `name` in `dir` (or on `dir` itself), never following
/// a symlink. Goes through /proc/self/fd because there is no `setxattrat`
/// before Linux 6.13.
fn set_xattr(dir: &OwnedFd, name: Option<&OsStr>, key: &str, value: &[u8]) -> Result<()> {
    let target = match name {
        Some(name) => openat2(dir, name, beneath(OFlag::O_RDONLY | OFlag::O_NONBLOCK))?,
        None => openat2(dir, ".", beneath(OFlag::O_RDONLY | OFlag::O_DIRECTORY))?,
    };
    crate::sys::fsetxattr(target.as_fd(), key, value).map_err(|errno| match errno {
        nix::errno::Errno::EOPNOTSUPP => anyhow::anyhow!(
            "{errno}: the store's file system keeps no user.* extended attributes, which \
             image layers need (tmpfs before Linux 6.6 is one): put the store \
             (XDG_DATA_HOME) on a disk file system"
        ),
        errno => errno.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    /// Builds a tar whose headers say exactly what we write, `..` included
    /// (tar::Builder refuses to write such names).
    struct RawTar(Vec<u8>);

    impl RawTar {
        fn new() -> Self {
            RawTar(vec![])
        }
        fn entry(
            mut self,
            name: &str,
            kind: tar::EntryType,
            link: &str,
            data: &[u8],
            mode: u32,
        ) -> Self {
            let mut header = tar::Header::new_gnu();
            header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(data.len() as u64);
            header.set_mtime(1_000_000);
            if !link.is_empty() {
                header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
            }
            header.set_cksum();
            self.0.extend_from_slice(header.as_bytes());
            self.0.extend_from_slice(data);
            self.0.resize(self.0.len().div_ceil(512) * 512, 0);
            self
        }
        fn file(self, name: &str, data: &str) -> Self {
            self.entry(name, tar::EntryType::Regular, "", data.as_bytes(), 0o644)
        }
        fn dir(self, name: &str, mode: u32) -> Self {
            self.entry(name, tar::EntryType::Directory, "", b"", mode)
        }
        fn link(self, name: &str, kind: tar::EntryType, target: &str) -> Self {
            self.entry(name, kind, target, b"", 0o777)
        }
        fn finish(mut self) -> Vec<u8> {
            self.0.extend_from_slice(&[0u8; 1024]);
            self.0
        }
    }

    fn scratch(name: &str) -> ScratchDir {
        let dir = ScratchDir::new(&format!("unpack-{name}"));
        std::fs::create_dir_all(dir.join("layer")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        dir
    }

    fn unpack_into(dir: &Path, tar: Vec<u8>) -> Result<Summary> {
        unpack(&tar[..], &dir.join("layer"), &Limits::default())
    }

    #[test]
    fn ordinary_layers_keep_files_links_modes_and_times() {
        let dir = scratch("ordinary");
        let tar = RawTar::new()
            .dir("./etc/", 0o755)
            .file("./etc/motd", "hello\n")
            .entry(
                "bin/tool",
                tar::EntryType::Regular,
                "",
                b"#!/bin/sh\n",
                0o4755,
            )
            .link("bin/alias", tar::EntryType::Symlink, "tool")
            .link("bin/hard", tar::EntryType::Link, "bin/tool")
            .dir("ro/", 0o555)
            .file("ro/inside", "x")
            .entry("pipe", tar::EntryType::Fifo, "", b"", 0o644)
            .entry("dev/null", tar::EntryType::Char, "", b"", 0o666)
            .file("etc/motd", "second wins\n")
            .finish();
        let summary = unpack_into(&dir, tar).unwrap();
        let layer = dir.join("layer");
        assert_eq!(
            std::fs::read_to_string(layer.join("etc/motd")).unwrap(),
            "second wins\n"
        );
        let tool = std::fs::metadata(layer.join("bin/tool")).unwrap();
        assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(tool.mtime(), 1_000_000);
        assert_eq!(
            std::fs::read_link(layer.join("bin/alias")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(
            std::fs::metadata(layer.join("bin/hard")).unwrap().ino(),
            tool.ino()
        );
        assert_eq!(
            std::fs::read_to_string(layer.join("ro/inside")).unwrap(),
            "x"
        );
        // Read-only for others, but the owner can still clean up.
        assert_eq!(
            std::fs::metadata(layer.join("ro"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        assert!(std::fs::metadata(layer.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(summary.skipped_devices, 1);
        assert!(!layer.join("dev/null").exists());
    }

    #[test]
    fn whiteouts_and_opaque_directories_take_overlay_form() {
        let dir = scratch("whiteout");
        let tar = RawTar::new()
            .dir("etc/", 0o755)
            .file("etc/.wh.removed", "")
            .dir("var/cache/", 0o755)
            .file("var/cache/.wh..wh..opq", "")
            .file("var/cache/kept", "k")
            .file(".wh..wh.plnk", "")
            .finish();
        unpack_into(&dir, tar).unwrap();
        let layer = dir.join("layer");
        let whiteout = std::fs::symlink_metadata(layer.join("etc/removed")).unwrap();
        assert!(whiteout.file_type().is_char_device());
        assert_eq!(whiteout.rdev(), 0);
        assert!(!layer.join("etc/.wh.removed").exists());
        assert_eq!(
            xattr::get(&layer.join("var/cache"), xattr::OVERLAY_OPAQUE).as_deref(),
            Some(&b"y"[..])
        );
        assert!(!layer.join("var/cache/.wh..wh..opq").exists());
        assert!(layer.join("var/cache/kept").exists());
        assert!(!layer.join(".wh..wh.plnk").exists());
    }

    #[test]
    fn a_directory_replaced_and_made_again_takes_new_entries() {
        let dir = scratch("remade");
        let tar = RawTar::new()
            .dir("a/", 0o755)
            .file("a/old", "1")
            .file("a", "now a file")
            .dir("a/", 0o755)
            .file("a/new", "2")
            .finish();
        unpack_into(&dir, tar).unwrap();
        let layer = dir.join("layer");
        assert_eq!(std::fs::read_to_string(layer.join("a/new")).unwrap(), "2");
        assert!(!layer.join("a/old").exists());
    }

    #[test]
    fn hostile_layers_write_nothing_outside() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "dotdot",
                RawTar::new().file("../outside/evil", "x").finish(),
                "climbs out",
            ),
            (
                "deep-dotdot",
                RawTar::new().file("a/../../outside/evil", "x").finish(),
                "climbs out",
            ),
            (
                "symlink-then-file",
                RawTar::new()
                    .link("escape", tar::EntryType::Symlink, "../outside")
                    .file("escape/evil", "x")
                    .finish(),
                "symbolic link",
            ),
            (
                "absolute-symlink-then-file",
                RawTar::new()
                    .link("escape", tar::EntryType::Symlink, "/tmp")
                    .file("escape/evil", "x")
                    .finish(),
                "symbolic link",
            ),
            (
                "hardlink-outside",
                RawTar::new()
                    .link("evil", tar::EntryType::Link, "../outside/secret")
                    .finish(),
                "climbs out",
            ),
            (
                "whiteout-of-the-parent",
                RawTar::new().file(".wh...", "").finish(),
                "no entry of its directory",
            ),
            (
                "whiteout-of-the-directory",
                RawTar::new().dir("a/", 0o755).file("a/.wh..", "").finish(),
                "no entry of its directory",
            ),
            (
                "hardlink-through-symlink",
                RawTar::new()
                    .link("up", tar::EntryType::Symlink, "../outside")
                    .link("evil", tar::EntryType::Link, "up/secret")
                    .finish(),
                "symbolic link",
            ),
        ];
        for (name, tar, message) in cases {
            let dir = scratch(name);
            std::fs::write(dir.join("outside/secret"), "secret").unwrap();
            let err = format!("{:#}", unpack_into(&dir, tar).unwrap_err());
            assert!(err.contains(message), "{name}: {err}");
            let outside: Vec<_> = std::fs::read_dir(dir.join("outside"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert_eq!(outside, vec![std::ffi::OsString::from("secret")], "{name}");
            assert_eq!(
                std::fs::read_to_string(dir.join("outside/secret")).unwrap(),
                "secret",
                "{name}"
            );
        }
    }

    #[test]
    fn absolute_names_land_inside() {
        let dir = scratch("absolute");
        unpack_into(&dir, RawTar::new().file("/etc/abs", "inside").finish()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("layer/etc/abs")).unwrap(),
            "inside"
        );
    }

    #[test]
    fn oversized_metadata_records_are_refused_before_reading() {
        let dir = scratch("longname");
        let mut header = tar::Header::new_gnu();
        header.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(1 << 40);
        header.set_cksum();
        // A terabyte promised, a few bytes delivered: the guard must stop at
        // the header, before anything tries to buffer it.
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(&[b'a'; 512]);
        let err = format!("{:#}", unpack_into(&dir, tar).unwrap_err());
        assert!(
            err.contains("metadata record claims 1099511627776 bytes"),
            "{err}"
        );
    }

    #[test]
    fn entry_count_is_bounded() {
        let dir = scratch("bomb");
        let mut tar = RawTar::new();
        for i in 0..20 {
            tar = tar.file(&format!("f{i}"), "");
        }
        let limits = Limits {
            max_entries: 10,
            max_name: 4096,
        };
        let err = unpack(&tar.finish()[..], &dir.join("layer"), &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 10 entries"), "{err}");
    }
}
