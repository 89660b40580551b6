//! Layer compression both ways: a decoder for what a registry or an
//! archive holds, and an encoder that writes a blob once, hashing the tar
//! it is fed (the diff_id) and the bytes it writes (the blob's digest).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};

use crate::image::digest::Digest;
use crate::image::manifest::Compression;

/// Compression level for gzip: the default of docker and containers/image.
const GZIP_LEVEL: u32 = 6;
/// zstd's own default level, as containers/image uses it.
const ZSTD_LEVEL: i32 = 3;

/// The tar inside a blob compressed with `compression`.
pub fn decoder<'a>(blob: impl Read + 'a, compression: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(blob).context("starting the zstd decoder")?)
        }
    })
}

/// What `encode` made: the tar's digest and the blob's digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
}

/// Compresses the tar `tar` into the new file `path`.
pub fn encode(tar: &mut dyn Read, compression: Compression, path: &Path) -> Result<Encoded> {
    let mut writer = BlobWriter::create(path, compression)?;
    let mut tar = crate::image::digest::VerifyingReader::new(tar, u64::MAX);
    std::io::copy(&mut tar, &mut writer)
        .with_context(|| format!("compressing a layer into {}", path.display()))?;
    let (digest, size) = writer.finish()?;
    let (diff_id, _) = tar.finish();
    Ok(Encoded {
        diff_id,
        digest,
        size,
    })
}

/// A blob file being written: what is written to it is compressed, and
/// the compressed bytes hashed and counted.
pub struct BlobWriter {
    encoder: Encoder,
    path: std::path::PathBuf,
}

type Sink = HashingWriter<BufWriter<File>>;

enum Encoder {
    None(Sink),
    Gzip(flate2::write::GzEncoder<Sink>),
    Zstd(zstd::stream::write::Encoder<'static, Sink>),
}

impl BlobWriter {
    pub fn create(path: &Path, compression: Compression) -> Result<BlobWriter> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            written: 0,
        };
        let encoder = match compression {
            Compression::None => Encoder::None(sink),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                sink,
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Compression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(sink, ZSTD_LEVEL)
                    .context("starting the zstd encoder")?,
            ),
        };
        Ok(BlobWriter {
            encoder,
            path: path.to_path_buf(),
        })
    }

    /// Ends the stream and syncs the file; the blob's digest and size.
    pub fn finish(self) -> Result<(Digest, u64)> {
        let context = || format!("writing {}", self.path.display());
        let mut sink = match self.encoder {
            Encoder::None(sink) => sink,
            Encoder::Gzip(encoder) => encoder.finish().with_context(context)?,
            Encoder::Zstd(encoder) => encoder.finish().with_context(context)?,
        };
        sink.inner.flush().with_context(context)?;
        sink.inner
            .get_ref()
            .sync_all()
            .with_context(|| format!("syncing {}", self.path.display()))?;
        Ok((Digest::from_sha256(sink.hasher), sink.written))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.encoder {
            Encoder::None(sink) => sink.write(buf),
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.encoder {
            Encoder::None(sink) => sink.flush(),
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn each_compression_round_trips_with_both_digests() {
        let dir = ScratchDir::new("codec");
        let tar: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let path = dir.join("blob");
            let encoded = encode(&mut tar.as_slice(), compression, &path).unwrap();
            let blob = std::fs::read(&path).unwrap();
            assert_eq!(encoded.digest, Digest::of(&blob), "{compression:?}");
            assert_eq!(encoded.size, blob.len() as u64);
            assert_eq!(encoded.diff_id, Digest::of(&tar));
            let mut back = vec![];
            decoder(blob.as_slice(), compression)
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, tar, "{compression:?}");
        }
    }
}
