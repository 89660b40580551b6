//! Small file system helpers: atomic writes, reads of files that may be
//! missing, tree removal, and stdin from /dev/null.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

/// Writes `path` so that readers see the old content or the new, never a
/// part: a temp file in the same directory, fsync'd, then renamed over it.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    write_by_rename(path, content, mode, true)
}

/// As `write_atomic`, without the fsync: for small state rewritten on every
/// run (container records), where a power cut may cost the latest change
/// but a sync would cost every run milliseconds.
pub fn replace_file(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    write_by_rename(path, content, mode, false)
}

fn write_by_rename(path: &Path, content: &[u8], mode: u32, sync: bool) -> Result<()> {
    by_rename(path, mode, sync, |file| {
        file.write_all(content).map_err(anyhow::Error::from)
    })
}

/// As `write_atomic`, and the directory synced after the rename: the new
/// name itself survives a power cut.
pub fn write_durably(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    write_atomic(path, content, mode)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// As `write_atomic`, for content that streams: what `write` writes into
/// the temp file (which it gets buffered) lands at `path` once complete.
pub fn write_streamed_atomic(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> Result<()>,
) -> Result<()> {
    by_rename(path, mode, true, |file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        out.flush().map_err(anyhow::Error::from)
    })
}

/// A temp file beside `path`, filled by `fill`, optionally synced, then
/// renamed over `path`; removed instead when anything fails.
fn by_rename(
    path: &Path,
    mode: u32,
    sync: bool,
    fill: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .context("a file path without a name")?
        .to_string_lossy();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)
            .with_context(|| format!("creating {}", temp.display()))?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        fill(&mut file).with_context(|| format!("writing {}", temp.display()))?;
        if sync {
            file.sync_all()
                .with_context(|| format!("syncing {}", temp.display()))?;
        }
        std::fs::rename(&temp, path).with_context(|| format!("renaming into {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// `len` bytes of a file from `offset`, read by position: the file's own
/// offset stays alone, so several readers can share one file (the layers
/// of an archive, the chunks of an upload).
pub struct FileRange<'a> {
    file: &'a std::fs::File,
    position: u64,
    end: u64,
}

impl<'a> FileRange<'a> {
    pub fn new(file: &'a std::fs::File, offset: u64, len: u64) -> FileRange<'a> {
        FileRange {
            file,
            position: offset,
            end: offset + len,
        }
    }

    /// How far into the file the reading is.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl std::io::Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = (self.end - self.position).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.position)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file ended before the range did",
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}

/// The text of `path`, or None when there is no such file (a missing
/// settings file or record means "the defaults", not an error).
pub fn read_if_present(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The JSON value in `path`, or None when there is no such file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    read_if_present(path)?
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .with_context(|| format!("parsing {}", path.display()))
}

/// Connects this process's stdin to /dev/null, so nothing reads the
/// caller's terminal or pipe.
pub fn stdin_from_null() -> Result<()> {
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("opening /dev/null for stdin")?;
    nix::unistd::dup2_stdin(&null).context("connecting stdin to /dev/null")?;
    Ok(())
}

/// The bytes of the regular files under `path`, not following symlinks (a
/// layer's size as docker counts it, near enough); what cannot be read
/// counts as nothing.
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Removes a directory tree even where extraction left directories the
/// owner cannot list or enter (modes like 0000 or 0555 from an image).
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    open_up(path);
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}

/// Gives the owner rwx on every directory below `path` (never following
/// symlinks), so the tree can be removed.
fn open_up(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            open_up(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn a_missing_file_reads_as_none_and_a_bad_one_fails_naming_it() {
        let dir = ScratchDir::new("fs-read");
        let path = dir.join("value.json");
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), None);
        write_atomic(&path, b"[1, 2]", 0o600).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), Some(vec![1, 2]));
        std::fs::write(&path, "[1,").unwrap();
        let err = format!("{:#}", read_json::<Vec<u32>>(&path).unwrap_err());
        assert!(err.contains("value.json"), "{err}");
    }
}
