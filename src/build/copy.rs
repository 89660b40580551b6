//! What COPY (and ADD of plain files) puts in a layer, from a directory
//! (the build context, or a stage's files): the sources resolved with
//! docker's rules, then written as a layer tar.
//!
//! Docker's rules: sources are relative to the directory and never leave
//! it; a source may be a glob; a directory source copies its contents; the
//! destination is a directory when it ends with `/`, when there are
//! several sources, or when the image has a directory there; a relative
//! destination is under WORKDIR (the caller joins it). Nothing below a
//! source follows a symlink: links are copied as links, and a source whose
//! path goes through a link is refused (a link in a checked-out repository
//! must not copy your home directory into an image). Files keep their
//! modes and times; owners are root, or `--chown`'s.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};

use super::ignore::Ignore;
use super::pattern;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
struct Entry {
    /// On the host.
    source: PathBuf,
    /// In the image, absolute.
    target: String,
    kind: Kind,
    mode: u32,
    mtime: u64,
}

/// A COPY resolved: what goes where, and its content's digest (names,
/// types, modes, owners and bytes; not times), the step's cache key part.
#[derive(Debug)]
pub struct CopyPlan {
    /// Directories above the destination that the image lacks.
    parents: Vec<String>,
    entries: Vec<Entry>,
    owner: (u32, u32),
    chmod: Option<u32>,
    pub digest: String,
}

/// Where COPY reads from.
pub struct Origin<'a> {
    pub root: &'a Path,
    /// Context paths a build never reads (none for a stage's files).
    pub ignore: &'a Ignore,
}

pub struct Request<'a> {
    /// The sources as written, expanded.
    pub sources: &'a [String],
    /// Absolute.
    pub destination: &'a str,
    pub owner: (u32, u32),
    pub chmod: Option<u32>,
    /// Whether the image so far has a directory at this absolute path.
    pub image_has_dir: &'a dyn Fn(&str) -> bool,
}

/// `path` cleaned and relative, or an error when it leaves the root.
fn relative(source: &str) -> Result<String> {
    let mut parts: Vec<&str> = vec![];
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("{source} is outside the build context");
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// The joined target path in the image, cleaned.
fn join(dir: &str, name: &str) -> String {
    let dir = dir.trim_end_matches('/');
    match name.is_empty() {
        true => dir.to_string(),
        false => format!("{dir}/{name}"),
    }
}

fn parent_of(path: &str) -> Option<&str> {
    let (parent, _) = path.trim_end_matches('/').rsplit_once('/')?;
    Some(if parent.is_empty() { "/" } else { parent })
}

impl Origin<'_> {
    fn excluded(&self, relative: &str) -> bool {
        !self.ignore.is_empty() && self.ignore.excludes(relative)
    }

    /// The relative paths `source` names: itself, or the glob's matches
    /// (sorted), none of them through a symlink.
    pub fn expand(&self, source: &str) -> Result<Vec<String>> {
        let cleaned = relative(source)?;
        if !pattern::is_pattern(&cleaned) {
            self.check_no_links_above(&cleaned, source)?;
            let exists = cleaned.is_empty() || self.root.join(&cleaned).symlink_metadata().is_ok();
            if !exists || (!cleaned.is_empty() && self.excluded(&cleaned)) {
                bail!(
                    "{source}: no such file or directory in the build context{}",
                    match self.excluded(&cleaned) {
                        true => " (.dockerignore excludes it)",
                        false => "",
                    }
                );
            }
            return Ok(vec![cleaned]);
        }
        let mut found = vec![String::new()];
        for part in cleaned.split('/') {
            let mut next = vec![];
            for dir in &found {
                let path = self.root.join(dir);
                let is_real_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
                if !is_real_dir {
                    continue;
                }
                if pattern::is_pattern(part) {
                    let mut names: Vec<String> = std::fs::read_dir(&path)
                        .with_context(|| format!("reading {}", path.display()))?
                        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                        .filter(|name| pattern::matches(part, name))
                        .collect();
                    names.sort();
                    next.extend(names.into_iter().map(|name| join_relative(dir, &name)));
                } else {
                    next.push(join_relative(dir, part));
                }
            }
            found = next
                .into_iter()
                .filter(|path| self.root.join(path).symlink_metadata().is_ok())
                .filter(|path| !self.excluded(path))
                .collect();
        }
        if found.is_empty() {
            bail!("{source}: no file in the build context matches it");
        }
        Ok(found)
    }

    /// Refuses a source whose path goes through a symlink above its last
    /// part: it could lead out of the context.
    fn check_no_links_above(&self, cleaned: &str, source: &str) -> Result<()> {
        let mut path = self.root.to_path_buf();
        let parts: Vec<&str> = cleaned.split('/').filter(|p| !p.is_empty()).collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            path.push(part);
            if path
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                bail!(
                    "{source} goes through the symlink {part}, which rocker does not follow \
                     (it could lead out of the build context); copy its target instead"
                );
            }
        }
        Ok(())
    }

    /// The entries under (and of) the relative path `path`, to land at
    /// `target`; a directory's own entry only when `with_self`.
    fn walk(&self, path: &str, target: &str, with_self: bool, out: &mut Vec<Entry>) -> Result<()> {
        let host = self.root.join(path);
        let meta = host
            .symlink_metadata()
            .with_context(|| format!("reading {}", host.display()))?;
        let file_type = meta.file_type();
        let kind = if file_type.is_symlink() {
            Kind::Symlink(
                std::fs::read_link(&host).with_context(|| format!("reading {}", host.display()))?,
            )
        } else if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_file() {
            Kind::File
        } else {
            // Sockets, FIFOs and devices have no place in an image built
            // from a directory; docker skips sockets too.
            return Ok(());
        };
        let is_dir = kind == Kind::Dir;
        if with_self || !is_dir {
            out.push(Entry {
                source: host.clone(),
                target: target.to_string(),
                kind,
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime().max(0) as u64,
            });
        }
        if is_dir {
            let mut names: Vec<String> = std::fs::read_dir(&host)
                .with_context(|| format!("reading {}", host.display()))?
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            for name in names {
                let child = join_relative(path, &name);
                if self.excluded(&child) {
                    continue;
                }
                self.walk(&child, &join(target, &name), true, out)?;
            }
        }
        Ok(())
    }
}

fn join_relative(dir: &str, name: &str) -> String {
    match dir.is_empty() {
        true => name.to_string(),
        false => format!("{dir}/{name}"),
    }
}

/// Resolves a COPY: what it copies from `origin`, where each goes, and
/// the content digest.
pub fn plan(origin: &Origin<'_>, request: &Request<'_>) -> Result<CopyPlan> {
    let mut resolved = vec![];
    for source in request.sources {
        resolved.extend(origin.expand(source)?);
    }
    let destination = request.destination;
    let is_dir_source = |path: &str| {
        origin
            .root
            .join(path)
            .symlink_metadata()
            .is_ok_and(|m| m.is_dir())
    };
    let into_dir = destination.ends_with('/')
        || resolved.len() > 1
        || (request.image_has_dir)(destination)
        || resolved.iter().any(|path| is_dir_source(path));
    if resolved.len() > 1 && !destination.ends_with('/') && !(request.image_has_dir)(destination) {
        bail!(
            "copying several sources to {destination}: the destination must be a directory \
             and end with /"
        );
    }
    let mut entries = vec![];
    let destination_dir = destination.trim_end_matches('/');
    let destination_dir = if destination_dir.is_empty() {
        "/"
    } else {
        destination_dir
    };
    if into_dir && destination_dir != "/" && !(request.image_has_dir)(destination_dir) {
        entries.push(Entry {
            source: PathBuf::new(),
            target: destination_dir.to_string(),
            kind: Kind::Dir,
            mode: 0o755,
            mtime: now(),
        });
    }
    for path in &resolved {
        if is_dir_source(path) {
            origin.walk(path, destination_dir, false, &mut entries)?;
        } else {
            let name = path.rsplit('/').next().unwrap_or(path);
            let target = match into_dir {
                true => join(destination_dir, name),
                false => destination.to_string(),
            };
            origin.walk(path, &target, true, &mut entries)?;
        }
    }
    let above = match into_dir {
        true => parent_of(destination_dir.trim_end_matches('/')),
        false => parent_of(destination),
    };
    let parents = match above {
        Some(dir) => missing_dirs(dir, request.image_has_dir),
        None => vec![],
    };
    let mut plan = CopyPlan {
        parents,
        entries,
        owner: request.owner,
        chmod: request.chmod,
        digest: String::new(),
    };
    plan.digest = digest(&plan)?;
    Ok(plan)
}

/// `dir` and the directories above it that the image lacks, top first.
pub fn missing_dirs(dir: &str, image_has_dir: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut missing = vec![];
    let mut at = Some(dir.trim_end_matches('/')).filter(|d| !d.is_empty());
    while let Some(dir) = at.filter(|dir| *dir != "/") {
        if image_has_dir(dir) {
            break;
        }
        missing.push(dir.to_string());
        at = parent_of(dir);
    }
    missing.reverse();
    missing
}

/// Names, types, modes, owners and content: what the cache compares.
fn digest(plan: &CopyPlan) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut line = |text: String| {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    };
    line(format!(
        "owner {}:{} chmod {:?}",
        plan.owner.0, plan.owner.1, plan.chmod
    ));
    for parent in &plan.parents {
        line(format!("parent {parent}"));
    }
    for entry in &plan.entries {
        let kind = match &entry.kind {
            Kind::File => {
                let mut file = open_file(&entry.source)?;
                let mut contents = Sha256::new();
                std::io::copy(&mut file, &mut contents)
                    .with_context(|| format!("reading {}", entry.source.display()))?;
                format!("file {:x}", contents.finalize())
            }
            Kind::Dir => "dir".to_string(),
            Kind::Symlink(target) => format!("link {}", target.display()),
        };
        line(format!("{} {:o} {kind}", entry.target, entry.mode));
    }
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// A directory COPY creates is made now, as far as its time goes.
fn now() -> u64 {
    crate::util::time::now_nanos() / 1_000_000_000
}

fn open_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// The plan as a layer tar, into `out`.
pub fn write_tar(plan: &CopyPlan, out: impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    let header = |kind: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_mtime(mtime);
        header.set_size(0);
        header
    };
    let name = |target: &str| target.trim_start_matches('/').to_string();
    for parent in &plan.parents {
        let mut h = header(tar::EntryType::Directory, 0o755, 0, 0, now());
        builder.append_data(&mut h, format!("{}/", name(parent)), std::io::empty())?;
    }
    let (uid, gid) = plan.owner;
    for entry in &plan.entries {
        let mode = match (&entry.kind, plan.chmod) {
            (Kind::Symlink(_), _) => 0o777,
            (_, Some(chmod)) => chmod,
            (_, None) => entry.mode,
        };
        match &entry.kind {
            Kind::Dir => {
                let mut h = header(tar::EntryType::Directory, mode, uid, gid, entry.mtime);
                builder.append_data(
                    &mut h,
                    format!("{}/", name(&entry.target)),
                    std::io::empty(),
                )?;
            }
            Kind::Symlink(target) => {
                let mut h = header(tar::EntryType::Symlink, mode, uid, gid, entry.mtime);
                builder.append_link(&mut h, name(&entry.target), target)?;
            }
            Kind::File => {
                let mut h = header(tar::EntryType::Regular, mode, uid, gid, entry.mtime);
                let file = open_file(&entry.source)?;
                // The size it has now; a file that changed size since the
                // plan is read for exactly that many bytes.
                let size = file.metadata()?.len();
                h.set_size(size);
                builder
                    .append_data(&mut h, name(&entry.target), file.take(size))
                    .with_context(|| format!("copying {}", entry.source.display()))?;
            }
        }
    }
    builder.into_inner()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    /// A context of its own for each test (names are unique per test).
    fn context(test: &str) -> ScratchDir {
        let dir = ScratchDir::new(&format!("build-copy-{test}"));
        std::fs::create_dir_all(dir.join("site/css")).unwrap();
        std::fs::write(dir.join("site/index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(dir.join("site/css/a.css"), "a{}").unwrap();
        std::fs::write(dir.join("one.txt"), "1").unwrap();
        std::fs::write(dir.join("two.txt"), "2").unwrap();
        std::fs::write(dir.join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("etc-link")).unwrap();
        dir
    }

    fn targets(plan: &CopyPlan) -> Vec<String> {
        let mut all = plan.parents.clone();
        all.extend(plan.entries.iter().map(|e| e.target.clone()));
        all
    }

    fn run(
        dir: &ScratchDir,
        ignore: &Ignore,
        sources: &[&str],
        destination: &str,
    ) -> Result<CopyPlan> {
        let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        let origin = Origin {
            root: &dir.join("."),
            ignore,
        };
        let has_dir = |path: &str| matches!(path, "/" | "/usr" | "/usr/share" | "/srv");
        plan(
            &origin,
            &Request {
                sources: &sources,
                destination,
                owner: (0, 0),
                chmod: None,
                image_has_dir: &has_dir,
            },
        )
    }

    #[test]
    fn sources_land_where_docker_puts_them() {
        let dir = context("land");
        let none = Ignore::default();
        // A file onto a new path; into an existing directory.
        assert_eq!(
            targets(&run(&dir, &none, &["one.txt"], "/opt/app/1").unwrap()),
            ["/opt", "/opt/app", "/opt/app/1"]
        );
        assert_eq!(
            targets(&run(&dir, &none, &["one.txt"], "/srv").unwrap()),
            ["/srv/one.txt"]
        );
        // A directory's contents; a glob of several into a directory.
        assert_eq!(
            targets(&run(&dir, &none, &["site"], "/usr/share/www").unwrap()),
            [
                "/usr/share/www",
                "/usr/share/www/css",
                "/usr/share/www/css/a.css",
                "/usr/share/www/index.html"
            ]
        );
        assert_eq!(
            targets(&run(&dir, &none, &["*.txt"], "/srv/").unwrap()),
            ["/srv/one.txt", "/srv/secret.txt", "/srv/two.txt"]
        );
        assert!(run(&dir, &none, &["one.txt", "two.txt"], "/new")
            .unwrap_err()
            .to_string()
            .contains("end with /"));
        // .dockerignore keeps files out of globs and walks, and out of reach.
        let ignore = Ignore::parse("secret.txt\nsite/css\n");
        assert_eq!(
            targets(&run(&dir, &ignore, &["*.txt"], "/srv/").unwrap()),
            ["/srv/one.txt", "/srv/two.txt"]
        );
        assert_eq!(
            targets(&run(&dir, &ignore, &["site"], "/srv").unwrap()),
            ["/srv/index.html"]
        );
        assert!(run(&dir, &ignore, &["secret.txt"], "/srv/")
            .unwrap_err()
            .to_string()
            .contains(".dockerignore"));
    }

    #[test]
    fn nothing_leads_out_of_the_context() {
        let dir = context("leads");
        let none = Ignore::default();
        assert!(run(&dir, &none, &["../x"], "/srv/")
            .unwrap_err()
            .to_string()
            .contains("outside"));
        assert!(run(&dir, &none, &["etc-link/passwd"], "/srv/")
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        // A link itself is copied as a link, never followed.
        let plan = run(&dir, &none, &["etc-link"], "/srv/").unwrap();
        assert_eq!(plan.entries[0].kind, Kind::Symlink("/etc".into()));
    }

    #[test]
    fn the_digest_follows_content_not_times() {
        let dir = context("digest");
        let none = Ignore::default();
        let first = run(&dir, &none, &["site"], "/srv").unwrap().digest;
        let touched = std::fs::File::options()
            .append(true)
            .open(dir.join("site/index.html"))
            .unwrap();
        touched
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(run(&dir, &none, &["site"], "/srv").unwrap().digest, first);
        std::fs::write(dir.join("site/index.html"), "<h1>changed</h1>").unwrap();
        assert_ne!(run(&dir, &none, &["site"], "/srv").unwrap().digest, first);
    }

    #[test]
    fn the_tar_has_owners_modes_and_links() {
        let dir = context("tar");
        let none = Ignore::default();
        let mut plan = run(&dir, &none, &["site", "etc-link"], "/opt/www/").unwrap();
        plan.owner = (1000, 1000);
        let mut bytes = vec![];
        write_tar(&plan, &mut bytes).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = vec![];
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            seen.push((
                entry.path().unwrap().display().to_string(),
                header.uid().unwrap(),
                header.entry_type().is_symlink(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("opt/".to_string(), 0, false),
                ("opt/www/".to_string(), 1000, false),
                ("opt/www/css/".to_string(), 1000, false),
                ("opt/www/css/a.css".to_string(), 1000, false),
                ("opt/www/index.html".to_string(), 1000, false),
                ("opt/www/etc-link".to_string(), 1000, true),
            ]
        );
    }
}
