//! Small file system helpers: atomic writes, reads of files that may be
//! missing, tree removal, and stdin from /dev/null.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmodat, fstatat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
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
///
/// Read without asking the file's size first (`fs::read_to_string` does,
/// one `statx` more per file): rocker's records are small, and `ps -a`
/// over a full store reads thousands of them.
pub fn read_if_present(path: &Path) -> Result<Option<String>> {
    match std::fs::File::open(path).and_then(read_text) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The JSON value in `path`, or None when there is no such file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    parse_json(read_if_present(path)?, path)
}

/// As `read_json`, for `name` below the open directory `dir` (`shown` is
/// the whole path, for messages): the kernel then walks `name` alone, not
/// the whole path again, which counts when `ps -a` reads two files of each
/// of thousands of containers.
pub fn read_json_at<T: DeserializeOwned>(
    dir: impl AsFd,
    name: &Path,
    shown: &Path,
) -> Result<Option<T>> {
    match openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => parse_small_file(std::fs::File::from(fd), shown).map(Some),
        Err(Errno::ENOENT) => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", shown.display())),
    }
}

/// The JSON value in `file`, read without the usual last read that finds
/// the end: a read of a regular file that returns less than it asked for
/// has reached the end, unless a signal cut it short. So a first read
/// that comes back short and parses is the whole value (what follows a
/// complete value could only make the file invalid); anything else is
/// read to the end and parsed again. For `ps -a`, two calls fewer per
/// container.
fn parse_small_file<T: DeserializeOwned>(mut file: std::fs::File, shown: &Path) -> Result<T> {
    use std::io::Read;
    const FIRST_READ: usize = 4096;
    let mut bytes = vec![0u8; FIRST_READ];
    let read = loop {
        match file.read(&mut bytes) {
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    let read = read.with_context(|| format!("reading {}", shown.display()))?;
    bytes.truncate(read);
    if read < FIRST_READ {
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(value);
        }
    }
    file.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", shown.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", shown.display()))
}

/// All of `file` as text, without asking its size first.
fn read_text(file: std::fs::File) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(8192);
    // Through `take`, which gives no size hint, so none is looked up.
    file.take(u64::MAX).read_to_string(&mut text).map(|_| text)
}

fn parse_json<T: DeserializeOwned>(text: Option<String>, path: &Path) -> Result<Option<T>> {
    text.map(|text| serde_json::from_str(&text))
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

/// Removes a directory tree, however deep, with two descriptors open at
/// most (`remove_dir_all` holds one per level: a tree deeper than the fd
/// limit would fail with EMFILE), even where extraction left directories
/// the owner cannot list or enter (modes like 0000 or 0555 from an image).
/// It never follows a symlink, goes on past an entry it cannot remove,
/// and then fails naming the first such entry.
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("removing {}", path.display())),
        Ok(meta) if !meta.is_dir() => {
            return std::fs::remove_file(path)
                .with_context(|| format!("removing {}", path.display()))
        }
        Ok(_) => {}
    }
    let mut failure = None;
    empty_tree(path, &mut failure)?;
    if let Some(err) = failure {
        return Err(err).with_context(|| format!("removing {}", path.display()));
    }
    match std::fs::remove_dir(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Removes everything below the directory `path`, depth first, holding
/// the descriptor of one directory at a time: down by name, back up by
/// `..`. What cannot be removed goes to `failure`, and the walk goes on.
fn empty_tree(path: &Path, failure: &mut Option<anyhow::Error>) -> Result<()> {
    open_up(AT_FDCWD, path.as_os_str());
    let mut current = openat(AT_FDCWD, path, DIR_FLAGS, Mode::empty())
        .with_context(|| format!("opening {}", path.display()))?;
    // Per level above the current one: its subdirectories still to visit,
    // and the name of the one we went into.
    let mut levels: Vec<(Vec<OsString>, OsString)> = vec![];
    let mut pending = unlink_files(&current, failure)?;
    loop {
        if let Some(name) = pending.pop() {
            open_up(&current, &name);
            match openat(&current, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
                Ok(child) => {
                    current = child;
                    let below = unlink_files(&current, failure)?;
                    levels.push((std::mem::replace(&mut pending, below), name));
                }
                Err(Errno::ENOENT) => {}
                Err(err) => note(failure, &name, "opening", err),
            }
            continue;
        }
        // This directory is as empty as it gets: up, and remove it.
        let Some((siblings, name)) = levels.pop() else {
            return Ok(());
        };
        current = openat(
            &current,
            "..",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("going back up in {}", path.display()))?;
        if let Err(err) = unlinkat(&current, name.as_os_str(), UnlinkatFlags::RemoveDir) {
            note(failure, &name, "removing", err);
        }
        pending = siblings;
    }
}

fn note(failure: &mut Option<anyhow::Error>, name: &OsStr, doing: &str, err: Errno) {
    failure.get_or_insert_with(|| anyhow::anyhow!("{doing} {}: {err}", name.to_string_lossy()));
}

/// Unlinks every entry of `dir` that is no directory; returns the names of
/// the subdirectories.
fn unlink_files(dir: &OwnedFd, failure: &mut Option<anyhow::Error>) -> Result<Vec<OsString>> {
    let mut listing = match nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(listing) => listing,
        Err(err) => {
            note(failure, OsStr::new("a directory"), "reading", err);
            return Ok(vec![]);
        }
    };
    let names: Vec<OsString> = listing
        .iter()
        .flatten()
        .map(|entry| OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string())
        .filter(|name| name != "." && name != "..")
        .collect();
    drop(listing);
    let mut subdirectories = vec![];
    for name in names {
        if is_directory(dir, &name) {
            subdirectories.push(name);
            continue;
        }
        match unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(err) => note(failure, &name, "removing", err),
        }
    }
    Ok(subdirectories)
}

fn is_directory(dir: impl AsFd, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// Gives the owner rwx on the directory `name` of `dir`, so that it can be
/// listed, entered and emptied.
fn open_up(dir: impl AsFd, name: &OsStr) {
    let Ok(stat) = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
        return;
    };
    let is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    if is_dir && stat.st_mode & 0o700 != 0o700 {
        let mode = Mode::from_bits_truncate((stat.st_mode | 0o700) & 0o7777);
        let _ = fchmodat(&dir, name, mode, FchmodatFlags::FollowSymlink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn trees_deeper_than_paths_and_closed_dirs_are_removed() {
        let dir = ScratchDir::new("remove-tree");
        let top = dir.join("tree");
        std::fs::create_dir(&top).unwrap();
        // 3000 levels: deeper than PATH_MAX allows to name, and than the
        // usual fd limit allows to hold open.
        let mut current = openat(AT_FDCWD, &top, DIR_FLAGS, Mode::empty()).unwrap();
        for level in 0..3000 {
            nix::sys::stat::mkdirat(&current, "d", Mode::from_bits_truncate(0o755)).unwrap();
            if level % 500 == 0 {
                let file = openat(
                    &current,
                    "f",
                    OFlag::O_CREAT | OFlag::O_WRONLY,
                    Mode::from_bits_truncate(0o600),
                )
                .unwrap();
                drop(file);
                std::os::unix::fs::symlink(
                    "/etc/passwd",
                    format!(
                        "/proc/self/fd/{}/link",
                        std::os::fd::AsRawFd::as_raw_fd(&current)
                    ),
                )
                .unwrap();
            }
            current = openat(&current, "d", DIR_FLAGS, Mode::empty()).unwrap();
        }
        drop(current);
        // A directory its owner may not enter, with files in it.
        std::fs::create_dir_all(top.join("closed/inner")).unwrap();
        std::fs::write(top.join("closed/inner/file"), "x").unwrap();
        std::fs::set_permissions(
            top.join("closed/inner"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        std::fs::set_permissions(top.join("closed"), std::fs::Permissions::from_mode(0o500))
            .unwrap();
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert!(
            std::path::Path::new("/etc/passwd").exists(),
            "links are not followed"
        );
        remove_tree(&top).unwrap();
    }

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

    #[test]
    fn a_value_read_at_a_dir_is_whole_below_and_above_the_first_read() {
        let dir = ScratchDir::new("fs-read-at");
        let open = std::fs::File::open(&*dir).unwrap();
        let read = |name: &str| read_json_at::<Vec<u32>>(&open, Path::new(name), &dir.join(name));
        assert_eq!(read("missing.json").unwrap(), None);
        let small: Vec<u32> = (0..10).collect();
        let large: Vec<u32> = (0..5000).collect();
        for (name, value) in [("small.json", &small), ("large.json", &large)] {
            std::fs::write(dir.join(name), serde_json::to_vec(value).unwrap()).unwrap();
            assert_eq!(read(name).unwrap().as_ref(), Some(value), "{name}");
        }
        // Exactly the first read's size: the end is found by reading on.
        let mut exact = serde_json::to_vec(&small).unwrap();
        exact.resize(4096, b' ');
        std::fs::write(dir.join("exact.json"), &exact).unwrap();
        assert_eq!(read("exact.json").unwrap(), Some(small.clone()));
        std::fs::write(dir.join("bad.json"), "[1, 2] 3").unwrap();
        let err = format!("{:#}", read("bad.json").unwrap_err());
        assert!(err.contains("bad.json"), "{err}");
    }
}
