//! ADD of a local tar archive (plain, gzip or zstd): its entries unpacked
//! under the destination directory, as a layer. Names are re-rooted there
//! and may not climb out (`..`), hard links stay inside the archive, and
//! owners are the archive's own unless `--chown` says otherwise.

use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tar,
    Gzip,
    Zstd,
}

/// What `path` is, by its first bytes: an archive ADD unpacks, or None.
pub fn kind_of(path: &Path) -> Result<Option<Kind>> {
    let Ok(meta) = path.symlink_metadata() else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let mut head = [0u8; 512];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            read => n += read,
        }
    }
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Some(Kind::Gzip));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Some(Kind::Zstd));
    }
    if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        bail!(
            "ADD {}: rocker unpacks plain, gzip and zstd tar archives, not bzip2 or xz; \
             recompress it, or COPY it and unpack it with RUN",
            path.display()
        );
    }
    Ok((n >= 262 && &head[257..262] == b"ustar").then_some(Kind::Tar))
}

fn open(path: &Path, kind: Kind) -> Result<Box<dyn Read>> {
    let file = BufReader::new(
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    );
    Ok(match kind {
        Kind::Tar => Box::new(file),
        Kind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Kind::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    })
}

/// The archive's bytes' digest: what the cache compares.
pub fn digest(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// `name` from an archive, under `dest` (absolute, a directory), without
/// a leading `/`; None for the archive's root itself. `..` is refused.
fn rerooted(dest: &str, name: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::from(dest.trim_start_matches('/'));
    let mut any = false;
    for component in name.components() {
        match component {
            Component::Normal(part) => {
                out.push(part);
                any = true;
            }
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                bail!(
                    "the archive names {}, which leads out of it",
                    name.display()
                )
            }
        }
    }
    Ok(any.then_some(out))
}

/// The archives' entries under `dest`, after `parents` (directories the
/// image lacks, made root's 0755), as one layer tar into `out`.
pub fn write_layer(
    archives: &[(PathBuf, Kind)],
    dest: &str,
    parents: &[String],
    owner: Option<(u32, u32)>,
    out: impl Write,
) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    let now = crate::util::time::now_nanos() / 1_000_000_000;
    for parent in parents {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(now);
        header.set_size(0);
        builder.append_data(
            &mut header,
            format!("{}/", parent.trim_start_matches('/')),
            std::io::empty(),
        )?;
    }
    for (path, kind) in archives {
        let mut archive = tar::Archive::new(open(path, *kind)?);
        for entry in archive
            .entries()
            .with_context(|| format!("reading {}", path.display()))?
        {
            let mut entry = entry.with_context(|| format!("reading {}", path.display()))?;
            let name = entry.path()?.into_owned();
            let Some(target) =
                rerooted(dest, &name).with_context(|| format!("ADD {}", path.display()))?
            else {
                continue;
            };
            let mut header = entry.header().clone();
            if let Some((uid, gid)) = owner {
                header.set_uid(uid.into());
                header.set_gid(gid.into());
            }
            let kind = header.entry_type();
            if kind.is_hard_link() {
                let link = entry.link_name()?.context("a hard link without a target")?;
                let Some(link) = rerooted(dest, &link)? else {
                    bail!("ADD {}: a hard link to the archive's root", path.display());
                };
                builder.append_link(&mut header, &target, &link)?;
            } else if kind.is_symlink() {
                let link = entry
                    .link_name()?
                    .context("a symlink without a target")?
                    .into_owned();
                builder.append_link(&mut header, &target, &link)?;
            } else if kind.is_file() || kind.is_dir() {
                builder.append_data(&mut header, &target, &mut entry)?;
            }
            // Devices, FIFOs and extended headers' own entries are left out.
        }
    }
    builder.into_inner()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    fn archive(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let mut builder = tar::Builder::new(vec![]);
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o640);
            header.set_uid(33);
            header.set_gid(33);
            header.set_entry_type(tar::EntryType::Regular);
            // Set the name raw: the tar crate refuses `..` in set_path.
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let path = dir.join("app.tar.gz");
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        path
    }

    fn entries(bytes: &[u8]) -> Vec<(String, u64)> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn an_archive_unpacks_under_the_destination_with_its_owners() {
        let dir = ScratchDir::new("build-archive");
        let path = archive(&dir, &[("./bin/app", b"binary"), ("etc/app.conf", b"x=1")]);
        assert_eq!(kind_of(&path).unwrap(), Some(Kind::Gzip));
        assert_eq!(kind_of(&dir.join("missing")).unwrap(), None);
        let mut out = vec![];
        write_layer(
            &[(path.clone(), Kind::Gzip)],
            "/opt/app",
            &["/opt".into()],
            None,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            entries(&out),
            [
                ("opt/".to_string(), 0),
                ("opt/app/bin/app".into(), 33),
                ("opt/app/etc/app.conf".into(), 33)
            ]
        );
        let mut out = vec![];
        write_layer(&[(path, Kind::Gzip)], "/srv", &[], Some((7, 7)), &mut out).unwrap();
        assert_eq!(entries(&out)[0], ("srv/bin/app".to_string(), 7));
    }

    #[test]
    fn names_that_climb_out_are_refused() {
        let dir = ScratchDir::new("build-archive-climb");
        let path = archive(&dir, &[("../../etc/passwd", b"root::0:0")]);
        let err =
            write_layer(&[(path, Kind::Gzip)], "/srv", &[], None, std::io::sink()).unwrap_err();
        assert!(format!("{err:#}").contains("leads out"), "{err:#}");
    }
}
