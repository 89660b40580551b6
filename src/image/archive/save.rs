//! Writing images as one tar stream: docker-archive (what `docker save`
//! writes and `docker load` reads: `manifest.json`, `repositories`, a
//! config per image and a directory per layer holding its plain tar) or
//! oci-archive (an OCI image layout: `oci-layout`, `index.json` and the
//! compressed blobs as the store keeps them). Images in one archive share
//! the layers they have in common.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::image::digest::{Digest, VerifyingReader};
use crate::image::layer::codec;
use crate::image::manifest::{rewrite_manifest, ManifestFormat, OCI_INDEX, OCI_MANIFEST};
use crate::image::reference::Reference;
use crate::image::store::{ImageRecord, LayerBlob, Store};
use crate::image::stored::StoredImage;

/// The archive formats rocker writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Docker,
    Oci,
}

impl ArchiveFormat {
    pub fn parse(text: &str) -> Result<ArchiveFormat> {
        match text {
            "docker-archive" | "docker" => Ok(ArchiveFormat::Docker),
            "oci-archive" | "oci" => Ok(ArchiveFormat::Oci),
            _ => bail!("unknown archive format {text:?}: expected docker-archive or oci-archive"),
        }
    }
}

/// One image to save, and the names it goes under (none when it was
/// named by id, as docker does).
pub struct SaveItem {
    pub image: ImageRecord,
    pub names: Vec<String>,
}

/// A kept blob of layer `diff_id`: the one the manifest names when the
/// store has it, else any other copy.
fn layer_blob(store: &Store, diff_id: &Digest, named: &Digest, image: &str) -> Result<LayerBlob> {
    let blobs = store.layer_blobs(diff_id)?;
    blobs
        .iter()
        .find(|blob| blob.digest == *named)
        .or(blobs.first())
        .cloned()
        .with_context(|| {
            format!(
                "the store has no compressed copy of layer {diff_id} of {image} (it was \
                 pulled by an older rocker); run rocker pull {image} and save again"
            )
        })
}

/// Writes `items` to `out` as one archive.
pub fn save(
    store: &Store,
    items: &[SaveItem],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<()> {
    let _shared = store.lock_shared()?;
    let mut tar = tar::Builder::new(out);
    match format {
        ArchiveFormat::Docker => write_docker_archive(store, items, &mut tar)?,
        ArchiveFormat::Oci => write_oci_archive(store, items, &mut tar)?,
    }
    tar.into_inner()
        .context("finishing the archive")?
        .flush()
        .context("writing the archive")?;
    Ok(())
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_entry_type(kind);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_bytes(tar: &mut tar::Builder<impl Write>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut header = header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
        .with_context(|| format!("writing {path} into the archive"))
}

fn append_dir(tar: &mut tar::Builder<impl Write>, path: &str) -> Result<()> {
    let mut header = header(0, 0o755, tar::EntryType::Directory);
    tar.append_data(&mut header, path, std::io::empty())
        .with_context(|| format!("writing {path} into the archive"))
}

/// The tar of a layer, decompressed from its kept blob and checked against
/// its diff_id while it streams.
fn append_layer_tar(
    tar: &mut tar::Builder<impl Write>,
    store: &Store,
    path: &str,
    diff_id: &Digest,
    blob: &LayerBlob,
) -> Result<()> {
    let open = || -> Result<Box<dyn Read>> {
        let file = std::fs::File::open(store.blob_path(&blob.digest))
            .with_context(|| format!("opening the blob {}", blob.digest))?;
        codec::decoder(std::io::BufReader::new(file), blob.compression)
    };
    // The tar header needs the size first: one pass to count it.
    let size = std::io::copy(&mut open()?, &mut std::io::sink())
        .with_context(|| format!("reading layer {diff_id}"))?;
    let mut reader = VerifyingReader::new(open()?, size);
    let mut header = header(size, 0o644, tar::EntryType::Regular);
    tar.append_data(&mut header, path, &mut reader)
        .with_context(|| format!("writing layer {diff_id} into the archive"))?;
    let (digest, _) = reader.finish();
    if digest != *diff_id {
        bail!(
            "the stored blob {} of layer {diff_id} holds {digest} instead; pull the image again",
            blob.digest
        );
    }
    Ok(())
}

/// docker-archive. Layers go under their legacy ids (a chain: each id
/// hashes its parent's with its diff_id), as `docker save` names them.
fn write_docker_archive(
    store: &Store,
    items: &[SaveItem],
    tar: &mut tar::Builder<impl Write>,
) -> Result<()> {
    let mut written = BTreeSet::new();
    let mut manifest = vec![];
    let mut repositories = serde_json::Map::new();
    for item in items {
        let parts = StoredImage::read(store, &item.image)?;
        let mut parent: Option<String> = None;
        let mut layer_paths = vec![];
        for (descriptor, diff_id) in parts
            .manifest
            .layers
            .iter()
            .zip(&parts.config.rootfs.diff_ids)
        {
            let chain = match &parent {
                Some(parent) => format!("{parent} {diff_id}"),
                None => diff_id.to_string(),
            };
            let id = Digest::of(chain.as_bytes()).hex().to_string();
            if written.insert(id.clone()) {
                let blob = layer_blob(store, diff_id, &descriptor.digest, &item.image.name)?;
                append_dir(tar, &format!("{id}/"))?;
                append_bytes(tar, &format!("{id}/VERSION"), b"1.0")?;
                let mut legacy =
                    json!({"id": id, "created": "1970-01-01T00:00:00Z", "os": parts.config.os});
                if let Some(parent) = &parent {
                    legacy["parent"] = parent.clone().into();
                }
                append_bytes(tar, &format!("{id}/json"), &serde_json::to_vec(&legacy)?)?;
                append_layer_tar(tar, store, &format!("{id}/layer.tar"), diff_id, &blob)?;
            }
            layer_paths.push(format!("{id}/layer.tar"));
            parent = Some(id);
        }
        let config_path = format!("{}.json", item.image.config.hex());
        if written.insert(config_path.clone()) {
            append_bytes(tar, &config_path, &parts.config_bytes)?;
        }
        // docker's own short names: `alpine:latest`, `user/app:1`.
        let names: Vec<String> = item
            .names
            .iter()
            .map(|name| Reference::parse(name).map_or(name.clone(), |r| r.familiar()))
            .collect();
        for name in &names {
            let (repository, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
            let tags = repositories
                .entry(repository.to_string())
                .or_insert_with(|| json!({}));
            if let Some(top) = &parent {
                tags[tag] = top.clone().into();
            }
        }
        manifest.push(json!({
            "Config": config_path,
            "RepoTags": names,
            "Layers": layer_paths,
        }));
    }
    append_bytes(tar, "manifest.json", &serde_json::to_vec(&manifest)?)?;
    append_bytes(
        tar,
        "repositories",
        &serde_json::to_vec(&Value::Object(repositories))?,
    )?;
    Ok(())
}

/// oci-archive: the blobs as the store keeps them, so the manifest (OCI's
/// own, rewritten from Docker's format when the image has that) names the
/// digests a registry knows.
fn write_oci_archive(
    store: &Store,
    items: &[SaveItem],
    tar: &mut tar::Builder<impl Write>,
) -> Result<()> {
    let mut written = BTreeSet::new();
    let mut index = vec![];
    append_dir(tar, "blobs/")?;
    append_dir(tar, "blobs/sha256/")?;
    for item in items {
        let parts = StoredImage::read(store, &item.image)?;
        let mut layers = vec![];
        for (descriptor, diff_id) in parts
            .manifest
            .layers
            .iter()
            .zip(&parts.config.rootfs.diff_ids)
        {
            let blob = layer_blob(store, diff_id, &descriptor.digest, &item.image.name)?;
            if written.insert(blob.digest.clone()) {
                let path = store.blob_path(&blob.digest);
                let mut file = std::fs::File::open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                let mut header = header(blob.size, 0o644, tar::EntryType::Regular);
                tar.append_data(&mut header, blob_entry(&blob.digest), &mut file)
                    .with_context(|| format!("writing layer {diff_id} into the archive"))?;
            }
            layers.push(blob);
        }
        let unchanged = ManifestFormat::of(parts.manifest.media_type.as_deref())
            == ManifestFormat::Oci
            && layers
                .iter()
                .zip(&parts.manifest.layers)
                .all(|(blob, descriptor)| blob.digest == descriptor.digest);
        let manifest_bytes = if unchanged {
            parts.manifest_bytes
        } else {
            let media_types = layers
                .iter()
                .map(|blob| ManifestFormat::Oci.layer_media_type(blob.compression))
                .collect::<Result<Vec<_>>>()?;
            let blobs: Vec<(&str, &Digest, u64)> = media_types
                .iter()
                .zip(&layers)
                .map(|(media_type, blob)| (*media_type, &blob.digest, blob.size))
                .collect();
            rewrite_manifest(&parts.manifest_bytes, ManifestFormat::Oci, &blobs)?
        };
        for (digest, bytes) in [
            (item.image.config.clone(), &parts.config_bytes),
            (Digest::of(&manifest_bytes), &manifest_bytes),
        ] {
            if written.insert(digest.clone()) {
                append_bytes(tar, &blob_entry(&digest), bytes)?;
            }
        }
        let descriptor = |name: Option<&String>| {
            let mut entry = json!({
                "mediaType": OCI_MANIFEST,
                "digest": Digest::of(&manifest_bytes),
                "size": manifest_bytes.len(),
            });
            if let Some(name) = name {
                entry["annotations"] = json!({
                    "org.opencontainers.image.ref.name": name,
                    "io.containerd.image.name": name,
                });
            }
            entry
        };
        if item.names.is_empty() {
            index.push(descriptor(None));
        }
        index.extend(item.names.iter().map(|name| descriptor(Some(name))));
    }
    append_bytes(tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index});
    append_bytes(tar, "index.json", &serde_json::to_vec(&index)?)?;
    Ok(())
}

fn blob_entry(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}
