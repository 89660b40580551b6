//! The image store under `$XDG_DATA_HOME/rocker`:
//!
//! ```text
//! blobs/sha256/HEX     manifests, configs and compressed layers, by digest
//! layers/HEX/          one extracted layer per diff_id, shared by images
//! layer-blobs/HEX.json the compressed copies kept of layer HEX (a diff_id)
//! layer-blobs/HEX.owners.json  the owners its files have in the image
//! images.json          the index of names -> manifest, config, layers
//! image-cache/HEX.json one name's record, as the index had it (lookup_cache)
//! tmp/PID-N-WHAT/      work in progress, renamed into place when verified
//! store.lock           shared by pulls, exclusive for garbage collection
//! index.lock           held while images.json is rewritten
//! ```
//!
//! Everything lands by rename, so a pull killed at any moment leaves only
//! temp dirs (swept by the next pull) and finished layers (reused, or
//! dropped by `image prune`); never a half layer or a half index. Pulls
//! hold no lock while they download: they index what they fetched under
//! the shared lock, once they have checked it is all still there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::lookup_cache::{stamp_of, LookupCache};
use super::manifest::Compression;
use crate::util::fs::{read_if_present, read_json, remove_tree, write_atomic};
use crate::util::lock::FileLock;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    /// The uncompressed digest: the layer directory's name.
    pub diff_id: Digest,
    /// The blob as the registry serves it.
    pub digest: Digest,
    pub size: u64,
    /// The bytes of its files once extracted (none in records written
    /// before rocker kept it).
    #[serde(default)]
    pub unpacked_size: Option<u64>,
}

/// A compressed copy of a layer, kept so that push and save send the very
/// bytes a registry already has (the same digest) and never compress a
/// layer twice.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// The normalized reference it was pulled as.
    pub name: String,
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<LayerRecord>,
    pub platform: String,
    /// Seconds since the epoch.
    pub pulled: u64,
    /// Made by a build step (indexed under its id for the build cache):
    /// `images` shows it only with `-a`, `builder prune` removes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_cache: bool,
}

impl ImageRecord {
    /// Now, as `pulled` keeps it: seconds since the epoch.
    pub fn now() -> u64 {
        crate::util::time::now_nanos() / 1_000_000_000
    }

    /// Docker's image id: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config
    }

    /// What the registry serves: the compressed layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// What the layers take extracted (docker's SIZE), where the record
    /// knows it; `measure` gives a layer's size where it does not.
    pub fn unpacked_size(&self, measure: impl Fn(&LayerRecord) -> u64) -> u64 {
        self.layers
            .iter()
            .map(|l| l.unpacked_size.unwrap_or_else(|| measure(l)))
            .sum()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// New at every rewrite, and written first: the lookup cache's answers
    /// hold while images.json begins with the stamp they were kept under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    stamp: String,
    images: Vec<ImageRecord>,
}

pub struct Store {
    root: PathBuf,
}

/// A held lock of the store; released when dropped.
pub type StoreLock = FileLock;

/// A directory under tmp/, removed on drop unless committed.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_tree(&self.path);
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub fn open(data_dir: &Path) -> Result<Store> {
        crate::host::dirs::ensure_private_dir(data_dir)?;
        for dir in ["blobs/sha256", "layers", "layer-blobs", "tmp"] {
            let path = data_dir.join(dir);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
        }
        Ok(Store {
            root: data_dir.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Held by anything that adds to the store, so garbage collection never
    /// removes a layer a pull has just finished but not yet indexed.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        FileLock::shared(&self.root.join("store.lock"))
    }

    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        FileLock::exclusive(&self.root.join("store.lock"))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if Digest::of(&bytes) != *digest {
            bail!(
                "{} is corrupt (its content does not match {digest}); pull the image again",
                path.display()
            );
        }
        Ok(bytes)
    }

    pub fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if Digest::of(bytes) != *digest {
            bail!("refusing to store content under the wrong digest {digest}");
        }
        write_atomic(&self.blob_path(digest), bytes, 0o600)
    }

    /// The record of layer `diff_id`, kept as the blob `digest` of `size`
    /// bytes, with its extracted size measured.
    pub fn layer_record(&self, diff_id: &Digest, digest: &Digest, size: u64) -> LayerRecord {
        LayerRecord {
            diff_id: diff_id.clone(),
            digest: digest.clone(),
            size,
            unpacked_size: Some(crate::util::fs::tree_size(&self.layer_path(diff_id))),
        }
    }

    /// Whether everything `image` needs is in the store: its manifest and
    /// config, its layers' directories and blobs. A pull checks this under
    /// the lock before indexing what it fetched without it: garbage
    /// collection may have taken a part meanwhile.
    pub fn holds(&self, image: &ImageRecord) -> bool {
        self.blob_path(&image.manifest).is_file()
            && self.blob_path(&image.config).is_file()
            && image.layers.iter().all(|layer| {
                self.has_layer(&layer.diff_id) && self.blob_path(&layer.digest).is_file()
            })
    }

    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_path(diff_id).is_dir()
    }

    fn layer_blobs_path(&self, diff_id: &Digest) -> PathBuf {
        self.root
            .join("layer-blobs")
            .join(format!("{}.json", diff_id.hex()))
    }

    /// Where the owners of layer `diff_id`'s files are cached
    /// (`layer::owners`).
    pub fn layer_owners_path(&self, diff_id: &Digest) -> PathBuf {
        self.root
            .join("layer-blobs")
            .join(format!("{}.owners.json", diff_id.hex()))
    }

    /// The compressed copies of layer `diff_id` the store holds.
    pub fn layer_blobs(&self, diff_id: &Digest) -> Result<Vec<LayerBlob>> {
        let blobs: Vec<LayerBlob> = read_json(&self.layer_blobs_path(diff_id))?.unwrap_or_default();
        Ok(blobs
            .into_iter()
            .filter(|blob| self.blob_path(&blob.digest).is_file())
            .collect())
    }

    /// The kept copy of layer `diff_id` compressed with `compression`.
    pub fn layer_blob(
        &self,
        diff_id: &Digest,
        compression: Compression,
    ) -> Result<Option<LayerBlob>> {
        Ok(self
            .layer_blobs(diff_id)?
            .into_iter()
            .find(|blob| blob.compression == compression))
    }

    /// Keeps `file` (verified by the caller to hold `blob`) as a compressed
    /// copy of layer `diff_id`. The blob lands first and the list after,
    /// so a crash between leaves an unlisted blob for garbage collection,
    /// never a listed blob that is missing.
    pub fn add_layer_blob(&self, diff_id: &Digest, blob: &LayerBlob, file: &Path) -> Result<()> {
        let target = self.blob_path(&blob.digest);
        std::fs::rename(file, &target)
            .with_context(|| format!("moving the layer blob into {}", target.display()))?;
        let _lock = FileLock::exclusive(&self.root.join("index.lock"))?;
        let path = self.layer_blobs_path(diff_id);
        let mut blobs: Vec<LayerBlob> = read_json(&path)?.unwrap_or_default();
        if blobs.contains(blob) {
            return Ok(());
        }
        blobs.retain(|known| known.compression != blob.compression);
        blobs.push(blob.clone());
        write_atomic(&path, &serde_json::to_vec_pretty(&blobs)?, 0o600)
    }

    pub fn temp_dir(&self, what: &str) -> Result<TempDir> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .root
            .join("tmp")
            .join(format!("{}-{n}-{what}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path, keep: false })
    }

    /// Moves a verified layer into place. If another pull got there first,
    /// theirs stays and ours goes.
    pub fn commit_layer(&self, mut temp: TempDir, diff_id: &Digest) -> Result<()> {
        let target = self.layer_path(diff_id);
        match std::fs::rename(&temp.path, &target) {
            Ok(()) => {
                temp.keep = true;
                Ok(())
            }
            Err(_) if target.is_dir() => Ok(()),
            Err(err) => {
                Err(err).with_context(|| format!("moving the layer into {}", target.display()))
            }
        }
    }

    /// Removes temp dirs of processes that no longer run (a killed pull).
    pub fn sweep_temp(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let pid = name.split('-').next().unwrap_or("");
            let alive = pid
                .parse::<u32>()
                .is_ok_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
            if !alive {
                let _ = remove_tree(&entry.path());
            }
        }
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        let Some(text) = read_if_present(&path)? else {
            return Ok(Index::default());
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{} is corrupt; remove it and pull again", path.display()))
    }

    fn write_index(&self, index: &mut Index) -> Result<()> {
        index.stamp = crate::util::random::hex_id()?;
        write_atomic(
            &self.index_path(),
            &serde_json::to_vec_pretty(index)?,
            0o600,
        )
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.read_index()?.images)
    }

    /// The image indexed as `name` (normalized, as `Reference` prints it).
    /// Answered from the lookup cache while the index has not changed since
    /// the answer was kept; otherwise from the index, and kept.
    pub fn image_named(&self, name: &str) -> Result<Option<ImageRecord>> {
        let cache = LookupCache::new(&self.root);
        let cached = stamp_of(&self.index_path()).and_then(|stamp| cache.get(&stamp, name));
        if cached.is_some() {
            return Ok(cached);
        }
        let index = self.read_index()?;
        let found = index.images.into_iter().find(|image| image.name == name);
        if let Some(record) = found.as_ref().filter(|_| !index.stamp.is_empty()) {
            cache.put(&index.stamp, record);
        }
        Ok(found)
    }

    /// Adds or replaces the image named `record.name`.
    pub fn put_image(&self, record: ImageRecord) -> Result<()> {
        self.put_images(vec![record])
    }

    /// Adds or replaces several images in one rewrite of the index: all
    /// of them land, or none.
    pub fn put_images(&self, records: Vec<ImageRecord>) -> Result<()> {
        let _lock = FileLock::exclusive(&self.root.join("index.lock"))?;
        let mut index = self.read_index()?;
        index
            .images
            .retain(|image| !records.iter().any(|record| record.name == image.name));
        index.images.extend(records);
        self.write_index(&mut index)
    }

    /// Removes the images `matches` selects; returns them.
    pub fn remove_images(
        &self,
        matches: impl Fn(&ImageRecord) -> bool,
    ) -> Result<Vec<ImageRecord>> {
        let _lock = FileLock::exclusive(&self.root.join("index.lock"))?;
        let mut index = self.read_index()?;
        let (removed, kept): (Vec<_>, Vec<_>) =
            index.images.into_iter().partition(|image| matches(image));
        index.images = kept;
        self.write_index(&mut index)?;
        Ok(removed)
    }

    /// Deletes every layer and blob no indexed image refers to, nor
    /// `pinned` names. Returns how many layers went and the bytes freed in
    /// blobs. `pinned` reads (from the store root, under the exclusive
    /// lock, so no container is being made meanwhile) the layers that
    /// containers are built on: they stay even when their image's name is
    /// gone. The store knows images, not containers; its caller does.
    pub fn collect_garbage(
        &self,
        pinned: impl FnOnce(&Path) -> Vec<String>,
    ) -> Result<(usize, usize)> {
        let _lock = self.lock_exclusive()?;
        let images = self.images()?;
        let in_use = pinned(&self.root);
        let used_layers: BTreeSet<&str> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.diff_id.hex()))
            .chain(in_use.iter().map(String::as_str))
            .collect();
        let mut used_blobs: BTreeSet<String> = images
            .iter()
            .flat_map(|i| [i.manifest.hex().to_string(), i.config.hex().to_string()])
            .collect();
        let mut layers = 0;
        for entry in std::fs::read_dir(self.root.join("layers"))?.flatten() {
            if !used_layers.contains(entry.file_name().to_string_lossy().as_ref()) {
                remove_tree(&entry.path())?;
                layers += 1;
            }
        }
        // A layer's compressed copies (HEX.json) and its owners
        // (HEX.owners.json) go with it.
        for entry in std::fs::read_dir(self.root.join("layer-blobs"))?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let hex = name.split('.').next().unwrap_or(&name);
            if used_layers.contains(hex) && name.ends_with(".owners.json") {
                continue;
            }
            if used_layers.contains(hex) {
                let blobs: Vec<LayerBlob> = read_json(&entry.path())?.unwrap_or_default();
                used_blobs.extend(blobs.iter().map(|b| b.digest.hex().to_string()));
            } else {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
            }
        }
        let mut blobs = 0;
        for entry in std::fs::read_dir(self.root.join("blobs/sha256"))?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !used_blobs.contains(&name) {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
                blobs += 1;
            }
        }
        self.sweep_temp();
        // Stale answers are never used, but each name ever looked up has
        // one: they go with the rest of the garbage.
        LookupCache::new(&self.root).clear();
        Ok((layers, blobs))
    }
}
