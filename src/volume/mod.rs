//! Volumes: directories in the store that outlive containers,
//! `volumes/NAME/` beside `containers/` and `layers/`:
//!
//! - `volume.json`: its name, creation time and labels;
//! - `_data/`: what containers see (docker's and podman's name);
//! - `copy-up`: present until a container first mounts it, whose content
//!   at the mount point is then copied in (see `rootfs::plan`).
//!
//! A volume is made whole in a temp dir and renamed into place, so a list
//! never shows half of one. Which containers use a volume is written in
//! each container's own dir (`claims`); a volume lock keeps `volume rm`
//! from removing one between a run finding it and claiming it.

pub mod claims;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::StatusError;
use crate::util::fs::{read_json, remove_tree, write_atomic};
use crate::util::lock::FileLock;
use crate::util::time;

pub const VOLUMES_DIR: &str = "volumes";
const RECORD_FILE: &str = "volume.json";
const DATA_DIR: &str = "_data";
const COPY_UP_FILE: &str = "copy-up";
const LOCK_FILE: &str = ".lock";

/// The label docker puts on the volumes it makes for `-v /path` and an
/// image's VOLUME: they go with their container on `rm -v` and `--rm`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// What `volume.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl VolumeRecord {
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// A volume as found in the store.
#[derive(Debug, Clone)]
pub struct Volume {
    pub record: VolumeRecord,
    pub dir: PathBuf,
}

impl Volume {
    /// What containers mount: the volume's `_data`.
    pub fn data(&self) -> PathBuf {
        self.dir.join(DATA_DIR)
    }

    /// The marker of a volume no container has mounted yet.
    pub fn copy_up_marker(&self) -> PathBuf {
        self.dir.join(COPY_UP_FILE)
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }
}

/// docker's rule for a volume's name (see `util::names`).
pub fn check_name(name: &str) -> Result<()> {
    crate::util::names::check_object_name("volume", name)
}

/// The store's volumes.
pub struct Volumes {
    root: PathBuf,
}

/// A held volume lock: shared while a run finds and claims its volumes,
/// exclusive while volumes are removed.
pub struct VolumesLock(#[allow(dead_code)] FileLock);

impl Volumes {
    /// The volumes of the store at `data` (rocker's data dir).
    pub fn open(data: &Path) -> Result<Volumes> {
        let root = data.join(VOLUMES_DIR);
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Volumes { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn lock_shared(&self) -> Result<VolumesLock> {
        Ok(VolumesLock(FileLock::shared(&self.root.join(LOCK_FILE))?))
    }

    pub fn lock_exclusive(&self) -> Result<VolumesLock> {
        Ok(VolumesLock(FileLock::exclusive(
            &self.root.join(LOCK_FILE),
        )?))
    }

    /// The volume `name`, if it exists.
    pub fn get(&self, name: &str) -> Result<Option<Volume>> {
        check_name(name)?;
        let dir = self.root.join(name);
        let Some(record) = read_json::<VolumeRecord>(&dir.join(RECORD_FILE))
            .with_context(|| format!("reading the volume {name}"))?
        else {
            return Ok(None);
        };
        Ok(Some(Volume { record, dir }))
    }

    /// The volume `name`, or an error that exits 1 as docker's does.
    pub fn find(&self, name: &str) -> Result<Volume> {
        self.get(name)?.ok_or_else(|| {
            StatusError::new(
                1,
                format!("no such volume: {name} (rocker volume ls lists them)"),
            )
            .into()
        })
    }

    /// The volume `name`, made if missing (with `labels`); true when this
    /// call made it. Two calls at once make one volume.
    pub fn get_or_create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        if let Some(volume) = self.get(name)? {
            return Ok((volume, false));
        }
        let record = VolumeRecord {
            name: name.to_string(),
            created: time::now_nanos(),
            labels: labels.clone(),
        };
        let temp = self
            .root
            .join(format!(".new-{name}-{}", std::process::id()));
        let made = (|| -> Result<()> {
            std::fs::create_dir(&temp)?;
            std::fs::create_dir(temp.join(DATA_DIR))?;
            std::fs::write(temp.join(COPY_UP_FILE), b"")?;
            write_atomic(
                &temp.join(RECORD_FILE),
                &serde_json::to_vec_pretty(&record)?,
                0o644,
            )
        })();
        let dir = self.root.join(name);
        let renamed = made.and_then(|()| std::fs::rename(&temp, &dir).map_err(anyhow::Error::from));
        match renamed {
            Ok(()) => Ok((Volume { record, dir }, true)),
            Err(err) => {
                let _ = remove_tree(&temp);
                // Another rocker made it meanwhile: theirs it is.
                match self.get(name)? {
                    Some(volume) => Ok((volume, false)),
                    None => Err(err.context(format!("creating the volume {name}"))),
                }
            }
        }
    }

    /// A new volume with a random name (docker's `volume create` without
    /// one) and `labels`.
    pub fn create_unnamed(&self, labels: &BTreeMap<String, String>) -> Result<Volume> {
        Ok(self
            .get_or_create(&crate::util::random::hex_id()?, labels)?
            .0)
    }

    /// A new anonymous volume: a random name, docker's label.
    pub fn create_anonymous(&self) -> Result<Volume> {
        self.create_unnamed(&BTreeMap::from([(
            ANONYMOUS_LABEL.to_string(),
            String::new(),
        )]))
    }

    /// Every volume, by name. A dir without a readable record (a removal
    /// cut short) is skipped.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = std::fs::read_dir(&self.root)
            .with_context(|| format!("reading {}", self.root.display()))?;
        let mut volumes = vec![];
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(Some(volume)) = self.get(&name) {
                volumes.push(volume);
            }
        }
        volumes.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(volumes)
    }

    /// Removes `volume` and its data; the caller holds the exclusive lock
    /// and has checked that no container claims it. The volume leaves the
    /// list at once (its dir is renamed first), whatever the removal of
    /// its data then meets.
    pub fn remove(&self, volume: &Volume, _lock: &VolumesLock) -> Result<()> {
        let gone = self
            .root
            .join(format!(".gone-{}-{}", volume.name(), std::process::id()));
        std::fs::rename(&volume.dir, &gone)
            .with_context(|| format!("removing the volume {}", volume.name()))?;
        remove_tree(&gone).with_context(|| {
            format!(
                "removing the data of the volume {} (left in {})",
                volume.name(),
                gone.display()
            )
        })
    }

    /// Removes what removals and creations cut short left (`.new-*` and
    /// `.gone-*` dirs whose process is gone).
    pub fn sweep(&self, _lock: &VolumesLock) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name
                .strip_prefix(".new-")
                .or_else(|| name.strip_prefix(".gone-"))
            else {
                continue;
            };
            let pid = rest.rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
            let alive = pid.is_some_and(|pid| {
                pid == std::process::id() as i32
                    || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            });
            if !alive {
                let _ = remove_tree(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn names_follow_docker() {
        for good in ["ab", "data", "my_vol.1-x", "0a"] {
            check_name(good).unwrap();
        }
        for bad in ["a", "", "-ab", ".ab", "a/b", "a b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn created_once_listed_and_removed() {
        let base = ScratchDir::new("volumes");
        let volumes = Volumes::open(&base).unwrap();
        let (made, created) = volumes.get_or_create("data", &BTreeMap::new()).unwrap();
        assert!(created);
        assert!(made.data().is_dir() && made.copy_up_marker().exists());
        let (again, created) = volumes.get_or_create("data", &BTreeMap::new()).unwrap();
        assert!(!created);
        assert_eq!(again.record.created, made.record.created);
        let anonymous = volumes.create_anonymous().unwrap();
        assert!(anonymous.record.is_anonymous() && anonymous.name().len() == 64);
        let names: Vec<String> = volumes
            .list()
            .unwrap()
            .iter()
            .map(|v| v.name().to_string())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"data".to_string()));
        let lock = volumes.lock_exclusive().unwrap();
        volumes.remove(&made, &lock).unwrap();
        assert!(volumes.get("data").unwrap().is_none());
        let err = volumes.find("data").unwrap_err();
        assert_eq!(crate::error::exit_status_of(&err), 1);
        // Only the anonymous one and the lock are left.
        let left: Vec<_> = std::fs::read_dir(volumes.root())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(left.len(), 2);
    }
}
