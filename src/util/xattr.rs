//! Extended attributes as rocker reads them: never through a symlink.

use std::path::Path;

/// The xattr overlayfs (in `userxattr` mode) reads as "this directory
/// hides the layers below it".
pub const OVERLAY_OPAQUE: &str = "user.overlay.opaque";

/// The value of `key` on `path` itself (a symlink is not followed), or
/// None when it has none or cannot be read.
pub fn get(path: &Path, key: &str) -> Option<Vec<u8>> {
    crate::sys::lgetxattr(path, key).ok()
}

/// Whether `dir` carries overlayfs's opaque mark.
pub fn is_opaque(dir: &Path) -> bool {
    get(dir, OVERLAY_OPAQUE).as_deref() == Some(b"y")
}

/// Whether the open directory `dir` carries overlayfs's opaque mark.
pub fn is_opaque_fd(dir: std::os::fd::BorrowedFd<'_>) -> bool {
    crate::sys::fgetxattr(dir, OVERLAY_OPAQUE).ok().as_deref() == Some(b"y")
}
