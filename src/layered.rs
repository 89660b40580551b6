//! A container's own files in the store, `containers/ID/` beside `layers/`:
//!
//! - overlay modes: `l0`, `l1`, ... short links to the layer dirs (bottom
//!   first), `upper/` (every write of the container) and `work/` (the
//!   mount point is live state, in the runtime dir); the links keep the overlay mount options short enough
//!   for long layer chains (the kernel takes one page of options), and they
//!   are the record that keeps garbage collection off those layers;
//! - copy mode: `rootfs/`, the layers applied one over another.
//!
//! Also reads a file of the image (its /etc/passwd) through the layers, as
//! overlay would show it, without mounting anything.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::image::digest::Digest;
use crate::storage::RootfsMode;
use crate::util::fs::remove_tree;
use crate::util::xattr;

pub const CONTAINERS_DIR: &str = "containers";

/// A container's directory in the store; removed on drop unless kept.
pub struct ContainerFiles {
    pub dir: PathBuf,
    keep: bool,
}

impl ContainerFiles {
    /// Creates `containers/ID` for a container over `layers` (bottom first:
    /// diff_id and directory).
    pub fn create(
        store_root: &Path,
        id: &str,
        layers: &[(Digest, PathBuf)],
        mode: RootfsMode,
    ) -> Result<ContainerFiles> {
        let parent = store_root.join(CONTAINERS_DIR);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let dir = parent.join(id);
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = ContainerFiles { dir, keep: false };
        match mode {
            RootfsMode::Overlay | RootfsMode::FuseOverlayfs => {
                for name in ["upper", "work"] {
                    let path = files.dir.join(name);
                    std::fs::create_dir(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                }
                if layers.is_empty() {
                    // overlay needs a lower dir; an image with no layers is empty.
                    let empty = files.lower(0);
                    std::fs::create_dir(&empty)
                        .with_context(|| format!("creating {}", empty.display()))?;
                }
                for (index, (_, layer)) in layers.iter().enumerate() {
                    let link = files.lower(index);
                    std::os::unix::fs::symlink(layer, &link)
                        .with_context(|| format!("creating {}", link.display()))?;
                }
            }
            RootfsMode::Copy => {
                let dirs: Vec<&Path> = layers.iter().map(|(_, p)| p.as_path()).collect();
                crate::layercopy::flatten(&dirs, &files.rootfs())?;
            }
        }
        Ok(files)
    }

    /// Creates `containers/ID` for a container whose root is a host
    /// directory (`--rootfs`): it holds only the container's record.
    pub fn without_rootfs(store_root: &Path, id: &str) -> Result<ContainerFiles> {
        let dir = store_root.join(CONTAINERS_DIR).join(id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ContainerFiles { dir, keep: false })
    }

    /// The overlay modes' link to lower layer `index` (0 = the bottom).
    pub fn lower(&self, index: usize) -> PathBuf {
        self.dir.join(lower_name(index))
    }

    /// The copy mode's root file system.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Keeps the directory after this value is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for ContainerFiles {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(err) = remove_tree(&self.dir) {
                eprintln!("rocker: warning: {err:#}");
            }
        }
    }
}

/// Lower links sit in the container's dir itself: one directory less to
/// create and remove on every run, and names short enough for 128 layers
/// in one page of mount options.
fn lower_name(index: usize) -> String {
    format!("l{index}")
}

fn is_lower_name(name: &str) -> bool {
    name.strip_prefix('l')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The overlay options for a container dir holding `layers` lower links,
/// relative to that dir (the caller changes into it first).
pub fn overlay_options(layers: usize) -> String {
    // overlay lists the top layer first.
    let lower: Vec<String> = (0..layers).rev().map(lower_name).collect();
    format!(
        "lowerdir={},upperdir=upper,workdir=work,userxattr",
        lower.join(":")
    )
}

/// The layers (their directory names: diff_id hex) every existing
/// container is built on, read from its `lN` links. The links are the
/// record: they are written before the container exists for anyone else
/// (under the store's shared lock, which garbage collection must take
/// exclusively), and a copy-mode container needs no layers once copied.
pub fn layers_in_use(store_root: &Path) -> Vec<String> {
    let Ok(containers) = std::fs::read_dir(store_root.join(CONTAINERS_DIR)) else {
        return vec![];
    };
    containers
        .flatten()
        .filter_map(|container| std::fs::read_dir(container.path()).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|entry| is_lower_name(&entry.file_name().to_string_lossy()))
        .filter_map(|link| std::fs::read_link(link.path()).ok())
        .filter_map(|target| Some(target.file_name()?.to_string_lossy().into_owned()))
        .collect()
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    xattr::is_opaque(dir)
}

/// Reads `path` (absolute in the image) as the merged layers show it: the
/// topmost layer that has it wins; a whiteout, a non-directory parent or an
/// opaque parent ends the search. `layers` is bottom first.
pub fn read_from_layers(layers: &[PathBuf], path: &str, limit: u64) -> Result<Option<String>> {
    let relative = Path::new(path.trim_start_matches('/'));
    'layers: for layer in layers.iter().rev() {
        let mut hides_below = false;
        let mut prefix = layer.clone();
        let components: Vec<_> = relative.components().collect();
        for component in &components[..components.len().saturating_sub(1)] {
            prefix.push(component);
            match std::fs::symlink_metadata(&prefix) {
                Ok(meta) if meta.is_dir() => hides_below |= is_opaque(&prefix),
                Ok(_) => return Ok(None), // a whiteout or a file hides the path
                Err(_) => {
                    if hides_below {
                        return Ok(None);
                    }
                    continue 'layers;
                }
            }
        }
        match std::fs::symlink_metadata(layer.join(relative)) {
            Ok(meta) if is_whiteout(&meta) => return Ok(None),
            Ok(_) => {
                return crate::inroot::read_to_string(layer, path, limit)
                    .with_context(|| format!("reading {path} in the layer {}", layer.display()))
            }
            Err(_) if hides_below => return Ok(None),
            Err(_) => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_the_top_layer_first_and_stay_short() {
        assert_eq!(
            overlay_options(3),
            "lowerdir=l2:l1:l0,upperdir=upper,workdir=work,userxattr"
        );
        // 128 layers fit in the page the kernel accepts.
        assert!(overlay_options(128).len() < 4096);
    }

    #[test]
    fn only_lower_links_count_as_pins() {
        assert!(is_lower_name("l0") && is_lower_name("l127"));
        for other in ["l", "upper", "work", "lx", "l1a", "rootfs"] {
            assert!(!is_lower_name(other), "{other}");
        }
    }

    #[test]
    fn files_are_read_as_overlay_shows_them() {
        let base = std::env::temp_dir().join(format!("rocker-layered-{}", std::process::id()));
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
        remove_tree(&base).unwrap();
    }

    use std::os::fd::AsFd;
}
