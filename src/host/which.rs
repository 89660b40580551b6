//! Finding a program on the caller's PATH, as a shell would, for the
//! helpers rocker starts (slirp4netns, fuse-overlayfs, systemd-run).

use std::path::PathBuf;

/// The first `program` on $PATH that is a file.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
