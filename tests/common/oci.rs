//! Builds OCI image layouts for the test registry: real tars, compressed
//! as asked, with digests, config and manifest written like any tool would.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[derive(Clone, Copy)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub struct Layer {
    pub tar: Vec<u8>,
    pub compression: Compression,
}

/// A tar of a directory tree, symlinks kept as links.
pub fn tar_of_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

/// A tar of the given files (`name`, `content`); a name ending in `/` is a
/// directory. Whiteouts are just files named `.wh.NAME`.
pub fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, name, &[][..]).unwrap();
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            builder
                .append_data(&mut header, name, content.as_bytes())
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn compress(layer: &Layer) -> (Vec<u8>, &'static str) {
    match layer.compression {
        Compression::None => (layer.tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&layer.tar).unwrap();
            (
                encoder.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Compression::Zstd => (
            zstd::encode_all(&layer.tar[..], 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

fn write_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256(bytes);
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    (digest, bytes.len() as u64)
}

/// Writes one image (config + manifest) into `layout`; returns the manifest
/// descriptor.
/// `config` is the image's container config (`Cmd`, `Env`...); a `history`
/// key in it becomes the image config's own history.
pub fn write_image(layout: &Path, layers: &[Layer], config: Value, architecture: &str) -> Value {
    let mut config = config;
    let history = config
        .as_object_mut()
        .and_then(|fields| fields.remove("history"))
        .unwrap_or_else(|| json!([]));
    let mut descriptors = vec![];
    let mut diff_ids = vec![];
    for layer in layers {
        let (bytes, media_type) = compress(layer);
        let (digest, size) = write_blob(layout, &bytes);
        descriptors.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
        diff_ids.push(sha256(&layer.tar));
    }
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let (config_digest, config_size) = write_blob(layout, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descriptors,
    });
    let (digest, size) = write_blob(layout, manifest.to_string().as_bytes());
    json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": size,
        "platform": {"architecture": architecture, "os": "linux"},
    })
}

/// Writes `index.json` naming `manifests` under the tag `latest`.
pub fn write_index(layout: &Path, manifests: Vec<Value>) {
    let manifests: Vec<Value> = manifests
        .into_iter()
        .map(|mut m| {
            m["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
            m
        })
        .collect();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        json!({"schemaVersion": 2, "manifests": manifests}).to_string(),
    )
    .unwrap();
}

/// Writes a multi-platform image: one manifest per architecture, gathered
/// in an image index that is itself the `latest` entry of the layout.
pub fn write_multi_platform(layout: &Path, images: Vec<(Vec<Layer>, &str)>) {
    let manifests: Vec<Value> = images
        .into_iter()
        .map(|(layers, arch)| write_image(layout, &layers, json!({}), arch))
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let (digest, size) = write_blob(layout, index.to_string().as_bytes());
    write_index(
        layout,
        vec![
            json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size}),
        ],
    );
}
