//! An image as the store holds it: its manifest and config, read back and
//! checked against each other, for the commands that send it elsewhere
//! (push, save).

use anyhow::{bail, Context, Result};

use super::manifest::{ImageConfig, ImageManifest};
use super::store::{ImageRecord, Store};

pub struct StoredImage {
    pub manifest: ImageManifest,
    pub manifest_bytes: Vec<u8>,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
}

impl StoredImage {
    pub fn read(store: &Store, image: &ImageRecord) -> Result<StoredImage> {
        let manifest_bytes = store.read_blob(&image.manifest)?;
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .with_context(|| format!("reading the manifest of {}", image.name))?;
        let config_bytes = store.read_blob(&image.config)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .with_context(|| format!("reading the config of {}", image.name))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            bail!(
                "the stored image {} is inconsistent: its config lists {} layers, its \
                 manifest {}",
                image.name,
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            );
        }
        Ok(StoredImage {
            manifest,
            manifest_bytes,
            config,
            config_bytes,
        })
    }
}
