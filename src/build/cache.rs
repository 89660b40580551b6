//! The build cache: for each step, a key (its parent's key, the step as
//! it runs after substitution, and for COPY and ADD the content copied)
//! and the image the step made. Images made by builds are ordinary store
//! images, indexed under their ids, so garbage collection keeps their
//! layers; the cache only remembers which key made which.
//!
//! `build-cache.json` in the store, written whole (temp + rename) under a
//! lock of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest as _, Sha256};

use crate::util::fs::{read_json, replace_file};
use crate::util::lock::FileLock;

/// A step's cache key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// The key a stage starts from: its base image's id (or scratch).
    pub fn of_base(base: &str) -> Key {
        Key::hash(&["base", base])
    }

    /// The key after `self` of a step with these parts.
    pub fn then(&self, parts: &[&str]) -> Key {
        let mut all = vec![self.0.as_str()];
        all.extend_from_slice(parts);
        Key::hash(&all)
    }

    fn hash(parts: &[&str]) -> Key {
        let mut hasher = Sha256::new();
        for part in parts {
            // Each part's length first: no two lists of parts collide.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        Key(format!("{:x}", hasher.finalize()))
    }
}

pub struct Cache {
    path: PathBuf,
    lock: PathBuf,
}

impl Cache {
    pub fn open(store_root: &Path) -> Cache {
        Cache {
            path: store_root.join("build-cache.json"),
            lock: store_root.join("build-cache.lock"),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>> {
        Ok(read_json(&self.path)?.unwrap_or_default())
    }

    /// The image id `key` made, if it is remembered.
    pub fn get(&self, key: &Key) -> Result<Option<String>> {
        Ok(self.read()?.remove(&key.0))
    }

    pub fn put(&self, key: &Key, image_id: &str) -> Result<()> {
        let _lock = FileLock::exclusive(&self.lock)?;
        let mut entries = self.read()?;
        entries.insert(key.0.clone(), image_id.to_string());
        replace_file(&self.path, &serde_json::to_vec(&entries)?, 0o600)
    }

    /// Forgets the entries whose image `keep` says is gone.
    pub fn prune(&self, keep: &dyn Fn(&str) -> bool) -> Result<usize> {
        let _lock = FileLock::exclusive(&self.lock)?;
        let mut entries = self.read()?;
        let before = entries.len();
        entries.retain(|_, image| keep(image));
        replace_file(&self.path, &serde_json::to_vec(&entries)?, 0o600)?;
        Ok(before - entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn keys_chain_and_entries_last() {
        let base = Key::of_base("sha256:aa");
        let run = base.then(&["RUN", "make"]);
        assert_ne!(run, base.then(&["RUN", "make "]));
        assert_ne!(base.then(&["ab", "c"]), base.then(&["a", "bc"]));
        assert_eq!(run, Key::of_base("sha256:aa").then(&["RUN", "make"]));
        let dir = ScratchDir::new("build-cache");
        let cache = Cache::open(&dir.join("."));
        assert_eq!(cache.get(&run).unwrap(), None);
        cache.put(&run, "sha256:bb").unwrap();
        assert_eq!(cache.get(&run).unwrap().as_deref(), Some("sha256:bb"));
        assert_eq!(cache.prune(&|image| image != "sha256:bb").unwrap(), 1);
        assert_eq!(cache.get(&run).unwrap(), None);
    }
}
