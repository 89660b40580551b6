//! `--rm` without the wait. A finished container's dirs are renamed into
//! `removed/` (one rename each: from then on no listing, lookup or name
//! check sees it) and deleted after the caller has its exit status, by a
//! detached child. A sweep that is cut short (the child killed, the
//! machine off) leaves only entries of `removed/`, which the next `--rm`
//! run, `container prune` and `system prune` finish.
//!
//! Deleting a container's upper dir takes as long as what it wrote (an
//! `apt-get install` leaves thousands of files); before, every `--rm` run
//! waited for it, and for the dozen files of an empty one, about 1.5 ms.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::record::{ContainerRecord, Containers, ContainersLock};
use crate::util::fs::remove_tree;
use crate::util::lock::FileLock;

/// Where retired containers wait for their deletion: one dir in the data
/// dir (the same file system as the store, so a rename moves them) and
/// one in the runtime dir for their live dirs.
const REMOVED_DIR: &str = "removed";

/// Held by whoever sweeps `removed/`, so that two sweepers do not trip
/// over each other's half-deleted trees.
const SWEEP_LOCK: &str = "removed.lock";

impl Containers {
    /// Takes finished container `record` out of the store at once; its
    /// files are deleted later (`sweep_removed`). Returns false, having
    /// done nothing, for a container with volumes it claims: whether an
    /// anonymous one goes with it depends on who else claims it, which
    /// `remove_with_volumes` settles in line.
    pub fn retire(&self, record: &ContainerRecord, _lock: &ContainersLock) -> Result<bool> {
        let id = record.id.as_str();
        let dir = self.dir(id);
        if !crate::volume::claims::claimed_by(&dir).is_empty() {
            return Ok(false);
        }
        self.remove_leftover_cgroup(id);
        let live = self.live_dir(id);
        if live.parent().and_then(Path::parent) == Some(self.runtime()) {
            move_aside(&live, &self.runtime().join(REMOVED_DIR))?;
        } else {
            // Started in another session: its runtime dir is not ours to
            // sweep.
            remove_tree(&live)?;
        }
        move_aside(&dir, &self.data().join(REMOVED_DIR))?;
        // The name last, as `remove` does: until the record is gone it
        // holds it.
        if let Some(index) = super::name_index::NameIndex::existing(self.data()) {
            index.release(&record.name, id);
        }
        Ok(true)
    }

    /// Deletes what `retire` moved aside, and whatever is added while it
    /// runs, after any other sweep: a `--rm` run's entry added as another
    /// sweep ends is then never left behind. Failures leave their entries
    /// for the next sweep.
    pub fn sweep_removed(&self) -> Result<()> {
        let _sweeping = FileLock::exclusive(&self.data().join(SWEEP_LOCK))?;
        let dirs = [
            self.data().join(REMOVED_DIR),
            self.runtime().join(REMOVED_DIR),
        ];
        let mut failure = None;
        loop {
            let entries: Vec<PathBuf> = dirs.iter().flat_map(|dir| entries(dir)).collect();
            if entries.is_empty() {
                break;
            }
            let mut removed_any = false;
            for entry in entries {
                match remove_tree(&entry) {
                    Ok(()) => removed_any = true,
                    Err(err) => {
                        failure.get_or_insert(err);
                    }
                }
            }
            if !removed_any {
                break;
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Renames `path` into `aside` under its own name; nothing to do if it is
/// gone already.
fn move_aside(path: &Path, aside: &Path) -> Result<()> {
    let Some(name) = path.file_name() else {
        return Ok(());
    };
    let rename = || std::fs::rename(path, aside.join(name));
    let renamed = match rename() {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && path.exists() => {
            crate::host::dirs::ensure_private_dir(aside)?;
            rename()
        }
        other => other,
    };
    match renamed {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(anyhow::Error::new(err).context(format!(
            "moving {} aside into {} for its removal",
            path.display(),
            aside.display()
        ))),
        Ok(()) => Ok(()),
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}
