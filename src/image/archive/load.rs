//! Reading images from archives into the store: docker-archive (what
//! `docker save` and skopeo write), oci-archive, and OCI layout
//! directories. Every digest is checked, every layer goes through the
//! same extractor as a pull (a hostile archive writes nothing outside the
//! store), and the index gets the images only once all their layers are
//! in: a killed load leaves no half image.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::json;

use crate::image::digest::Digest;
use crate::image::layer::ingest::{take_layer, ImageBudget, Incoming, Keep};
use crate::image::manifest::{
    self, layer_compression, Compression, ImageConfig, Manifest, ManifestFormat, Platform,
    MAX_MANIFEST_SIZE, OCI_CONFIG, OCI_MANIFEST,
};
use crate::image::pull::PARALLEL_LAYERS;
use crate::image::reference::Reference;
use crate::image::store::{ImageRecord, LayerBlob, Store};
use crate::util::fs::FileRange;
use crate::util::parallel::try_for_each;

/// More entries than this in one archive is not an image.
const MAX_ENTRIES: usize = 1_000_000;

/// Where an archive's members are: in a tar file (found by the offsets of
/// its entries), or in an OCI layout directory.
enum Members {
    Tar {
        file: File,
        /// Member name -> (data offset, size). Links resolved.
        entries: HashMap<String, (u64, u64)>,
    },
    Dir(PathBuf),
}

/// `./a//b/` -> `a/b`: the one spelling of a member's name.
fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Where a link in the archive points: the member it names, relative to
/// the link's own directory for a symlink (docker save links a layer.tar
/// that two images share), from the root for a hard link.
fn link_target(name: &str, target: &str, symbolic: bool) -> Option<String> {
    let mut parts: Vec<&str> = if symbolic && !target.starts_with('/') {
        name.split('/').collect::<Vec<_>>()[..name.split('/').count() - 1].to_vec()
    } else {
        vec![]
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            // Above the archive's root is nowhere.
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

impl Members {
    fn open_tar(file: File) -> Result<Members> {
        let mut entries = HashMap::new();
        let mut links = vec![];
        {
            let mut archive = tar::Archive::new(std::io::BufReader::new(&file));
            for entry in archive.entries().context("reading the archive")? {
                let entry = entry.context("reading the archive")?;
                if entries.len() + links.len() >= MAX_ENTRIES {
                    bail!("the archive has more than {MAX_ENTRIES} entries; it is not an image");
                }
                let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                let kind = entry.header().entry_type();
                if kind.is_file() {
                    entries.insert(name, (entry.raw_file_position(), entry.size()));
                } else if kind.is_symlink() || kind.is_hard_link() {
                    if let Some(target) = entry.link_name_bytes() {
                        links.push((
                            name,
                            String::from_utf8_lossy(&target).to_string(),
                            kind.is_symlink(),
                        ));
                    }
                }
            }
        }
        // A link to a link is followed a few times, never in a loop.
        for _ in 0..8 {
            for (name, target, symbolic) in &links {
                if let Some(found) = link_target(name, target, *symbolic)
                    .and_then(|target| entries.get(&target).copied())
                {
                    entries.entry(name.clone()).or_insert(found);
                }
            }
        }
        Ok(Members::Tar { file, entries })
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Members::Tar { entries, .. } => entries.contains_key(name),
            Members::Dir(root) => root.join(name).is_file(),
        }
    }

    /// A member's content as a stream, and its size. `name` comes from the
    /// archive's own JSON: in a tar it is only a key; in a directory only
    /// names rocker made from digests are opened.
    fn open(&self, name: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        match self {
            Members::Tar { file, entries } => {
                let (offset, size) = *entries
                    .get(&normalize(name))
                    .with_context(|| format!("the archive has no {name}"))?;
                Ok((Box::new(FileRange::new(file, offset, size)), size))
            }
            Members::Dir(root) => {
                if name.starts_with('/') || name.split('/').any(|part| part == "..") {
                    bail!("the layout names {name:?}, outside itself");
                }
                let path = root.join(name);
                let file =
                    File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                let size = file.metadata()?.len();
                Ok((Box::new(std::io::BufReader::new(file)), size))
            }
        }
    }

    /// A small member (JSON), read whole.
    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let (reader, size) = self.open(name)?;
        if size > MAX_MANIFEST_SIZE {
            bail!(
                "{name} in the archive is {size} bytes, more than the {MAX_MANIFEST_SIZE} allowed"
            );
        }
        let mut bytes = vec![];
        reader
            .take(MAX_MANIFEST_SIZE)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {name} from the archive"))?;
        Ok(bytes)
    }

    /// How a member is compressed, from its first bytes.
    fn compression(&self, name: &str) -> Result<Compression> {
        let (reader, _) = self.open(name)?;
        let mut magic = vec![];
        reader.take(4).read_to_end(&mut magic)?;
        Ok(compression_of(&magic))
    }
}

pub fn compression_of(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// What a load brought in: an image under its names (none when the
/// archive named it not).
pub struct Loaded {
    pub id: Digest,
    pub names: Vec<String>,
}

/// Loads every image in `path`: a tar (docker-archive or oci-archive) or
/// an OCI layout directory.
pub fn load(
    store: &Store,
    path: &Path,
    budget: &ImageBudget,
    platform: &Platform,
) -> Result<Vec<Loaded>> {
    let _shared = store.lock_shared()?;
    store.sweep_temp();
    let members = if path.is_dir() {
        Members::Dir(path.to_path_buf())
    } else {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Members::open_tar(file).with_context(|| format!("reading {}", path.display()))?
    };
    let is_dir = matches!(members, Members::Dir(_));
    let (records, loaded) = if members.has("manifest.json") && !is_dir {
        load_docker_archive(store, &members, budget)?
    } else if members.has("index.json") && members.has("oci-layout") {
        load_oci_layout(store, &members, budget, platform)?
    } else {
        bail!(
            "{} is neither a docker-archive (a tar with manifest.json) nor an OCI layout \
             (index.json and oci-layout)",
            path.display()
        );
    };
    store.put_images(records)?;
    Ok(loaded)
}

/// The store's record of one image under `name`.
fn record(
    store: &Store,
    name: String,
    manifest: &Digest,
    config: &Digest,
    image_config: &ImageConfig,
    layers: &[(Digest, LayerBlob)],
) -> ImageRecord {
    ImageRecord {
        build_cache: false,
        name,
        manifest: manifest.clone(),
        config: config.clone(),
        layers: layers
            .iter()
            .map(|(diff_id, blob)| store.layer_record(diff_id, &blob.digest, blob.size))
            .collect(),
        platform: format!("{}/{}", image_config.os, image_config.architecture),
        pulled: ImageRecord::now(),
    }
}

/// The names an image goes under: the archive's, normalized; an image
/// the archive named not is filed under its id.
fn names_or_id(names: Vec<String>, id: &Digest) -> Result<Vec<String>> {
    let names: Vec<String> = names
        .iter()
        .map(|name| Reference::parse(name).map(|r| r.to_string()))
        .collect::<Result<_>>()?;
    Ok(if names.is_empty() {
        vec![id.to_string()]
    } else {
        names
    })
}

fn load_docker_archive(
    store: &Store,
    members: &Members,
    budget: &ImageBudget,
) -> Result<(Vec<ImageRecord>, Vec<Loaded>)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(&members.read_small("manifest.json")?)
        .context("reading the archive's manifest.json")?;
    let mut records = vec![];
    let mut loaded = vec![];
    for entry in entries {
        let config_bytes = members.read_small(&entry.config)?;
        let config_digest = Digest::of(&config_bytes);
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .with_context(|| format!("reading the image config {}", entry.config))?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            bail!(
                "the config {} lists {} layers but manifest.json {}",
                entry.config,
                config.rootfs.diff_ids.len(),
                entry.layers.len()
            );
        }
        let work: Vec<(&String, &Digest)> =
            entry.layers.iter().zip(&config.rootfs.diff_ids).collect();
        let layers = take_layers(&work, |(member, diff_id)| {
            if store.has_layer(diff_id) {
                if let Some(blob) = preferred_blob(store, diff_id)? {
                    return Ok(((*diff_id).clone(), blob));
                }
            }
            let compression = members.compression(member)?;
            let (reader, _) = members.open(member)?;
            let keep = Keep::compressed(compression);
            let incoming = Incoming {
                compression,
                blob: None,
                diff_id: Some(diff_id),
            };
            take_layer(store, reader, &incoming, keep, budget)
                .with_context(|| format!("layer {member}"))
        })?;
        // An OCI manifest for what the store now keeps.
        let layer_descriptors = layers
            .iter()
            .map(|(_, blob)| {
                Ok(json!({
                    "mediaType": ManifestFormat::Oci.layer_media_type(blob.compression)?,
                    "digest": blob.digest,
                    "size": blob.size,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        let manifest_bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
            "layers": layer_descriptors,
        }))?;
        let manifest_digest = Digest::of(&manifest_bytes);
        store.write_blob(&config_digest, &config_bytes)?;
        store.write_blob(&manifest_digest, &manifest_bytes)?;
        let names = names_or_id(entry.repo_tags.unwrap_or_default(), &config_digest)?;
        for name in &names {
            records.push(record(
                store,
                name.clone(),
                &manifest_digest,
                &config_digest,
                &config,
                &layers,
            ));
        }
        loaded.push(Loaded {
            id: config_digest,
            names: names
                .into_iter()
                .filter(|n| !n.starts_with("sha256:"))
                .collect(),
        });
    }
    Ok((records, loaded))
}

/// A kept blob of a layer the store has, gzip first (what push sends).
fn preferred_blob(store: &Store, diff_id: &Digest) -> Result<Option<LayerBlob>> {
    let blobs = store.layer_blobs(diff_id)?;
    Ok(blobs
        .iter()
        .find(|blob| blob.compression == Compression::Gzip)
        .or(blobs.first())
        .cloned())
}

/// Takes the layers in, four at a time, in their order.
fn take_layers<T: Sync>(
    work: &[T],
    take: impl Fn(&T) -> Result<(Digest, LayerBlob)> + Sync,
) -> Result<Vec<(Digest, LayerBlob)>> {
    let done: std::sync::Mutex<BTreeMap<usize, (Digest, LayerBlob)>> = Default::default();
    let indexed: Vec<(usize, &T)> = work.iter().enumerate().collect();
    try_for_each(&indexed, PARALLEL_LAYERS, |(index, item)| {
        let layer = take(item)?;
        done.lock().unwrap().insert(*index, layer);
        Ok(())
    })?;
    Ok(done.into_inner().unwrap().into_values().collect())
}

fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// A blob of the layout, checked against its digest.
fn read_verified(members: &Members, digest: &Digest) -> Result<Vec<u8>> {
    let bytes = members.read_small(&blob_member(digest))?;
    if Digest::of(&bytes) != *digest {
        bail!("the archive's blob {digest} does not match its digest");
    }
    Ok(bytes)
}

fn load_oci_layout(
    store: &Store,
    members: &Members,
    budget: &ImageBudget,
    platform: &Platform,
) -> Result<(Vec<ImageRecord>, Vec<Loaded>)> {
    let index = match manifest::parse(&members.read_small("index.json")?, None)? {
        Manifest::Index(index) => index,
        Manifest::Image(_) => bail!("the layout's index.json is not an index"),
    };
    // Each manifest once, with every name the index gives it.
    let mut by_manifest: Vec<(Digest, Vec<String>)> = vec![];
    for descriptor in &index.manifests {
        let mut digest = descriptor.digest.clone();
        if let Manifest::Index(nested) = manifest::parse(
            &read_verified(members, &digest)?,
            Some(&descriptor.media_type),
        )? {
            digest = manifest::select(&nested, platform, "the archive")?
                .digest
                .clone();
        }
        let annotations = descriptor.annotations.clone().unwrap_or_default();
        // containerd's full name, else the OCI ref name when it is one
        // (`app:1`, not a bare tag like `latest`).
        let name = annotations
            .get("io.containerd.image.name")
            .or(annotations
                .get("org.opencontainers.image.ref.name")
                .filter(|name| name.contains(':') || name.contains('/')))
            .cloned();
        match by_manifest.iter_mut().find(|(known, _)| *known == digest) {
            Some((_, names)) => names.extend(name),
            None => by_manifest.push((digest, name.into_iter().collect())),
        }
    }
    let mut records = vec![];
    let mut loaded = vec![];
    for (manifest_digest, names) in by_manifest {
        let manifest_bytes = read_verified(members, &manifest_digest)?;
        let Manifest::Image(image) = manifest::parse(&manifest_bytes, None)? else {
            bail!("the archive's {manifest_digest} is an index inside an index inside an index");
        };
        let config_bytes = read_verified(members, &image.config.digest)?;
        let config = ImageConfig::of_manifest(&config_bytes, &image)?;
        let work: Vec<_> = image.layers.iter().zip(&config.rootfs.diff_ids).collect();
        let layers = take_layers(&work, |(descriptor, diff_id)| {
            let blob = LayerBlob {
                digest: descriptor.digest.clone(),
                size: descriptor.size,
                compression: layer_compression(&descriptor.media_type)?,
            };
            if store.has_layer(diff_id) && store.blob_path(&blob.digest).is_file() {
                return Ok(((*diff_id).clone(), blob));
            }
            let (reader, _) = members.open(&blob_member(&descriptor.digest))?;
            let incoming = Incoming {
                compression: blob.compression,
                blob: Some((&descriptor.digest, descriptor.size)),
                diff_id: Some(diff_id),
            };
            take_layer(store, reader, &incoming, Keep::AsIs, budget)
                .with_context(|| format!("layer {}", descriptor.digest))
        })?;
        store.write_blob(&image.config.digest, &config_bytes)?;
        store.write_blob(&manifest_digest, &manifest_bytes)?;
        let names = names_or_id(names, &image.config.digest)?;
        for name in &names {
            records.push(record(
                store,
                name.clone(),
                &manifest_digest,
                &image.config.digest,
                &config,
                &layers,
            ));
        }
        loaded.push(Loaded {
            id: image.config.digest.clone(),
            names: names
                .into_iter()
                .filter(|n| !n.starts_with("sha256:"))
                .collect(),
        });
    }
    Ok((records, loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_and_links_stay_inside_the_archive() {
        assert_eq!(normalize("./a//b/"), "a/b");
        assert_eq!(
            link_target("abc/layer.tar", "../def/layer.tar", true).as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(link_target("abc/layer.tar", "../../x", true), None);
        assert_eq!(
            link_target("abc/x", "def/y", false).as_deref(),
            Some("def/y")
        );
        assert_eq!(compression_of(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(compression_of(b"ustar"), Compression::None);
    }
}
