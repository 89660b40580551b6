//! Content digests (`sha256:<64 hex>`), validated before they touch a path
//! or a URL, and a reader that verifies what streams through it.

use std::fmt;
use std::io::Read;

use anyhow::{bail, Result};
use sha2::{Digest as _, Sha256};

/// A validated `sha256:` digest. The hex part is exactly 64 lowercase hex
/// digits, so it is always safe as a file name or URL path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(text: &str) -> Result<Digest> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            bail!("invalid digest {text:?}: expected sha256:<64 hex digits>");
        };
        if algorithm != "sha256" {
            bail!(
                "unsupported digest algorithm {algorithm:?} in {text:?}: only sha256 is supported"
            );
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            bail!("invalid digest {text:?}: expected sha256:<64 lowercase hex digits>");
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: crate::util::hex::encode(&Sha256::digest(bytes)),
        }
    }

    /// The digest a hasher has reached.
    pub fn from_sha256(hasher: Sha256) -> Digest {
        Digest {
            hex: crate::util::hex::encode(&hasher.finalize()),
        }
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as docker shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Hashes and counts everything read through it; `finish` says whether it
/// matched. Reading past `limit` bytes is an error, so a server cannot make
/// us read forever.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    limit: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
            limit,
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The digest and size of everything read.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_sha256(self.hasher), self.read)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("more than the {} bytes expected", self.limit),
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_accepts_only_well_formed_sha256() {
        assert_eq!(Digest::parse(EMPTY).unwrap().to_string(), EMPTY);
        for bad in [
            "sha256:../x",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verifying_reader_hashes_and_bounds() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        let mut reader = VerifyingReader::new(&b"hello"[..], 5);
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        let (digest, size) = reader.finish();
        assert_eq!((digest, size), (Digest::of(b"hello"), 5));
        let mut reader = VerifyingReader::new(&b"hello!"[..], 5);
        assert!(std::io::copy(&mut reader, &mut std::io::sink()).is_err());
    }
}
