//! `rocker pull`: reference -> registries.conf endpoints -> manifest (or
//! index, then the platform's manifest) -> config -> layers.
//!
//! Layers download in parallel; each streams through sha256 of the blob,
//! the decompressor and sha256 of the tar (the config's diff_id) straight
//! into extraction (`layer::ingest`), in its own temp directory, renamed
//! into place once both digests match. The compressed blob is kept, as it
//! came, for push; no uncompressed tarball ever touches the disk.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};

use super::digest::{Digest, VerifyingReader};
use super::distribution::client::{NotFound, Registry};
use super::distribution::registries_conf::{Endpoint, Registries};
use super::layer::ingest::{take_layer, ImageBudget, Incoming, Keep};
use super::manifest::{self, Descriptor, ImageConfig, Manifest, Platform, MAX_MANIFEST_SIZE};
use super::reference::Reference;
use super::store::{ImageRecord, Store};
use crate::error::StatusError;
use crate::host::config::Config;
use crate::util::parallel::try_for_each;

/// How often a pull fetches again what garbage collection took meanwhile.
const PULL_ROUNDS: usize = 3;

/// At most this many layers download (or upload) at once.
pub(super) const PARALLEL_LAYERS: usize = 4;

pub struct PullOptions {
    pub platform: Platform,
    /// Print progress lines (only when stderr is a terminal).
    pub progress: bool,
    /// The largest a layer may grow when decompressed.
    pub max_layer_size: u64,
    /// The largest all the layers of one pull may grow, together.
    pub max_image_size: u64,
}

impl PullOptions {
    pub fn new(platform: Option<Platform>, quiet: bool, config: &Config) -> Result<PullOptions> {
        Ok(PullOptions {
            platform: platform.unwrap_or_else(Platform::host),
            progress: !quiet && std::io::stderr().is_terminal(),
            max_layer_size: config.max_layer_size()?,
            max_image_size: config.max_image_size()?,
        })
    }
}

/// Pulls `reference` into the store, trying mirrors then the registry.
pub fn pull(
    store: &Store,
    registry: &Registry,
    registries: &Registries,
    reference: &Reference,
    options: &PullOptions,
) -> Result<ImageRecord> {
    // No lock while downloading: `rmi` and `image prune` must not wait on
    // a registry. What garbage collection takes meanwhile (a layer found
    // present, or one just fetched and not yet indexed) is fetched again.
    store.sweep_temp();
    let endpoints = registries.endpoints(reference)?;
    let mut failures = vec![];
    for endpoint in &endpoints {
        for _ in 0..PULL_ROUNDS {
            match pull_from(store, registry, endpoint, reference, options) {
                Ok(record) => {
                    let _shared = store.lock_shared()?;
                    if store.holds(&record) {
                        store.put_image(record.clone())?;
                        return Ok(record);
                    }
                }
                Err(err) => {
                    failures.push((endpoint.host.clone(), err));
                    break;
                }
            }
        }
    }
    if failures.is_empty() {
        bail!(
            "pulling {reference}: garbage collection kept removing its layers meanwhile \
             ({PULL_ROUNDS} rounds); try again"
        );
    }
    let (host, last) = failures
        .pop()
        .expect("registries.conf yields at least one endpoint");
    let mut message = if last.chain().any(|c| c.is::<NotFound>()) {
        format!("{reference}: image not found ({last:#})")
    } else {
        format!("pulling {reference} from {host}: {last:#}")
    };
    for (mirror, err) in failures {
        message.push_str(&format!("\n  mirror {mirror} failed too: {err:#}"));
    }
    Err(StatusError::new(crate::error::EXIT_ROCKER_FAILED, message).into())
}

fn pull_from(
    store: &Store,
    registry: &Registry,
    endpoint: &Endpoint,
    reference: &Reference,
    options: &PullOptions,
) -> Result<ImageRecord> {
    let (bytes, content_type) = registry.manifest(endpoint, &reference.manifest_reference())?;
    let top = Digest::of(&bytes);
    if let Some(wanted) = &reference.digest {
        if *wanted != top {
            bail!("the registry sent a manifest with digest {top} for {wanted}");
        }
    }
    let (manifest_bytes, manifest_digest) = match manifest::parse(&bytes, content_type.as_deref())?
    {
        Manifest::Image(_) => (bytes, top),
        Manifest::Index(index) => {
            let chosen = manifest::select(&index, &options.platform, &reference.to_string())?;
            let (bytes, _) = registry.manifest(endpoint, &chosen.digest.to_string())?;
            if Digest::of(&bytes) != chosen.digest {
                bail!("the manifest {} does not match its digest", chosen.digest);
            }
            (bytes, chosen.digest.clone())
        }
    };
    let Manifest::Image(image) = manifest::parse(&manifest_bytes, None)? else {
        bail!("the index entry {manifest_digest} is another index");
    };

    if image.config.size > MAX_MANIFEST_SIZE {
        bail!(
            "the image config is {} bytes, more than the {MAX_MANIFEST_SIZE} allowed",
            image.config.size
        );
    }
    let config_bytes = fetch_small_blob(registry, endpoint, &image.config)?;
    let config = ImageConfig::of_manifest(&config_bytes, &image)?;
    let layers: Vec<(Descriptor, Digest)> = image
        .layers
        .iter()
        .cloned()
        .zip(config.rootfs.diff_ids.iter().cloned())
        .collect();
    fetch_layers(store, registry, endpoint, &layers, options)?;
    store.write_blob(&manifest_digest, &manifest_bytes)?;
    store.write_blob(&image.config.digest, &config_bytes)?;

    Ok(ImageRecord {
        build_cache: false,
        name: reference.to_string(),
        manifest: manifest_digest,
        config: image.config.digest.clone(),
        layers: layers
            .iter()
            .map(|(descriptor, diff_id)| {
                store.layer_record(diff_id, &descriptor.digest, descriptor.size)
            })
            .collect(),
        platform: format!("{}/{}", config.os, config.architecture),
        pulled: ImageRecord::now(),
    })
}

fn fetch_small_blob(
    registry: &Registry,
    endpoint: &Endpoint,
    descriptor: &Descriptor,
) -> Result<Vec<u8>> {
    let mut reader = VerifyingReader::new(
        registry.blob(endpoint, &descriptor.digest, descriptor.size)?,
        descriptor.size,
    );
    let mut bytes = vec![];
    reader
        .read_to_end(&mut bytes)
        .with_context(|| format!("downloading {}", descriptor.digest))?;
    let (digest, size) = reader.finish();
    if digest != descriptor.digest || size != descriptor.size {
        bail!(
            "the blob {} failed verification (got {digest}, {size} bytes)",
            descriptor.digest
        );
    }
    Ok(bytes)
}

/// Downloads and extracts every layer the store lacks, several at a time.
fn fetch_layers(
    store: &Store,
    registry: &Registry,
    endpoint: &Endpoint,
    layers: &[(Descriptor, Digest)],
    options: &PullOptions,
) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    // A layer is complete with its directory and its compressed blob (for
    // push and save); a store from before blobs were kept gets the blob.
    let missing: Vec<&(Descriptor, Digest)> = layers
        .iter()
        .filter(|(descriptor, diff_id)| {
            !(store.has_layer(diff_id) && store.blob_path(&descriptor.digest).is_file())
                && seen.insert(diff_id.clone())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let bars = options.progress.then(indicatif::MultiProgress::new);
    if let Some(bars) = &bars {
        for (_, diff_id) in layers
            .iter()
            .filter(|(_, d)| !missing.iter().any(|(_, m)| m == d))
        {
            let _ = bars.println(format!("{}: already present", diff_id.short()));
        }
    }
    let budget = ImageBudget::new(options.max_layer_size, options.max_image_size);
    try_for_each(&missing, PARALLEL_LAYERS, |(descriptor, diff_id)| {
        let bar = bars
            .as_ref()
            .map(|bars| layer_bar(bars, &descriptor.digest, descriptor.size));
        let result = fetch_layer(
            store,
            registry,
            endpoint,
            (descriptor, diff_id),
            &budget,
            bar.as_ref(),
        )
        .with_context(|| format!("layer {}", descriptor.digest));
        if let Some(bar) = bar {
            match &result {
                Ok(()) => bar.finish_with_message("done"),
                Err(_) => bar.abandon_with_message("failed"),
            }
        }
        result
    })
}

/// One progress line for a layer: bytes so far, total and rate.
pub(super) fn layer_bar(
    bars: &indicatif::MultiProgress,
    digest: &Digest,
    size: u64,
) -> indicatif::ProgressBar {
    let bar = bars.add(indicatif::ProgressBar::new(size));
    let style = indicatif::ProgressStyle::with_template(
        "{prefix}: {bytes:>10} / {total_bytes:<10} {binary_bytes_per_sec:>12} {msg}",
    )
    .expect("a valid progress template");
    bar.set_style(style);
    bar.set_prefix(digest.short().to_string());
    bar
}

fn fetch_layer(
    store: &Store,
    registry: &Registry,
    endpoint: &Endpoint,
    (descriptor, diff_id): (&Descriptor, &Digest),
    budget: &ImageBudget,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<()> {
    let compression = manifest::layer_compression(&descriptor.media_type)?;
    let body = registry.blob(endpoint, &descriptor.digest, descriptor.size)?;
    let body: Box<dyn Read + Send> = match bar {
        Some(bar) => Box::new(bar.wrap_read(body)),
        None => Box::new(body),
    };
    let incoming = Incoming {
        compression,
        blob: Some((&descriptor.digest, descriptor.size)),
        diff_id: Some(diff_id),
    };
    take_layer(store, body, &incoming, Keep::AsIs, budget)?;
    Ok(())
}
