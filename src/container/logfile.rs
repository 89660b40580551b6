//! The log of a detached container, in docker's json-file format: one JSON
//! object per line, `{"log":"text\n","stream":"stdout","time":"..."}`.
//! When the file passes its size limit it becomes `ctr.log.1` (replacing
//! the older one) and a new file starts, so a log never takes more than
//! twice the limit.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::time;

/// A line longer than this is logged in pieces, as docker does.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    /// The unfinished last line of each stream.
    partial: [Vec<u8>; 2],
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

fn open_append(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

impl LogWriter {
    pub fn create(path: &Path, max_size: u64) -> Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            partial: [vec![], vec![]],
        })
    }

    /// Logs what the container wrote to `stream`: every complete line now,
    /// the rest once its line ends (or grows too long).
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let index = stream as usize;
        self.partial[index].extend_from_slice(data);
        loop {
            let buffer = &self.partial[index];
            let end = match buffer.iter().position(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                // A long line is cut where a character starts, so that
                // both parts stay valid UTF-8.
                None if buffer.len() >= MAX_LINE => utf8_cut(buffer, MAX_LINE),
                None => break,
            };
            let line: Vec<u8> = self.partial[index].drain(..end).collect();
            self.emit(stream, &line);
        }
    }

    /// Logs the unfinished lines: the streams have ended.
    pub fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.emit(stream, &line);
            }
        }
    }

    fn emit(&mut self, stream: Stream, line: &[u8]) {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: time::rfc3339(time::now_nanos()),
        };
        let Ok(mut json) = serde_json::to_vec(&entry) else {
            return;
        };
        json.push(b'\n');
        if self.size > 0 && self.size + json.len() as u64 > self.max_size {
            self.rotate();
        }
        // A full disk loses log lines, never the container.
        if self.file.write_all(&json).is_ok() {
            self.size += json.len() as u64;
        }
    }

    fn rotate(&mut self) {
        if std::fs::rename(&self.path, rotated(&self.path)).is_ok() {
            if let Ok(file) = open_append(&self.path) {
                self.file = file;
                self.size = 0;
            }
        }
    }
}

/// Reads a container's log, the rotated part first.
pub fn read_all(path: &Path) -> Result<Vec<Entry>> {
    let mut entries = vec![];
    for part in [rotated(path), path.to_path_buf()] {
        if let Ok(file) = File::open(&part) {
            read_lines(BufReader::new(file), &mut entries);
        }
    }
    Ok(entries)
}

fn read_lines(reader: impl BufRead, entries: &mut Vec<Entry>) {
    for line in reader.lines().map_while(Result::ok) {
        if let Ok(entry) = serde_json::from_str(&line) {
            entries.push(entry);
        }
    }
}

/// Follows a log file as it grows (and across a rotation), from where
/// `read_all` stopped.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    offset: u64,
}

impl Follower {
    /// Starts at the current end of the log.
    pub fn at_end(path: &Path) -> Follower {
        use std::os::unix::fs::MetadataExt;
        let file = File::open(path).ok();
        let (inode, offset) = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or((0, 0), |m| (m.ino(), m.len()));
        Follower {
            path: path.to_path_buf(),
            file,
            inode,
            offset,
        }
    }

    /// The entries written since the last call.
    pub fn read_new(&mut self) -> Vec<Entry> {
        use std::os::unix::fs::MetadataExt;
        let mut entries = vec![];
        self.read_complete_lines(&mut entries);
        // Rotated: the old file is finished (read above); go on with the
        // new one from its start.
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if current.is_some() && current != Some(self.inode) {
            self.file = File::open(&self.path).ok();
            self.inode = current.unwrap_or(0);
            self.offset = 0;
            self.read_complete_lines(&mut entries);
        }
        entries
    }

    fn read_complete_lines(&mut self, entries: &mut Vec<Entry>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        // Only whole lines: the writer may be mid-line.
        while let Ok(n) = reader.read_line(&mut line) {
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            self.offset += n as u64;
            if let Ok(entry) = serde_json::from_str(&line) {
                entries.push(entry);
            }
            line.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn lines_are_logged_whole_per_stream_and_rotate_at_the_limit() {
        let dir = ScratchDir::new("log");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctr.log");
        let mut log = LogWriter::create(&path, 400).unwrap();
        log.write(Stream::Stdout, b"hel");
        log.write(Stream::Stderr, b"oops\n");
        log.write(Stream::Stdout, b"lo\nwor");
        log.finish();
        let entries = read_all(&path).unwrap();
        let seen: Vec<(Stream, &str)> =
            entries.iter().map(|e| (e.stream, e.log.as_str())).collect();
        assert_eq!(
            seen,
            [
                (Stream::Stderr, "oops\n"),
                (Stream::Stdout, "hello\n"),
                (Stream::Stdout, "wor")
            ]
        );

        let mut follower = Follower::at_end(&path);
        for i in 0..20 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        assert!(rotated(&path).exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 400);
        let followed = follower.read_new();
        let all = read_all(&path).unwrap();
        assert_eq!(all.last().unwrap().log, "line 19\n");
        assert!(followed.iter().any(|e| e.log == "line 0\n"), "{followed:?}");
    }
}

/// Where to cut `bytes` at most `at` long without splitting a UTF-8
/// character (bytes that are no UTF-8 are cut anywhere).
fn utf8_cut(bytes: &[u8], at: usize) -> usize {
    let is_continuation = |b: u8| b & 0xc0 == 0x80;
    let mut cut = at.min(bytes.len());
    // A character is at most 4 bytes: look back at most 3.
    for _ in 0..3 {
        if cut == 0 || cut >= bytes.len() || !is_continuation(bytes[cut]) {
            break;
        }
        cut -= 1;
    }
    if cut == 0 {
        at
    } else {
        cut
    }
}

#[cfg(test)]
mod cut_tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_between_characters() {
        let line = "é".repeat(10); // 2 bytes each
        assert_eq!(utf8_cut(line.as_bytes(), 5), 4);
        assert_eq!(utf8_cut(line.as_bytes(), 6), 6);
        assert_eq!(utf8_cut(b"abcdef", 3), 3);
        let emoji = "😀😀";
        assert_eq!(utf8_cut(emoji.as_bytes(), 6), 4);
    }
}
