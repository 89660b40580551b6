//! A container's own files in the store, `containers/ID/` beside `layers/`:
//!
//! - overlay modes: `l0`, `l1`, ... short links to the layer dirs (bottom
//!   first), `upper/` (every write of the container) and `work/` (the
//!   mount point is live state, in the runtime dir); the links keep the overlay mount options short enough
//!   for long layer chains (the kernel takes one page of options), and they
//!   are the record that keeps garbage collection off those layers;
//! - copy mode: `rootfs/`, the layers applied one over another.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::rootfs::backing::mode::RootfsMode;
use crate::util::fs::remove_tree;

pub const CONTAINERS_DIR: &str = "containers";

/// A container's directory in the store; removed on drop unless kept.
pub struct ContainerFiles {
    pub dir: PathBuf,
    keep: bool,
}

impl ContainerFiles {
    /// Creates `containers/ID` for a container over the layer directories
    /// `layers` (bottom first).
    pub fn create(
        store_root: &Path,
        id: &str,
        layers: &[PathBuf],
        mode: RootfsMode,
    ) -> Result<ContainerFiles> {
        let parent = store_root.join(CONTAINERS_DIR);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let dir = parent.join(id);
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = ContainerFiles { dir, keep: false };
        files.note_creator()?;
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
                for (index, layer) in layers.iter().enumerate() {
                    let link = files.lower(index);
                    std::os::unix::fs::symlink(layer, &link)
                        .with_context(|| format!("creating {}", link.display()))?;
                }
            }
            RootfsMode::Copy => {
                let dirs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
                crate::rootfs::backing::copy::flatten(&dirs, &files.rootfs())?;
            }
        }
        Ok(files)
    }

    /// Creates `containers/ID` for a container whose root is a host
    /// directory (`--rootfs`): it holds only the container's record.
    pub fn without_rootfs(store_root: &Path, id: &str) -> Result<ContainerFiles> {
        let dir = store_root.join(CONTAINERS_DIR).join(id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = ContainerFiles { dir, keep: false };
        files.note_creator()?;
        Ok(files)
    }

    /// Who is making the container: until its record exists, a dir whose
    /// maker is gone (a run killed meanwhile) is swept (`sweep_unrecorded`).
    fn note_creator(&self) -> Result<()> {
        let path = self.dir.join(CREATOR);
        std::fs::write(&path, std::process::id().to_string())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The files of a container that exists already (one started again):
    /// never removed by this value.
    pub fn existing(dir: PathBuf) -> Result<ContainerFiles> {
        let files = ContainerFiles { dir, keep: true };
        // This process starts it now: prune and rm leave it meanwhile.
        files.note_creator()?;
        Ok(files)
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

/// How many lower links (`lN`) the container dir `dir` holds: what its
/// overlay mounts (the image's layers and rocker's own).
pub fn lower_count(dir: &Path) -> Result<usize> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    Ok(entries
        .flatten()
        .filter(|entry| is_lower_name(&entry.file_name().to_string_lossy()))
        .count())
}

/// The overlay options for a container dir holding `layers` lower links,
/// relative to that dir (the caller changes into it first). `volatile`
/// (Linux 5.10) drops every sync of the upper dir's file system, above all
/// the `syncfs` of the whole of it when the overlay goes away at the
/// container's exit; the kernel then refuses to mount that upper dir
/// again, which suits a container nothing keeps (`--rm`) and no other.
pub fn overlay_options(layers: usize, volatile: bool) -> String {
    // overlay lists the top layer first.
    let lower: Vec<String> = (0..layers).rev().map(lower_name).collect();
    let volatile = if volatile { ",volatile" } else { "" };
    format!(
        "lowerdir={},upperdir=upper,workdir=work,userxattr{volatile}",
        lower.join(":")
    )
}

/// In a container dir: the pid of the rocker making it.
const CREATOR: &str = "creator";
/// A container's record, whose absence makes a dir no container yet.
const RECORD: &str = "config.json";

/// Whether the rocker that made the container dir `dir` (or is starting
/// it) still runs, and is not this process.
pub fn maker_alive(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(CREATOR))
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists())
}

/// Removes container dirs that never got a record and whose maker is gone
/// (a run killed before it recorded the container: such a dir is in no
/// list, and its links pin layers), once older than `min_age`; returns
/// them.
pub fn sweep_unrecorded(store_root: &Path, min_age: std::time::Duration) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(store_root.join(CONTAINERS_DIR)) else {
        return vec![];
    };
    let mut swept = vec![];
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.join(RECORD).exists() {
            continue;
        }
        let old_enough = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age >= min_age));
        if old_enough && !maker_alive(&dir) && remove_tree(&dir).is_ok() {
            swept.push(dir);
        }
    }
    swept
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_the_top_layer_first_and_stay_short() {
        assert_eq!(
            overlay_options(3, false),
            "lowerdir=l2:l1:l0,upperdir=upper,workdir=work,userxattr"
        );
        assert_eq!(
            overlay_options(1, true),
            "lowerdir=l0,upperdir=upper,workdir=work,userxattr,volatile"
        );
        // 128 layers fit in the page the kernel accepts.
        assert!(overlay_options(128, true).len() < 4096);
    }

    #[test]
    fn only_lower_links_count_as_pins() {
        assert!(is_lower_name("l0") && is_lower_name("l127"));
        for other in ["l", "upper", "work", "lx", "l1a", "rootfs"] {
            assert!(!is_lower_name(other), "{other}");
        }
    }
}
