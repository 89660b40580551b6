//! Advisory locks on files (flock), for state several rocker processes
//! share: the image store and the container records. A lock lasts as long
//! as its value.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// A held lock; released on drop (or when the process ends, however).
pub struct FileLock(#[allow(dead_code)] Flock<File>);

impl FileLock {
    /// Takes the lock on `path` (created if missing) for this process
    /// alone, waiting for any holder.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        lock(path, FlockArg::LockExclusive)
    }

    /// Takes the lock on `path` beside other shared holders, waiting for
    /// an exclusive one.
    pub fn shared(path: &Path) -> Result<FileLock> {
        lock(path, FlockArg::LockShared)
    }
}

fn lock(path: &Path, arg: FlockArg) -> Result<FileLock> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let lock = Flock::lock(file, arg)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(FileLock(lock))
}
