//! Which containers use which volumes: each container's dir holds a
//! `volumes` file naming the volumes it mounts, written while the run holds
//! the shared volume lock. A volume is in use while any container dir
//! names it, whatever the container's state: docker keeps a stopped
//! container's volumes too. The dir goes with the container, and so does
//! its claim; a run killed before its record is swept with its dir.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::VolumesLock;
use crate::util::fs::{read_json, replace_file};

const CLAIMS_FILE: &str = "volumes";

/// Records that the container in `container_dir` uses `names`.
pub fn claim(container_dir: &Path, names: &[String], _lock: &VolumesLock) -> Result<()> {
    let path = container_dir.join(CLAIMS_FILE);
    replace_file(&path, &serde_json::to_vec(names)?, 0o644)
        .with_context(|| format!("recording the container's volumes in {}", path.display()))
}

/// The volumes the container in `container_dir` claims.
pub fn claimed_by(container_dir: &Path) -> Vec<String> {
    read_json::<Vec<String>>(&container_dir.join(CLAIMS_FILE))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Each claimed volume with the ids of the containers (dirs under
/// `containers`) that claim it.
pub fn users(containers: &Path) -> BTreeMap<String, Vec<String>> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(containers) else {
        return users;
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        for name in claimed_by(&entry.path()) {
            users.entry(name).or_default().push(id.clone());
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn claims_are_read_back_per_container() {
        let base = ScratchDir::new("claims");
        let volumes = super::super::Volumes::open(&base.join("data")).unwrap();
        let containers = base.join("containers");
        for (id, names) in [
            ("a1", vec!["db", "cache"]),
            ("b2", vec!["db"]),
            ("c3", vec![]),
        ] {
            let dir = containers.join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let names: Vec<String> = names.into_iter().map(String::from).collect();
            if !names.is_empty() {
                claim(&dir, &names, &volumes.lock_shared().unwrap()).unwrap();
            }
        }
        let users = users(&containers);
        let mut db = users["db"].clone();
        db.sort();
        assert_eq!(db, vec!["a1".to_string(), "b2".to_string()]);
        assert_eq!(users["cache"], vec!["a1".to_string()]);
        assert!(!users.contains_key("c3"));
        assert_eq!(claimed_by(&containers.join("c3")), Vec::<String>::new());
    }
}
