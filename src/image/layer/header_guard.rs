//! A guard in front of the tar reader: it passes the stream through while
//! checking each header, so that a metadata record claiming gigabytes
//! (which the tar reader would buffer whole) fails before it is read.

use std::io::Read;

/// The largest GNU long-name or PAX record accepted: the tar reader keeps
/// these in memory whole.
const MAX_METADATA_RECORD: u64 = 1 << 20;

/// Passes a tar stream through while checking each header, so that a
/// metadata record claiming gigabytes (which the tar reader would buffer)
/// fails before it is read.
pub struct HeaderGuard<R> {
    inner: R,
    /// Bytes left in the current entry's data (padded to 512).
    data_left: u64,
    header: Vec<u8>,
    ended: bool,
}

impl<R: Read> HeaderGuard<R> {
    pub fn new(inner: R) -> Self {
        HeaderGuard {
            inner,
            data_left: 0,
            header: Vec::with_capacity(512),
            ended: false,
        }
    }

    /// A header's size field: octal, or base-256 when the top bit is set.
    fn size_of(header: &[u8]) -> std::io::Result<u64> {
        let field = &header[124..136];
        if field[0] & 0x80 != 0 {
            let mut value: u64 = 0;
            for &b in &field[1..] {
                value = value
                    .checked_shl(8)
                    .ok_or_else(|| invalid("a tar size overflows"))?
                    | b as u64;
            }
            return Ok(value);
        }
        let text: String = field
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| b as char)
            .collect();
        let text = text.trim();
        if text.is_empty() {
            return Ok(0);
        }
        u64::from_str_radix(text, 8).map_err(|_| invalid("a tar header has a malformed size"))
    }

    fn inspect_header(&mut self) -> std::io::Result<()> {
        if self.header.iter().all(|&b| b == 0) {
            // End of archive: what follows is padding.
            self.ended = true;
            return Ok(());
        }
        let size = Self::size_of(&self.header)?;
        if matches!(self.header[156], b'L' | b'K' | b'x' | b'g') && size > MAX_METADATA_RECORD {
            return Err(invalid(&format!(
                "a tar metadata record claims {size} bytes (at most {MAX_METADATA_RECORD})"
            )));
        }
        self.data_left = size.div_ceil(512) * 512;
        Ok(())
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended || self.data_left > 0 {
            let want = if self.ended {
                buf.len()
            } else {
                buf.len().min(self.data_left as usize)
            };
            let n = self.inner.read(&mut buf[..want])?;
            if !self.ended {
                self.data_left -= n as u64;
            }
            return Ok(n);
        }
        // Collect a whole header before handing any of it on.
        let want = (512 - self.header.len()).min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        self.header.extend_from_slice(&buf[..n]);
        if self.header.len() == 512 {
            self.inspect_header()?;
            self.header.clear();
        }
        Ok(n)
    }
}
