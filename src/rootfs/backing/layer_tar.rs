//! A container's files as a tar: its writes as a new image layer (commit:
//! the upper dir, whiteouts and opaque directories turned back into
//! `.wh.` entries) or its whole root as the container sees it (export: the
//! upper dir over the image's layers, merged as overlay merges them).
//!
//! Owners are the image's, not the caller's: a file of a layer gets the
//! owner its layer's tar gave it (`image::layer::owners`), a file the
//! container changed keeps the owner of the file it copied, and a file it
//! made belongs to the container's user.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use nix::sys::stat::{FileStat, SFlag};

use super::layers::providing_layer;
use super::tree::{is_whiteout, kind, DirHandle};
use crate::image::digest::Digest;
use crate::image::layer::owners::{layer_owners, Owner, Owners};
use crate::image::store::Store;

const OPAQUE_MARKER: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

/// Who the files of a container belong to, in the image's terms.
pub struct Ownership<'a> {
    store: &'a Store,
    /// The image's layer directories, bottom first.
    layers: Vec<PathBuf>,
    owners: RefCell<HashMap<PathBuf, Rc<Owners>>>,
    /// The owner of what the container made: its user.
    created: Owner,
}

impl<'a> Ownership<'a> {
    pub fn new(store: &'a Store, layers: Vec<PathBuf>, uid: u32, gid: u32) -> Ownership<'a> {
        Ownership {
            store,
            layers,
            owners: RefCell::new(HashMap::new()),
            created: Owner {
                uid: uid.into(),
                gid: gid.into(),
                mode: None,
            },
        }
    }

    /// The owner layer directory `layer` gives `path`.
    fn in_layer(&self, layer: &Path, path: &str) -> Result<Owner> {
        if let Some(owners) = self.owners.borrow().get(layer) {
            return Ok(owners.get(path).copied().unwrap_or(Owner::ROOT));
        }
        let hex = layer.file_name().map(|n| n.to_string_lossy().into_owned());
        let owners = match hex.and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok()) {
            Some(diff_id) => Rc::new(layer_owners(self.store, &diff_id)?),
            None => Rc::new(Owners::new()),
        };
        let owner = owners.get(path).copied().unwrap_or(Owner::ROOT);
        self.owners.borrow_mut().insert(layer.to_path_buf(), owners);
        Ok(owner)
    }

    /// The owner of `path` in the container's own writes: the image file's
    /// it was copied from, else the container user's.
    fn in_writes(&self, path: &str) -> Result<Owner> {
        match providing_layer(&self.layers, path) {
            Some(layer) => self.in_layer(&layer, path),
            None => Ok(self.created),
        }
    }
}

/// The tar being written, with the hard links met so far.
struct TarWriter<W: Write> {
    tar: tar::Builder<W>,
    /// (device, inode) -> the archive path written for it first.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> TarWriter<W> {
    fn new(out: W) -> TarWriter<W> {
        TarWriter {
            tar: tar::Builder::new(out),
            links: HashMap::new(),
        }
    }

    fn header(stat: &FileStat, owner: Owner, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        let mode = stat.st_mode & 0o7777;
        // The image's own mode where extraction widened it.
        let mode = match owner.mode {
            Some(original) if mode == original | 0o700 => original,
            _ => mode,
        };
        header.set_mode(mode);
        header.set_uid(owner.uid);
        header.set_gid(owner.gid);
        header.set_mtime(stat.st_mtime.max(0) as u64);
        header.set_size(0);
        header
    }

    /// `name` of `dir`, as `path` in the archive.
    fn entry(
        &mut self,
        dir: &DirHandle,
        name: &OsStr,
        stat: &FileStat,
        path: &Path,
        owner: Owner,
    ) -> Result<()> {
        let context = || format!("adding {} to the archive", path.display());
        match kind(stat) {
            SFlag::S_IFDIR => {
                let mut header = Self::header(stat, owner, tar::EntryType::Directory);
                self.tar
                    .append_data(&mut header, path, std::io::empty())
                    .with_context(context)?;
            }
            SFlag::S_IFREG => {
                if stat.st_nlink > 1 {
                    let key = (stat.st_dev, stat.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let mut header = Self::header(stat, owner, tar::EntryType::Link);
                        self.tar
                            .append_link(&mut header, path, first.clone())
                            .with_context(context)?;
                        return Ok(());
                    }
                    self.links.insert(key, path.to_path_buf());
                }
                let mut header = Self::header(stat, owner, tar::EntryType::Regular);
                let size = stat.st_size.max(0) as u64;
                header.set_size(size);
                let Some(file) = dir.open_file(name)? else {
                    return Ok(()); // removed since it was listed
                };
                // Exactly `size` bytes, whatever a running container does
                // to the file meanwhile: cut, or padded with zeros.
                let content = file.take(size).chain(std::io::repeat(0)).take(size);
                self.tar
                    .append_data(&mut header, path, content)
                    .with_context(context)?;
            }
            SFlag::S_IFLNK => {
                let Some(target) = dir.readlink(name)? else {
                    return Ok(());
                };
                let mut header = Self::header(stat, owner, tar::EntryType::Symlink);
                self.tar
                    .append_link(&mut header, path, Path::new(&target))
                    .with_context(context)?;
            }
            SFlag::S_IFIFO => {
                let mut header = Self::header(stat, owner, tar::EntryType::Fifo);
                self.tar
                    .append_data(&mut header, path, std::io::empty())
                    .with_context(context)?;
            }
            // Devices cannot be made unprivileged, and sockets are no
            // content.
            _ => {}
        }
        Ok(())
    }

    /// An empty root-owned file: a whiteout or an opaque marker.
    fn marker(&mut self, path: &Path) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        header.set_mtime(0);
        self.tar
            .append_data(&mut header, path, std::io::empty())
            .with_context(|| format!("adding {} to the archive", path.display()))
    }

    fn finish(self) -> Result<W> {
        self.tar.into_inner().context("finishing the archive")
    }
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The container's writes in `upper` as an image layer, into `out`.
pub fn write_changes<W: Write>(upper: &Path, ownership: &Ownership<'_>, out: W) -> Result<W> {
    let mut writer = TarWriter::new(out);
    let root = DirHandle::open(upper)?;
    changes_below(&mut writer, &root, Path::new(""), ownership)?;
    writer.finish()
}

fn changes_below<W: Write>(
    writer: &mut TarWriter<W>,
    dir: &DirHandle,
    path: &Path,
    ownership: &Ownership<'_>,
) -> Result<()> {
    for (name, stat) in dir.entries()? {
        let child = path.join(&name);
        if is_whiteout(&stat) {
            let mut marker = OsString::from(WHITEOUT_PREFIX);
            marker.push(&name);
            writer.marker(&path.join(marker))?;
            continue;
        }
        // fuse-overlayfs, where it cannot make devices, writes the
        // whiteouts and opaque markers of the layer format itself.
        if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            writer.marker(&child)?;
            continue;
        }
        let owner = ownership.in_writes(&text(&child))?;
        writer.entry(dir, &name, &stat, &child, owner)?;
        if kind(&stat) == SFlag::S_IFDIR {
            if let Some(sub) = dir.subdir(&name)? {
                if sub.is_opaque() {
                    writer.marker(&child.join(OPAQUE_MARKER))?;
                }
                changes_below(writer, &sub, &child, ownership)?;
            }
        }
    }
    Ok(())
}

/// What a copy-mode container changed: found by comparing its root with
/// the image's layers (type, mode, size, times to the nanosecond, link
/// targets: the copy keeps them all, so an unchanged file matches).
enum CopyChange {
    Entry,
    Deleted,
}

/// A copy-mode container's writes (its `rootfs/` against the image's
/// layers) as an image layer, into `out`.
pub fn write_copy_changes<W: Write>(rootfs: &Path, ownership: &Ownership<'_>, out: W) -> Result<W> {
    let root = DirHandle::open(rootfs)?;
    let mut changes = vec![];
    copy_changes_below(&root, Path::new(""), ownership, false, &mut changes)?;
    let mut writer = TarWriter::new(out);
    // Every change comes after its parent directories, as in any layer.
    let mut written = std::collections::HashSet::new();
    for (path, change) in changes {
        let ancestors: Vec<PathBuf> = path
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .collect();
        for ancestor in ancestors.into_iter().rev() {
            if written.insert(ancestor.clone()) {
                write_from(&mut writer, &root, &ancestor, ownership)?;
            }
        }
        match change {
            CopyChange::Entry => {
                if written.insert(path.clone()) {
                    write_from(&mut writer, &root, &path, ownership)?;
                }
            }
            CopyChange::Deleted => {
                let mut marker = OsString::from(WHITEOUT_PREFIX);
                marker.push(path.file_name().unwrap_or_default());
                writer.marker(&path.with_file_name(marker))?;
            }
        }
    }
    writer.finish()
}

/// Writes the entry at `path` under `root`, reached without following a
/// symlink; an entry gone meanwhile is left out.
fn write_from<W: Write>(
    writer: &mut TarWriter<W>,
    root: &DirHandle,
    path: &Path,
    ownership: &Ownership<'_>,
) -> Result<()> {
    let mut parent: Option<DirHandle> = None;
    let components: Vec<&OsStr> = path.iter().collect();
    let Some((name, dirs)) = components.split_last() else {
        return Ok(());
    };
    for dir in dirs {
        let next = parent.as_ref().unwrap_or(root).subdir(dir)?;
        match next {
            Some(next) => parent = Some(next),
            None => return Ok(()),
        }
    }
    let dir = parent.as_ref().unwrap_or(root);
    let Some(stat) = dir.stat(name) else {
        return Ok(());
    };
    let owner = ownership.in_writes(&text(path))?;
    writer.entry(dir, name, &stat, path, owner)
}

/// Whether the root's entry differs from the image's.
fn differs(
    dir: &DirHandle,
    name: &OsStr,
    stat: &FileStat,
    layer: &Path,
    path: &Path,
    image: &std::fs::Metadata,
) -> bool {
    use std::os::unix::fs::MetadataExt;
    if stat.st_mode != image.mode()
        || stat.st_mtime != image.mtime()
        || stat.st_mtime_nsec != image.mtime_nsec()
    {
        return true;
    }
    match kind(stat) {
        SFlag::S_IFREG => stat.st_size != image.size() as i64,
        SFlag::S_IFLNK => {
            dir.readlink(name).ok().flatten()
                != std::fs::read_link(layer.join(path))
                    .ok()
                    .map(PathBuf::into_os_string)
        }
        _ => false,
    }
}

fn copy_changes_below(
    dir: &DirHandle,
    path: &Path,
    ownership: &Ownership<'_>,
    all_new: bool,
    changes: &mut Vec<(PathBuf, CopyChange)>,
) -> Result<()> {
    let entries = dir.entries()?;
    for (name, stat) in &entries {
        let child = path.join(name);
        let image = (!all_new)
            .then(|| super::layers::visible_entry(&ownership.layers, &text(&child)))
            .flatten();
        let new_here = image.is_none();
        let changed = match &image {
            None => true,
            Some((layer, meta)) => differs(dir, name, stat, layer, &child, meta),
        };
        if changed {
            changes.push((child.clone(), CopyChange::Entry));
        }
        let image_is_dir = image.as_ref().is_some_and(|(_, meta)| meta.is_dir());
        if kind(stat) == SFlag::S_IFDIR {
            if let Some(sub) = dir.subdir(name)? {
                copy_changes_below(
                    &sub,
                    &child,
                    ownership,
                    all_new || new_here || !image_is_dir,
                    changes,
                )?;
            }
        }
    }
    if all_new {
        return Ok(());
    }
    // What the image has here and the root no longer does.
    let here: std::collections::HashSet<&OsString> = entries.iter().map(|(name, _)| name).collect();
    let mut image_names = std::collections::BTreeSet::new();
    for layer in &ownership.layers {
        if let Ok(listing) = std::fs::read_dir(layer.join(path)) {
            image_names.extend(listing.flatten().map(|e| e.file_name()));
        }
    }
    for name in image_names {
        let child = path.join(&name);
        if !here.contains(&name)
            && super::layers::is_visible_in_layers(&ownership.layers, &text(&child))
        {
            changes.push((child, CopyChange::Deleted));
        }
    }
    Ok(())
}

/// The entry `name` of `dir` and everything below it, as a tar whose top
/// entry is `as_name` (empty: a directory's contents only, not itself),
/// into `out`. Owners are root's: what `cp` extracts becomes the caller's.
pub fn write_subtree<W: Write>(dir: &DirHandle, name: &OsStr, as_name: &Path, out: W) -> Result<W> {
    let mut writer = TarWriter::new(out);
    let stat = dir
        .stat(name)
        .with_context(|| format!("{} is gone", name.to_string_lossy()))?;
    if !as_name.as_os_str().is_empty() {
        writer.entry(dir, name, &stat, as_name, Owner::ROOT)?;
    }
    if kind(&stat) == SFlag::S_IFDIR {
        if let Some(sub) = dir.subdir(name)? {
            subtree_below(&mut writer, &sub, as_name)?;
        }
    }
    writer.finish()
}

fn subtree_below<W: Write>(writer: &mut TarWriter<W>, dir: &DirHandle, path: &Path) -> Result<()> {
    for (name, stat) in dir.entries()? {
        let child = path.join(&name);
        writer.entry(dir, &name, &stat, &child, Owner::ROOT)?;
        if kind(&stat) == SFlag::S_IFDIR {
            if let Some(sub) = dir.subdir(&name)? {
                subtree_below(writer, &sub, &child)?;
            }
        }
    }
    Ok(())
}

/// A layer of the merged view: the container's writes or an image layer.
#[derive(Clone)]
enum Source {
    Writes,
    Layer(PathBuf),
}

/// The root as the container sees it: `upper` (or a copy-mode root) over
/// the image's layers (top first after it), into `out`.
pub fn write_merged<W: Write>(
    top: &Path,
    ownership: &Ownership<'_>,
    with_layers: bool,
    out: W,
) -> Result<W> {
    let mut writer = TarWriter::new(out);
    let mut sources = vec![(DirHandle::open(top)?, Source::Writes)];
    if with_layers {
        for layer in ownership.layers.iter().rev() {
            sources.push((DirHandle::open(layer)?, Source::Layer(layer.clone())));
        }
    }
    merged_below(&mut writer, &sources, Path::new(""), ownership)?;
    writer.finish()
}

fn hides_below(dir: &DirHandle) -> bool {
    dir.is_opaque() || dir.stat(OsStr::new(OPAQUE_MARKER)).is_some()
}

fn merged_below<W: Write>(
    writer: &mut TarWriter<W>,
    sources: &[(DirHandle, Source)],
    path: &Path,
    ownership: &Ownership<'_>,
) -> Result<()> {
    // Each name from the topmost source that has it; a whiteout hides it
    // from every source below.
    let mut visible: BTreeMap<OsString, Option<(usize, FileStat)>> = BTreeMap::new();
    for (index, (dir, _)) in sources.iter().enumerate() {
        for (name, stat) in dir.entries()? {
            let bytes = name.as_bytes();
            if name == OPAQUE_MARKER {
                continue;
            }
            if let Some(hidden) = bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                visible
                    .entry(OsStr::from_bytes(hidden).to_os_string())
                    .or_insert(None);
                continue;
            }
            let found = (!is_whiteout(&stat)).then_some((index, stat));
            visible.entry(name).or_insert(found);
        }
    }
    for (name, found) in visible {
        let Some((index, stat)) = found else {
            continue;
        };
        let child = path.join(&name);
        let (dir, source) = &sources[index];
        let owner = match source {
            Source::Writes => ownership.in_writes(&text(&child))?,
            Source::Layer(layer) => ownership.in_layer(layer, &text(&child))?,
        };
        writer.entry(dir, &name, &stat, &child, owner)?;
        if kind(&stat) != SFlag::S_IFDIR {
            continue;
        }
        // The directory merges with the same directory below it, down to
        // one that hides what is under it (opaque) or a non-directory.
        let mut below = vec![];
        for (dir, source) in &sources[index..] {
            match dir.subdir(&name)? {
                Some(sub) => {
                    let opaque = hides_below(&sub);
                    below.push((sub, source.clone()));
                    if opaque {
                        break;
                    }
                }
                None if dir.stat(&name).is_some() => break,
                None => {}
            }
        }
        merged_below(writer, &below, &child, ownership)?;
    }
    Ok(())
}

/// The image layers under a container's directory, bottom first: its `lN`
/// links that lead into the store's `layers/` (not rocker's generated
/// layers, which are no part of the image).
pub fn image_layers(container_dir: &Path, store: &Store) -> Result<Vec<PathBuf>> {
    let layers_dir = store.root().join("layers");
    let mut numbered = vec![];
    for entry in std::fs::read_dir(container_dir)
        .with_context(|| format!("reading {}", container_dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(n) = name.strip_prefix('l').and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.parent() == Some(layers_dir.as_path()) {
            numbered.push((n, target));
        }
    }
    numbered.sort();
    if numbered.is_empty()
        && !container_dir.join("upper").is_dir()
        && !container_dir.join("rootfs").is_dir()
    {
        bail!("{} holds no root file system", container_dir.display());
    }
    Ok(numbered.into_iter().map(|(_, target)| target).collect())
}
