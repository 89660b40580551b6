//! A reader that runs its source on another thread, a few chunks ahead.
//!
//! A layer pull is a pipeline: network, sha256 of the blob and the
//! decompressor on one side, sha256 of the tar and extraction (mostly
//! syscalls) on the other. On one thread they take turns; split in two,
//! they overlap, as `curl | tar -xz` does with its three processes.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes per chunk handed across.
const CHUNK: usize = 128 * 1024;
/// Chunks in flight: bounds the memory a layer holds (2 MiB).
const DEPTH: usize = 16;

/// The consuming end: reads what the producing thread sent.
pub struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    offset: usize,
    done: bool,
}

/// The producing end, for the thread that owns the source.
pub struct Feeder {
    chunks: SyncSender<io::Result<Vec<u8>>>,
}

pub fn channel() -> (Feeder, ReadAhead) {
    let (sender, receiver) = sync_channel(DEPTH);
    (
        Feeder { chunks: sender },
        ReadAhead {
            chunks: receiver,
            current: vec![],
            offset: 0,
            done: false,
        },
    )
}

impl Feeder {
    /// Copies `source` across until its end or an error (which the reader
    /// then sees). True when the whole source went across; false after an
    /// error, or when the reader went away (it failed, and its error is
    /// the one to report).
    pub fn feed(self, source: &mut impl Read) -> bool {
        loop {
            let mut chunk = vec![0; CHUNK];
            let result = match source.read(&mut chunk) {
                Ok(0) => return true, // dropping the sender marks the end
                Ok(n) => {
                    chunk.truncate(n);
                    Ok(chunk)
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => Err(err),
            };
            let failed = result.is_err();
            if self.chunks.send(result).is_err() || failed {
                return false;
            }
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.offset = 0;
                }
                Ok(Err(err)) => {
                    self.done = true;
                    return Err(err);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.offset);
        buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_whole_and_in_order() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (feeder, mut reader) = channel();
        let source = data.clone();
        let producer = std::thread::spawn(move || feeder.feed(&mut source.as_slice()));
        let mut received = vec![];
        reader.read_to_end(&mut received).unwrap();
        assert!(producer.join().unwrap());
        assert_eq!(received, data);
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("connection reset"))
        }
    }

    #[test]
    fn a_source_error_reaches_the_reader() {
        let (feeder, mut reader) = channel();
        let producer = std::thread::spawn(move || feeder.feed(&mut Failing));
        let err = reader.read_to_end(&mut vec![]).unwrap_err();
        assert_eq!(err.to_string(), "connection reset");
        assert!(!producer.join().unwrap());
    }

    #[test]
    fn the_feeder_stops_when_the_reader_goes() {
        let (feeder, reader) = channel();
        drop(reader);
        // An endless source: feed must still return.
        assert!(!feeder.feed(&mut io::repeat(7)));
    }
}
