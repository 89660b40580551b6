//! The last-resort root file system: the image's layers copied one over
//! another into a plain directory, applying whiteouts and opaque
//! directories as overlay would. Slow and costly in disk (a full copy per
//! container), so rocker warns when it has to.
//!
//! The layers come from the store, extracted safely, but a layer may still
//! hold symlinks pointing anywhere: the copy never follows a symlink in the
//! destination. A directory entry replaces whatever non-directory was there,
//! and every parent on the way down was created or checked by this walk.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::util::fs::remove_tree;
use crate::util::xattr;

/// Applies `layers` (bottom first) into `dest`, which must not exist.
pub fn flatten(layers: &[&Path], dest: &Path) -> Result<()> {
    std::fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    for layer in layers {
        // Hardlinks are kept within a layer: (device, inode) -> first copy.
        let mut links = HashMap::new();
        apply_dir(layer, dest, &mut links)
            .with_context(|| format!("copying the layer {}", layer.display()))?;
        copy_times_and_mode(layer, dest)?;
    }
    Ok(())
}

/// Copies the tree `src` (one plain tree: no whiteouts) into the existing
/// directory `dest`, which takes `src`'s mode and times too.
pub fn copy_into(src: &Path, dest: &Path) -> Result<()> {
    let mut links = HashMap::new();
    apply_dir(src, dest, &mut links).with_context(|| format!("copying {}", src.display()))?;
    copy_times_and_mode(src, dest)
}

fn remove_any(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => remove_tree(path),
        Ok(_) => std::fs::remove_file(path).with_context(|| format!("removing {}", path.display())),
        Err(_) => Ok(()),
    }
}

fn apply_dir(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)
            .with_context(|| format!("reading {}", from.display()))?;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            remove_any(&to)?; // a whiteout
            continue;
        }
        if kind.is_dir() {
            let opaque = xattr::is_opaque(&from);
            match std::fs::symlink_metadata(&to) {
                Ok(existing) if existing.is_dir() && !opaque => {}
                Ok(_) => {
                    remove_any(&to)?;
                    create_dir(&to)?;
                }
                Err(_) => create_dir(&to)?,
            }
            apply_dir(&from, &to, links)?;
            copy_times_and_mode(&from, &to)?;
            continue;
        }
        remove_any(&to)?;
        if kind.is_symlink() {
            let target =
                std::fs::read_link(&from).with_context(|| format!("reading {}", from.display()))?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("creating {}", to.display()))?;
        } else if kind.is_file() {
            let key = (meta.dev(), meta.ino());
            match links.get(&key) {
                Some(first) if meta.nlink() > 1 => {
                    std::fs::hard_link(first, &to)
                        .with_context(|| format!("linking {}", to.display()))?;
                    continue;
                }
                _ => {}
            }
            // std's copy uses copy_file_range: a reflink where the file
            // system has them.
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            if meta.nlink() > 1 {
                links.insert(key, to.clone());
            }
        } else if kind.is_fifo() {
            nix::unistd::mkfifo(&to, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .with_context(|| format!("creating {}", to.display()))?;
        } else {
            continue; // sockets and devices: extraction never makes them
        }
        copy_times_and_mode(&from, &to)?;
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir(path).with_context(|| format!("creating {}", path.display()))
}

/// The source's mode (not for symlinks) and times, on `to`.
fn copy_times_and_mode(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if !meta.file_type().is_symlink() {
        let mut mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            mode |= 0o700; // later layers and removal need to get in
        }
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", to.display()))?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        to,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("setting the times of {}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;
    use std::os::fd::AsFd;

    #[test]
    fn layers_apply_with_whiteouts_opaque_dirs_and_links() {
        let base = ScratchDir::new("copy");
        let bottom = base.join("bottom");
        let top = base.join("top");
        for dir in ["etc", "var/cache/old", "opt"] {
            std::fs::create_dir_all(bottom.join(dir)).unwrap();
        }
        std::fs::write(bottom.join("etc/gone"), "x").unwrap();
        std::fs::write(bottom.join("etc/kept"), "kept").unwrap();
        std::fs::write(bottom.join("var/cache/old/file"), "old").unwrap();
        std::fs::write(bottom.join("linked"), "shared").unwrap();
        std::fs::hard_link(bottom.join("linked"), bottom.join("linked2")).unwrap();
        // The top layer makes /opt a symlink to the host, then writes
        // through a directory of the same name: the copy must not follow.
        std::os::unix::fs::symlink("/tmp", bottom.join("escape")).unwrap();
        for dir in ["etc", "var/cache", "escape"] {
            std::fs::create_dir_all(top.join(dir)).unwrap();
        }
        std::fs::write(top.join("escape/planted"), "p").unwrap();
        nix::sys::stat::mknod(
            &top.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        crate::sys::fsetxattr(
            std::fs::File::open(top.join("var/cache")).unwrap().as_fd(),
            xattr::OVERLAY_OPAQUE,
            b"y",
        )
        .unwrap();
        std::fs::write(top.join("var/cache/new"), "new").unwrap();

        let dest = base.join("rootfs");
        flatten(&[&bottom, &top], &dest).unwrap();
        assert!(!dest.join("etc/gone").exists());
        assert_eq!(
            std::fs::read_to_string(dest.join("etc/kept")).unwrap(),
            "kept"
        );
        assert!(!dest.join("var/cache/old").exists());
        assert!(dest.join("var/cache/new").exists());
        let escape = std::fs::symlink_metadata(dest.join("escape")).unwrap();
        assert!(escape.is_dir());
        assert!(!Path::new("/tmp/planted").exists());
        let a = std::fs::metadata(dest.join("linked")).unwrap();
        let b = std::fs::metadata(dest.join("linked2")).unwrap();
        assert_eq!(a.ino(), b.ino());
    }
}
