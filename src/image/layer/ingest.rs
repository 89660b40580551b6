//! One layer into the store, from any stream: a registry's blob (pull), an
//! archive's member (load), a tarball (import).
//!
//! The stream goes through sha256 (the blob's digest), the decompressor
//! and a second sha256 (the tar's: the diff_id) into extraction, in a temp
//! directory renamed into place once the digests are what they must be.
//! The blob is kept for push and save: as it came, or compressed as asked
//! when it came as a plain tar. Reading and decompressing run on one
//! thread, extraction on another.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

use super::codec::{self, BlobWriter};
use super::readahead;
use super::unpack::{self, Limits};
use crate::image::digest::{Digest, VerifyingReader};
use crate::image::manifest::Compression;
use crate::image::store::{LayerBlob, Store};

/// How big layers may grow when decompressed, and what the layers of one
/// image have used so far (shared by the layers taken in at once).
pub struct ImageBudget {
    used: AtomicU64,
    pub max_layer_size: u64,
    pub max_image_size: u64,
}

impl ImageBudget {
    pub fn new(max_layer_size: u64, max_image_size: u64) -> ImageBudget {
        ImageBudget {
            used: AtomicU64::new(0),
            max_layer_size,
            max_image_size,
        }
    }

    fn exceeded(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.max_image_size
    }
}

/// A layer's stream, counted against the image's budget: reading past it
/// is an error.
struct Budgeted<'a, R> {
    inner: R,
    budget: &'a ImageBudget,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.used.fetch_add(n as u64, Ordering::Relaxed);
        if self.budget.exceeded() {
            return Err(std::io::Error::other("the image is over its size limit"));
        }
        Ok(n)
    }
}

/// What a layer's stream is, and what it must turn out to be.
pub struct Incoming<'a> {
    pub compression: Compression,
    /// The blob's digest and size when known (a manifest's descriptor).
    pub blob: Option<(&'a Digest, u64)>,
    /// The tar's digest when known (the config's diff_id).
    pub diff_id: Option<&'a Digest>,
}

/// How the store keeps the blob.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// Byte for byte as it came.
    AsIs,
    /// The tar compressed anew (for a plain tar from an archive).
    Compressed(Compression),
}

impl Keep {
    /// For a stream compressed with `compression`: as it came, except a
    /// plain tar, which is kept gzipped (what push and save send).
    pub fn compressed(compression: Compression) -> Keep {
        match compression {
            Compression::None => Keep::Compressed(Compression::Gzip),
            _ => Keep::AsIs,
        }
    }
}

/// Copies what is read through it into `copy`.
struct Tee<'a, R, W> {
    inner: R,
    copy: &'a mut W,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Where the kept blob is being written.
enum Kept {
    Raw(BufWriter<File>),
    Encoded(Box<BlobWriter>),
}

/// Takes the layer in `body` into the store. Returns its diff_id and the
/// blob kept. A layer whose directory exists already is only checked.
pub fn take_layer(
    store: &Store,
    body: impl Read + Send,
    incoming: &Incoming<'_>,
    keep: Keep,
    budget: &ImageBudget,
) -> Result<(Digest, LayerBlob)> {
    let extract_into = match incoming.diff_id {
        Some(diff_id) if store.has_layer(diff_id) => None,
        _ => Some(store.temp_dir("layer")?),
    };
    let blob_temp = store.temp_dir("blob")?;
    let blob_path = blob_temp.path().join("data");
    let mut kept = match keep {
        Keep::AsIs => Kept::Raw(BufWriter::with_capacity(
            1 << 20,
            File::create(&blob_path)
                .with_context(|| format!("creating {}", blob_path.display()))?,
        )),
        Keep::Compressed(compression) => {
            Kept::Encoded(Box::new(BlobWriter::create(&blob_path, compression)?))
        }
    };
    let limit = incoming.blob.map_or(u64::MAX, |(_, size)| size);
    let (feeder, tar_stream) = readahead::channel();
    let (read, unpacked) = std::thread::scope(|scope| {
        let kept = &mut kept;
        // Whether the whole tar went across, and the blob's digest and size
        // (read to its end even when extraction failed: a corrupt blob is
        // then told from a hostile or broken tar).
        let producer = scope.spawn(move || -> Result<(bool, Result<(Digest, u64)>)> {
            Ok(match kept {
                Kept::Raw(file) => {
                    let mut compressed = VerifyingReader::new(
                        Tee {
                            inner: body,
                            copy: file,
                        },
                        limit,
                    );
                    let fed =
                        feeder.feed(&mut codec::decoder(&mut compressed, incoming.compression)?);
                    (fed, finish_blob(compressed))
                }
                Kept::Encoded(writer) => {
                    let mut compressed = VerifyingReader::new(body, limit);
                    let fed = feeder.feed(&mut Tee {
                        inner: codec::decoder(&mut compressed, incoming.compression)?,
                        copy: writer.as_mut(),
                    });
                    (fed, finish_blob(compressed))
                }
            })
        });
        let root = extract_into.as_ref().map(|temp| temp.path());
        let label = incoming
            .blob
            .map(|(digest, _)| digest)
            .or(incoming.diff_id)
            .map_or("", Digest::short);
        let unpacked = unpack_layer(tar_stream, root, label, budget);
        let read = producer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reading thread panicked")));
        (read, unpacked)
    });
    let (fed, read) = read?;
    let (diff_id, tar_size) = match unpacked {
        Ok(unpacked) => unpacked,
        Err(err) => {
            if let (Ok((digest, size)), Some((expected, expected_size))) = (&read, incoming.blob) {
                if digest != expected || *size != expected_size {
                    bail!(
                        "the layer's blob is corrupt: it should be {expected} ({expected_size} \
                         bytes) but is {digest} ({size} bytes); pulling again may help \
                         (extraction said: {err:#})"
                    );
                }
            }
            return Err(err);
        }
    };
    if !fed {
        bail!("the stream stopped before the end of the blob");
    }
    let (digest, size) = read?;
    if let Some((expected, expected_size)) = incoming.blob {
        if digest != *expected || size != expected_size {
            bail!(
                "the blob failed verification: expected {expected} ({expected_size} bytes), \
                 got {digest} ({size} bytes)"
            );
        }
    }
    if let Some(expected) = incoming.diff_id {
        if diff_id != *expected {
            bail!(
                "the uncompressed layer is {diff_id}, but the config says {expected} \
                 ({tar_size} bytes)"
            );
        }
    }
    let blob = match (kept, keep) {
        (Kept::Raw(mut file), _) => {
            file.flush().context("writing the layer blob")?;
            file.get_ref()
                .sync_all()
                .context("syncing the layer blob")?;
            LayerBlob {
                digest,
                size,
                compression: incoming.compression,
            }
        }
        (Kept::Encoded(writer), Keep::Compressed(compression)) => {
            let (digest, size) = writer.finish()?;
            LayerBlob {
                digest,
                size,
                compression,
            }
        }
        (Kept::Encoded(_), Keep::AsIs) => unreachable!("a kept-as-is blob is written raw"),
    };
    store.add_layer_blob(&diff_id, &blob, &blob_path)?;
    if let Some(temp) = extract_into {
        store.commit_layer(temp, &diff_id)?;
    }
    Ok((diff_id, blob))
}

/// Reads the blob to its end (trailing bytes past the compressed stream
/// count for its digest); its digest and size.
fn finish_blob(mut compressed: VerifyingReader<impl Read>) -> Result<(Digest, u64)> {
    std::io::copy(&mut compressed, &mut std::io::sink()).context("reading the end of the blob")?;
    Ok(compressed.finish())
}

/// Extracts one layer's tar into `root` (or only reads it, without a
/// root); returns the tar's digest (the diff_id) and size.
fn unpack_layer(
    stream: impl Read,
    root: Option<&Path>,
    label: &str,
    budget: &ImageBudget,
) -> Result<(Digest, u64)> {
    let stream = Budgeted {
        inner: stream,
        budget,
    };
    let mut tar = VerifyingReader::new(stream, budget.max_layer_size);
    let outcome = match root {
        None => std::io::copy(&mut tar, &mut std::io::sink())
            .map(|_| None)
            .context("reading the layer"),
        Some(root) => unpack::unpack(&mut tar, root, &Limits::default()).map(Some),
    };
    let summary = match outcome {
        Ok(summary) => summary,
        Err(_) if budget.exceeded() => bail!(
            "the image's layers decompress to more than {} bytes together; if that is \
             genuine, raise [images] max_image_size in $XDG_CONFIG_HOME/rocker/config.toml",
            budget.max_image_size
        ),
        Err(_) if tar.bytes_read() > budget.max_layer_size => bail!(
            "the layer decompresses to more than {} bytes; if that is genuine, raise \
             [images] max_layer_size in $XDG_CONFIG_HOME/rocker/config.toml",
            budget.max_layer_size
        ),
        Err(err) => return Err(err),
    };
    if let Some(summary) = summary.filter(|s| s.skipped_devices > 0) {
        // One warning per layer, whether or not progress is shown.
        eprintln!(
            "rocker: warning: layer {label} has {} device nodes; skipped (an unprivileged \
             user cannot create them)",
            summary.skipped_devices
        );
    }
    // The tar's end padding counts for the diff_id too.
    std::io::copy(&mut tar, &mut std::io::sink()).context("reading the end of the layer")?;
    Ok(tar.finish())
}
