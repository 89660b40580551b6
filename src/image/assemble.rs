//! A new image in the store: a base image (or nothing, for import) with
//! new layers on top, a container config and history entries. The config
//! and manifest are written as blobs (the base's manifest format kept)
//! and the image indexed under its names, or its id when it has none.

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use super::digest::Digest;
use super::manifest::{layer_compression, ImageManifest, ManifestFormat, Platform};
use super::store::{ImageRecord, LayerBlob, Store};
use crate::util::time;

pub struct NewImage<'a> {
    /// The image the new layers go on, if any.
    pub base: Option<&'a ImageRecord>,
    /// The new layers, bottom first: diff_id and kept blob.
    pub layers: Vec<(Digest, LayerBlob)>,
    /// The image config's `config` (Cmd, Env, ...).
    pub config: Map<String, Value>,
    /// Steps before the new layers that changed only the config (a
    /// build's ENV, WORKDIR...): history entries with no layer, in order.
    pub earlier: Vec<String>,
    /// What made the new layers, for the history (`rocker commit`, ...).
    pub created_by: String,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// A build step's image, kept for the build cache (see
    /// `ImageRecord::build_cache`).
    pub build_cache: bool,
}

/// Writes the new image and indexes it under `names` (normalized
/// references; none: under its id). Returns its record.
pub fn assemble(store: &Store, new: NewImage<'_>, names: &[String]) -> Result<ImageRecord> {
    let created = time::rfc3339(time::now_nanos());
    let (mut config, base_manifest) = match new.base {
        Some(base) => {
            let config: Value = serde_json::from_slice(&store.read_blob(&base.config)?)
                .with_context(|| format!("reading the config of {}", base.name))?;
            let manifest: ImageManifest = serde_json::from_slice(&store.read_blob(&base.manifest)?)
                .with_context(|| format!("reading the manifest of {}", base.name))?;
            (config, Some(manifest))
        }
        None => {
            let platform = Platform::host();
            let mut config = json!({
                "architecture": platform.architecture,
                "os": platform.os,
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            });
            if let Some(variant) = platform.variant {
                config["variant"] = variant.into();
            }
            (config, None)
        }
    };
    config["created"] = created.clone().into();
    config["config"] = Value::Object(new.config);
    if let Some(author) = &new.author {
        config["author"] = author.clone().into();
    }
    // Fields that described the base's own build container.
    if let Some(fields) = config.as_object_mut() {
        fields.remove("container");
        fields.remove("container_config");
    }
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("the base config has no rootfs.diff_ids")?;
    diff_ids.extend(new.layers.iter().map(|(diff_id, _)| json!(diff_id)));
    let mut entry = json!({"created": created, "created_by": new.created_by});
    if let Some(comment) = &new.comment {
        entry["comment"] = comment.clone().into();
    }
    if let Some(author) = &new.author {
        entry["author"] = author.clone().into();
    }
    if new.layers.is_empty() {
        entry["empty_layer"] = true.into();
    }
    let mut entries: Vec<Value> = new
        .earlier
        .iter()
        .map(|step| json!({"created": created, "created_by": step, "empty_layer": true}))
        .collect();
    entries.push(entry);
    match config["history"].as_array_mut() {
        Some(history) => history.extend(entries),
        None => config["history"] = Value::Array(entries),
    }
    let config_bytes = serde_json::to_vec(&config)?;
    let config_digest = Digest::of(&config_bytes);

    let format = base_manifest.as_ref().map_or(ManifestFormat::Oci, |m| {
        ManifestFormat::of(m.media_type.as_deref())
    });
    let mut layer_descriptors = vec![];
    let mut records = vec![];
    if let (Some(base), Some(manifest)) = (new.base, &base_manifest) {
        for (descriptor, record) in manifest.layers.iter().zip(&base.layers) {
            let compression = layer_compression(&descriptor.media_type)?;
            layer_descriptors.push(json!({
                "mediaType": format.layer_media_type(compression)?,
                "digest": descriptor.digest,
                "size": descriptor.size,
            }));
            records.push(record.clone());
        }
    }
    for (diff_id, blob) in &new.layers {
        layer_descriptors.push(json!({
            "mediaType": format.layer_media_type(blob.compression)?,
            "digest": blob.digest,
            "size": blob.size,
        }));
        records.push(store.layer_record(diff_id, &blob.digest, blob.size));
    }
    let manifest_bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": format.manifest_media_type(),
        "config": {
            "mediaType": format.config_media_type(),
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": layer_descriptors,
    }))?;
    let manifest_digest = Digest::of(&manifest_bytes);
    store.write_blob(&config_digest, &config_bytes)?;
    store.write_blob(&manifest_digest, &manifest_bytes)?;
    let record = ImageRecord {
        name: config_digest.to_string(),
        manifest: manifest_digest,
        config: config_digest.clone(),
        layers: records,
        platform: format!(
            "{}/{}",
            config["os"].as_str().unwrap_or("linux"),
            config["architecture"].as_str().unwrap_or("")
        ),
        pulled: ImageRecord::now(),
        build_cache: new.build_cache,
    };
    let named: Vec<ImageRecord> = if names.is_empty() {
        vec![record.clone()]
    } else {
        names
            .iter()
            .map(|name| ImageRecord {
                name: name.clone(),
                ..record.clone()
            })
            .collect()
    };
    store.put_images(named)?;
    Ok(record)
}
