//! What a container changed in its image, read from its overlay upper dir
//! as `docker diff` lists it: a whiteout is a deleted path (D), an entry
//! the image has is a changed one (C: overlay copies a directory up when
//! anything in it changes), anything else is added (A). An opaque
//! directory replaced the image's: its new entries are added, and the
//! image's that it hides are deleted.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::layers::is_visible_in_layers;
use crate::util::xattr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Changed,
    Added,
    Deleted,
}

impl Change {
    /// docker diff's letter.
    pub fn letter(self) -> char {
        match self {
            Change::Changed => 'C',
            Change::Added => 'A',
            Change::Deleted => 'D',
        }
    }
}

/// The changes of the container whose store dir is `dir` (holding `upper/`
/// and its `lN` lower links), sorted by path.
pub fn changes(dir: &Path) -> Result<Vec<(Change, String)>> {
    let upper = dir.join("upper");
    if !upper.is_dir() {
        bail!(
            "{} has no overlay upper dir: diff needs a container over overlay or \
             fuse-overlayfs (not a copy, nor --rootfs)",
            dir.display()
        );
    }
    let layers = lower_layers(dir)?;
    let mut found = vec![];
    walk(&upper, "", &layers, false, &mut found)?;
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// The `lN` links of a container dir, bottom first.
fn lower_layers(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut numbered = vec![];
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix('l').and_then(|n| n.parse::<usize>().ok()) {
            numbered.push((n, entry.path()));
        }
    }
    numbered.sort();
    Ok(numbered.into_iter().map(|(_, path)| path).collect())
}

/// Records the changes below `path` (in the container, "" for the root)
/// of the upper dir `upper`. Under an opaque directory nothing of the
/// image shows, so every entry is new.
fn walk(
    upper: &Path,
    path: &str,
    layers: &[PathBuf],
    under_opaque: bool,
    found: &mut Vec<(Change, String)>,
) -> Result<()> {
    let dir = upper.join(path.trim_start_matches('/'));
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) => {
            eprintln!("rocker: warning: cannot read {}: {err}", dir.display());
            return Ok(());
        }
    };
    for entry in entries {
        let entry = entry?;
        let child = format!("{path}/{}", entry.file_name().to_string_lossy());
        let meta = entry.metadata()?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            found.push((Change::Deleted, child));
            continue;
        }
        let in_image = !under_opaque && is_visible_in_layers(layers, &child);
        found.push((
            if in_image {
                Change::Changed
            } else {
                Change::Added
            },
            child.clone(),
        ));
        if meta.is_dir() {
            let opaque = xattr::is_opaque(&entry.path());
            if opaque && !under_opaque {
                deleted_by_opaque(layers, &child, &entry.path(), found);
            }
            walk(upper, &child, layers, under_opaque || opaque, found)?;
        }
    }
    Ok(())
}

/// The image's entries in directory `path` that the opaque upper dir
/// `replacement` hides (those it does not have itself).
fn deleted_by_opaque(
    layers: &[PathBuf],
    path: &str,
    replacement: &Path,
    found: &mut Vec<(Change, String)>,
) {
    let mut seen = std::collections::BTreeSet::new();
    for layer in layers {
        let Ok(entries) = std::fs::read_dir(layer.join(path.trim_start_matches('/'))) else {
            continue;
        };
        for entry in entries.flatten() {
            seen.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    for name in seen {
        let child = format!("{path}/{name}");
        if is_visible_in_layers(layers, &child) && !replacement.join(&name).exists() {
            found.push((Change::Deleted, child));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn an_opaque_directory_adds_its_entries_and_deletes_the_images() {
        let dir = ScratchDir::new("changes");
        let layer = dir.join("layer");
        for path in ["a/x", "a/y", "b"] {
            std::fs::create_dir_all(layer.join(path).parent().unwrap()).unwrap();
            std::fs::write(layer.join(path), "image").unwrap();
        }
        std::os::unix::fs::symlink(&layer, dir.join("l0")).unwrap();
        let upper = dir.join("upper");
        std::fs::create_dir_all(upper.join("a")).unwrap();
        std::fs::write(upper.join("a/z"), "new").unwrap();
        std::fs::write(upper.join("a/y"), "new").unwrap();
        crate::sys::fsetxattr(
            std::fs::File::open(upper.join("a")).unwrap().as_fd(),
            xattr::OVERLAY_OPAQUE,
            b"y",
        )
        .unwrap();
        nix::sys::stat::mknod(
            &upper.join("b"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let got: Vec<String> = changes(&dir)
            .unwrap()
            .into_iter()
            .map(|(change, path)| format!("{} {path}", change.letter()))
            .collect();
        assert_eq!(got, ["C /a", "D /a/x", "A /a/y", "A /a/z", "D /b"]);
    }
}
