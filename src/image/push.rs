//! `rocker push`: an image from the store to a registry. Each layer goes
//! as a compressed blob the store keeps (the very bytes pulled, or a copy
//! compressed once and kept, so a second push sends the same digests);
//! blobs the repository has are skipped, blobs of another repository on
//! the same registry are mounted, the rest are uploaded, four at a time;
//! then the config, then the manifest under the tag.

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};

use super::digest::Digest;
use super::distribution::client::Registry;
use super::distribution::registries_conf::Endpoint;
use super::distribution::upload::{BlobSource, Uploaded};
use super::layer::codec;
use super::manifest::{layer_compression, rewrite_manifest, Compression, ManifestFormat};
use super::pull::{layer_bar, PARALLEL_LAYERS};
use super::store::{ImageRecord, LayerBlob, Store};
use super::stored::StoredImage;
use crate::util::parallel::try_for_each;

pub struct PushOptions {
    /// The manifest format to push; the image's own when unsaid.
    pub format: Option<ManifestFormat>,
    /// How layers are compressed; each layer as the store has it when
    /// unsaid.
    pub compression: Option<Compression>,
    /// Progress lines (only when stderr is a terminal).
    pub progress: bool,
}

impl PushOptions {
    pub fn new(
        format: Option<ManifestFormat>,
        compression: Option<Compression>,
        quiet: bool,
    ) -> PushOptions {
        PushOptions {
            format,
            compression,
            progress: !quiet && std::io::stderr().is_terminal(),
        }
    }
}

/// What the registry now holds under the tag.
pub struct Pushed {
    pub digest: Digest,
    pub size: usize,
    /// Layer blobs sent, mounted, and found present.
    pub sent: usize,
    pub mounted: usize,
    pub present: usize,
}

/// One layer as it will go: the blob and its descriptor's media type.
struct LayerPlan {
    blob: LayerBlob,
    media_type: &'static str,
}

/// Pushes `image` to `endpoint` under `tag`. `mount_from` names the
/// image's own repository when it lives on the same registry.
pub fn push(
    store: &Store,
    registry: &Registry,
    endpoint: &Endpoint,
    image: &ImageRecord,
    tag: &str,
    mount_from: Option<&str>,
    options: &PushOptions,
) -> Result<Pushed> {
    // Garbage collection waits while the blobs are chosen (and any copy
    // compressed), not while they are sent: the image's blobs are kept as
    // long as it is indexed, and an upload reads a file it has open.
    let shared = store.lock_shared()?;
    let StoredImage {
        manifest,
        manifest_bytes,
        config,
        config_bytes,
    } = StoredImage::read(store, image)?;
    let format = options
        .format
        .unwrap_or_else(|| ManifestFormat::of(manifest.media_type.as_deref()));

    let mut plans = vec![];
    for (descriptor, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let stored = layer_compression(&descriptor.media_type)?;
        let wanted = options.compression.unwrap_or(stored);
        let blob = if wanted == stored && store.blob_path(&descriptor.digest).is_file() {
            LayerBlob {
                digest: descriptor.digest.clone(),
                size: descriptor.size,
                compression: stored,
            }
        } else {
            compressed_copy(store, diff_id, wanted, image)?
        };
        plans.push(LayerPlan {
            blob,
            media_type: format.layer_media_type(wanted)?,
        });
    }

    drop(shared);
    let bars = options.progress.then(indicatif::MultiProgress::new);
    let counts = std::sync::Mutex::new((0, 0, 0));
    try_for_each(&plans, PARALLEL_LAYERS, |plan| {
        let bar = bars
            .as_ref()
            .map(|bars| layer_bar(bars, &plan.blob.digest, plan.blob.size));
        let file = std::fs::File::open(store.blob_path(&plan.blob.digest))
            .with_context(|| format!("opening the blob of layer {}", plan.blob.digest))?;
        let result = registry
            .upload_blob(
                endpoint,
                &plan.blob.digest,
                plan.blob.size,
                &BlobSource::File(&file),
                mount_from,
                bar.as_ref(),
            )
            .with_context(|| format!("pushing layer {}", plan.blob.digest));
        if let Some(bar) = bar {
            match &result {
                Ok(Uploaded::Sent) => bar.finish_with_message("pushed"),
                Ok(Uploaded::Mounted) => bar.finish_with_message("mounted"),
                Ok(Uploaded::Present) => bar.finish_with_message("already exists"),
                Err(_) => bar.abandon_with_message("failed"),
            }
        }
        let mut counts = counts.lock().unwrap();
        match result? {
            Uploaded::Sent => counts.0 += 1,
            Uploaded::Mounted => counts.1 += 1,
            Uploaded::Present => counts.2 += 1,
        }
        Ok(())
    })?;
    registry
        .upload_blob(
            endpoint,
            &image.config,
            config_bytes.len() as u64,
            &BlobSource::Bytes(&config_bytes),
            mount_from,
            None,
        )
        .context("pushing the image config")?;

    let unchanged = format == ManifestFormat::of(manifest.media_type.as_deref())
        && plans
            .iter()
            .zip(&manifest.layers)
            .all(|(plan, descriptor)| plan.blob.digest == descriptor.digest);
    let bytes = if unchanged {
        manifest_bytes
    } else {
        let layers: Vec<(&str, &Digest, u64)> = plans
            .iter()
            .map(|plan| (plan.media_type, &plan.blob.digest, plan.blob.size))
            .collect();
        rewrite_manifest(&manifest_bytes, format, &layers)?
    };
    let digest = registry.put_manifest(endpoint, tag, format.manifest_media_type(), &bytes)?;
    let (sent, mounted, present) = counts.into_inner().unwrap();
    Ok(Pushed {
        digest,
        size: bytes.len(),
        sent,
        mounted,
        present,
    })
}

/// The store's copy of layer `diff_id` compressed with `compression`,
/// made (once, and kept) from another copy when there is none.
fn compressed_copy(
    store: &Store,
    diff_id: &Digest,
    compression: Compression,
    image: &ImageRecord,
) -> Result<LayerBlob> {
    if let Some(blob) = store.layer_blob(diff_id, compression)? {
        return Ok(blob);
    }
    let Some(source) = store.layer_blobs(diff_id)?.into_iter().next() else {
        bail!(
            "the store has no compressed copy of layer {diff_id} of {} (it was pulled by an \
             older rocker); run rocker pull {} and push again",
            image.name,
            image.name
        );
    };
    let temp = store.temp_dir("blob")?;
    let path = temp.path().join("data");
    let file = std::fs::File::open(store.blob_path(&source.digest))
        .with_context(|| format!("opening the blob {}", source.digest))?;
    let mut tar = codec::decoder(std::io::BufReader::new(file), source.compression)?;
    let encoded = codec::encode(&mut tar, compression, &path)
        .with_context(|| format!("compressing layer {diff_id}"))?;
    if encoded.diff_id != *diff_id {
        bail!(
            "the stored blob {} of layer {diff_id} holds {} instead; pull {} again",
            source.digest,
            encoded.diff_id,
            image.name
        );
    }
    let blob = LayerBlob {
        digest: encoded.digest,
        size: encoded.size,
        compression,
    };
    store.add_layer_blob(diff_id, &blob, &path)?;
    Ok(blob)
}
