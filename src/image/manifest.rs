//! OCI and Docker schema 2 manifests, indexes and manifest lists, the image
//! config fields rocker reads, and picking a platform from an index.

use std::fmt;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What we send in `Accept` for manifests, best first.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Manifests and configs are small; anything bigger is hostile or broken.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// `os/arch[/variant]`, as `--platform` takes it.
    pub fn parse(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => bail!("invalid platform {text:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64"),
        }
    }

    /// The platform this rocker binary runs on, in OCI's names.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_string(),
            os: std::env::consts::OS.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// arm64 images often say variant v8, or nothing at all: the same thing.
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", Some("v8")) => None,
            (_, variant) => variant,
        }
    }

    fn matches(&self, wanted: &Platform, strict_variant: bool) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (!strict_variant || self.normalized_variant() == wanted.normalized_variant())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

pub enum Manifest {
    Image(ImageManifest),
    Index(Index),
}

/// Parses a manifest or index; the JSON's own mediaType, the response's
/// Content-Type, or its shape says which.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion", default)]
        schema_version: Option<u32>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).context("the manifest is not valid JSON")?;
    if probe.schema_version == Some(1) {
        bail!("Docker schema 1 manifests are not supported (the image is too old: re-push it)");
    }
    let media_type = probe
        .media_type
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string()));
    let is_index = match media_type.as_deref() {
        Some(OCI_INDEX) | Some(DOCKER_LIST) => true,
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
        _ => probe.manifests.is_some(),
    };
    if is_index {
        Ok(Manifest::Index(
            serde_json::from_slice(bytes).context("reading the image index")?,
        ))
    } else {
        Ok(Manifest::Image(
            serde_json::from_slice(bytes).context("reading the image manifest")?,
        ))
    }
}

/// Picks the manifest for `wanted` from an index: an exact variant match
/// first, then any variant of the same os/arch. The error lists what exists.
pub fn select<'a>(index: &'a Index, wanted: &Platform, reference: &str) -> Result<&'a Descriptor> {
    let candidates = || index.manifests.iter().filter(|d| d.platform.is_some());
    let found = candidates()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(wanted, true)))
        .or_else(|| {
            // Without an asked-for variant, take the first of the family.
            if wanted.variant.is_some() {
                return None;
            }
            candidates().find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.matches(wanted, false))
            })
        });
    match found {
        Some(descriptor) => Ok(descriptor),
        None => {
            let available: Vec<String> = candidates()
                .filter_map(|d| d.platform.as_ref())
                .filter(|p| p.os != "unknown")
                .map(Platform::to_string)
                .collect();
            bail!(
                "{reference} has no image for {wanted}; available: {} (choose one with --platform)",
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            )
        }
    }
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The two manifest formats registries take: OCI's and Docker's schema 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    Oci,
    Docker,
}

impl ManifestFormat {
    /// `oci`, or `v2s2` / `docker` (the names podman and skopeo use).
    pub fn parse(text: &str) -> Result<ManifestFormat> {
        match text {
            "oci" => Ok(ManifestFormat::Oci),
            "v2s2" | "docker" => Ok(ManifestFormat::Docker),
            _ => bail!("unknown manifest format {text:?}: expected oci or v2s2"),
        }
    }

    /// The format of a manifest with this media type (OCI when unsaid).
    pub fn of(media_type: Option<&str>) -> ManifestFormat {
        match media_type {
            Some(DOCKER_MANIFEST) => ManifestFormat::Docker,
            _ => ManifestFormat::Oci,
        }
    }

    pub fn manifest_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn config_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_CONFIG,
            ManifestFormat::Docker => DOCKER_CONFIG,
        }
    }

    /// A layer's media type; Docker's format has no zstd.
    pub fn layer_media_type(self, compression: Compression) -> Result<&'static str> {
        Ok(match (self, compression) {
            (ManifestFormat::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
            (ManifestFormat::Oci, Compression::Gzip) => {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            }
            (ManifestFormat::Oci, Compression::Zstd) => {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            }
            (ManifestFormat::Docker, Compression::None) => {
                "application/vnd.docker.image.rootfs.diff.tar"
            }
            (ManifestFormat::Docker, Compression::Gzip) => {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            }
            (ManifestFormat::Docker, Compression::Zstd) => bail!(
                "Docker's v2s2 manifests cannot carry zstd layers; push with --format oci, \
                 or with --compression-format gzip"
            ),
        })
    }
}

impl Compression {
    /// `gzip`, `zstd` or `none`, as --compression-format takes it.
    pub fn parse(text: &str) -> Result<Compression> {
        match text {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "none" | "uncompressed" => Ok(Compression::None),
            _ => bail!("unknown compression {text:?}: expected gzip, zstd or none"),
        }
    }
}

/// A manifest for other layer blobs or another format: `original` with
/// its media types, layer digests and sizes replaced (annotations of a
/// layer whose blob changed go, as they described the old blob).
pub fn rewrite_manifest(
    original: &[u8],
    format: ManifestFormat,
    blobs: &[(&str, &Digest, u64)],
) -> Result<Vec<u8>> {
    let mut manifest: serde_json::Value = serde_json::from_slice(original)?;
    manifest["schemaVersion"] = 2.into();
    manifest["mediaType"] = format.manifest_media_type().into();
    manifest["config"]["mediaType"] = format.config_media_type().into();
    let layers = manifest["layers"]
        .as_array_mut()
        .context("the stored manifest has no layers array")?;
    if layers.len() != blobs.len() {
        bail!(
            "the manifest has {} layers, not {}",
            layers.len(),
            blobs.len()
        );
    }
    for (layer, (media_type, digest, size)) in layers.iter_mut().zip(blobs) {
        if layer["digest"].as_str() != Some(&digest.to_string()) {
            if let Some(fields) = layer.as_object_mut() {
                fields.remove("annotations");
            }
        }
        layer["mediaType"] = (*media_type).into();
        layer["digest"] = digest.to_string().into();
        layer["size"] = (*size).into();
    }
    if format == ManifestFormat::Docker {
        // Docker's schema 2 has no place for these.
        if let Some(fields) = manifest.as_object_mut() {
            for key in ["annotations", "artifactType", "subject"] {
                fields.remove(key);
            }
        }
    }
    Ok(serde_json::to_vec(&manifest)?)
}

pub fn layer_compression(media_type: &str) -> Result<Compression> {
    let known = [
        ("application/vnd.oci.image.layer.v1.tar", Compression::None),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            Compression::None,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar",
            Compression::None,
        ),
    ];
    match known.iter().find(|(name, _)| *name == media_type) {
        Some((_, compression)) => Ok(*compression),
        None => bail!("unsupported layer media type {media_type:?}"),
    }
}

/// The parts of an image config rocker reads. Unknown fields are kept in
/// the stored JSON for `image inspect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    /// How each layer was made, oldest first; entries with `empty_layer`
    /// made none.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// One step of an image's history (the OCI config's `history`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// EXPOSE ports, `80/tcp` (the values are empty objects).
    #[serde(default)]
    pub exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// VOLUME paths (the values are empty objects).
    #[serde(default)]
    pub volumes: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

impl ImageConfig {
    /// The config `bytes` of an image whose manifest is `manifest`: it must
    /// list as many layers (diff_ids) as the manifest has.
    pub fn of_manifest(bytes: &[u8], manifest: &ImageManifest) -> Result<ImageConfig> {
        let config: ImageConfig =
            serde_json::from_slice(bytes).context("reading the image config")?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            bail!(
                "the config lists {} layers but the manifest {}",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            );
        }
        Ok(config)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn index() -> Index {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":1,"platform":{{"architecture":"arm","os":"linux","variant":"v6"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D3}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D3}","size":1,"platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#
        );
        match parse(json.as_bytes(), None).unwrap() {
            Manifest::Index(index) => index,
            Manifest::Image(_) => panic!("parsed as an image"),
        }
    }

    #[test]
    fn platform_selection() {
        let index = index();
        let pick = |p: &str| {
            select(&index, &Platform::parse(p).unwrap(), "img").map(|d| d.digest.to_string())
        };
        assert_eq!(pick("linux/amd64").unwrap(), D1);
        assert_eq!(pick("linux/arm64").unwrap(), D3);
        assert_eq!(pick("linux/arm64/v8").unwrap(), D3);
        assert_eq!(pick("linux/arm").unwrap(), D2);
        let err = pick("linux/arm/v7").unwrap_err().to_string();
        assert!(
            err.contains("available: linux/amd64, linux/arm/v6, linux/arm64/v8 "),
            "{err}"
        );
        assert!(pick("linux/s390x").is_err());
    }

    #[test]
    fn manifests_by_type_or_shape() {
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{D1}","size":2}},"layers":[]}}"#
        );
        assert!(matches!(
            parse(image.as_bytes(), Some(DOCKER_MANIFEST)).unwrap(),
            Manifest::Image(_)
        ));
        assert!(matches!(
            parse(image.as_bytes(), None).unwrap(),
            Manifest::Image(_)
        ));
        let list = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse(list.as_bytes(), Some(DOCKER_LIST)).unwrap(),
            Manifest::Index(_)
        ));
        assert!(parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).is_err());
        let bad_digest = r#"{"config":{"digest":"sha256:../etc","size":1},"layers":[]}"#;
        assert!(parse(bad_digest.as_bytes(), None).is_err());
    }

    #[test]
    fn platforms_and_compression() {
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v1/x").is_err());
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            layer_compression("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            Compression::Gzip
        );
        assert!(layer_compression("application/x-bogus").is_err());
    }
}
