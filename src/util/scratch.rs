//! Scratch directories for unit tests: fresh, named for the test and the
//! process, and removed when dropped, which also happens when the test
//! panics.

use std::path::{Path, PathBuf};

/// Derefs to its path, so it goes wherever a `&Path` does.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// An empty directory for `name` (unique within one test binary).
    pub fn new(name: &str) -> ScratchDir {
        let path = std::env::temp_dir().join(format!("rocker-{name}-{}", std::process::id()));
        let _ = super::fs::remove_tree(&path);
        std::fs::create_dir_all(&path).expect("creating a scratch dir");
        ScratchDir(path)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = super::fs::remove_tree(&self.0);
    }
}
