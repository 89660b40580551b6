//! Reading a file of an image (its /etc/passwd) through the layers, as
//! overlay would show it, without mounting anything: whiteouts (0/0
//! character devices) and opaque directories hide what lies below.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::rootfs::inroot;
use crate::util::xattr;

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// The layer whose entry for `path` (absolute in the image) the merged
/// layers show: the topmost layer that has it wins; a whiteout, a
/// non-directory parent or an opaque parent ends the search. `layers` is
/// bottom first.
fn visible_in(layers: &[PathBuf], path: &str) -> Option<(PathBuf, std::fs::Metadata)> {
    let relative = Path::new(path.trim_start_matches('/'));
    'layers: for layer in layers.iter().rev() {
        let mut hides_below = false;
        let mut prefix = layer.clone();
        let components: Vec<_> = relative.components().collect();
        for component in &components[..components.len().saturating_sub(1)] {
            prefix.push(component);
            match std::fs::symlink_metadata(&prefix) {
                Ok(meta) if meta.is_dir() => hides_below |= xattr::is_opaque(&prefix),
                Ok(_) => return None, // a whiteout or a file hides the path
                Err(_) => {
                    if hides_below {
                        return None;
                    }
                    continue 'layers;
                }
            }
        }
        match std::fs::symlink_metadata(layer.join(relative)) {
            Ok(meta) if is_whiteout(&meta) => return None,
            Ok(meta) => return Some((layer.clone(), meta)),
            Err(_) if hides_below => return None,
            Err(_) => {}
        }
    }
    None
}

/// Reads `path` (absolute in the image) as the merged layers show it.
pub fn read_from_layers(layers: &[PathBuf], path: &str, limit: u64) -> Result<Option<String>> {
    match visible_in(layers, path) {
        None => Ok(None),
        Some((layer, _)) => inroot::read_to_string(&layer, path, limit)
            .with_context(|| format!("reading {path} in the layer {}", layer.display())),
    }
}

/// The layer (of `layers`, bottom first) whose entry for `path` the
/// merged layers show, if any, and that entry.
pub fn visible_entry(layers: &[PathBuf], path: &str) -> Option<(PathBuf, std::fs::Metadata)> {
    visible_in(layers, path)
}

/// The layer (of `layers`, bottom first) whose entry for `path` the
/// merged layers show, if any.
pub fn providing_layer(layers: &[PathBuf], path: &str) -> Option<PathBuf> {
    visible_in(layers, path).map(|(layer, _)| layer)
}

/// Whether the merged layers show anything at `path`.
pub fn is_visible_in_layers(layers: &[PathBuf], path: &str) -> bool {
    visible_in(layers, path).is_some()
}

/// Whether the merged layers show a directory at `path`.
pub fn is_directory_in_layers(layers: &[PathBuf], path: &str) -> bool {
    visible_in(layers, path).is_some_and(|(_, meta)| meta.is_dir())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn files_are_read_as_overlay_shows_them() {
        let base = ScratchDir::new("layers");
        let layer = |n: usize| base.join(format!("layer{n}"));
        for n in 0..4 {
            std::fs::create_dir_all(layer(n).join("etc")).unwrap();
        }
        std::fs::write(layer(0).join("etc/passwd"), "bottom").unwrap();
        std::fs::write(layer(1).join("etc/passwd"), "middle").unwrap();
        std::fs::write(layer(0).join("etc/group"), "bottom group").unwrap();
        let layers: Vec<PathBuf> = (0..4).map(layer).collect();
        let read = |layers: &[PathBuf], path| read_from_layers(layers, path, 1 << 20).unwrap();
        assert_eq!(read(&layers, "/etc/passwd").as_deref(), Some("middle"));
        assert_eq!(read(&layers, "/etc/group").as_deref(), Some("bottom group"));
        assert_eq!(read(&layers, "/etc/shadow"), None);

        // A whiteout in layer 2 hides both lower files.
        nix::sys::stat::mknod(
            &layer(2).join("etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        assert_eq!(read(&layers, "/etc/passwd"), None);
        // An opaque /etc in layer 3 hides everything below it.
        crate::sys::fsetxattr(
            std::fs::File::open(layer(3).join("etc")).unwrap().as_fd(),
            xattr::OVERLAY_OPAQUE,
            b"y",
        )
        .unwrap();
        assert_eq!(read(&layers, "/etc/group"), None);
        std::fs::write(layer(3).join("etc/group"), "top group").unwrap();
        assert_eq!(read(&layers, "/etc/group").as_deref(), Some("top group"));
        assert!(is_directory_in_layers(&layers, "/etc"));
        assert!(!is_directory_in_layers(&layers, "/etc/group"));
        assert!(!is_directory_in_layers(&layers, "/var"));
    }
}
