//! The owners and modes a layer's files have in the image, which its
//! extracted directory cannot keep (everything there belongs to the
//! caller, and directories are made writable for them). They come from the
//! layer's tar headers, read once from the kept blob and cached beside it
//! in the store; only what differs from root-owned (and, for directories,
//! from owner-writable) is listed.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::codec;
use crate::image::digest::Digest;
use crate::image::store::Store;
use crate::util::fs::{read_json, write_atomic};

/// One file's owner and, where the directory on disk differs, its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
    /// The mode the image gives it, when the extracted copy has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl Owner {
    pub const ROOT: Owner = Owner {
        uid: 0,
        gid: 0,
        mode: None,
    };
}

/// Paths (relative, as `etc/passwd`) -> owner, for the files not root's.
pub type Owners = HashMap<String, Owner>;

#[derive(Serialize, Deserialize)]
struct Listed {
    path: String,
    #[serde(flatten)]
    owner: Owner,
}

/// `./a//b/` or `/a/b` -> `a/b`: the path as the layer's directory holds it.
pub fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The owners of layer `diff_id`: from the cache, or read from its blob
/// (and cached). A layer with no kept blob (pulled by an older rocker) has
/// none known: everything is root's.
pub fn layer_owners(store: &Store, diff_id: &Digest) -> Result<Owners> {
    let cache = store.layer_owners_path(diff_id);
    if let Some(listed) = read_json::<Vec<Listed>>(&cache)? {
        return Ok(listed.into_iter().map(|l| (l.path, l.owner)).collect());
    }
    let Some(blob) = store.layer_blobs(diff_id)?.into_iter().next() else {
        return Ok(Owners::new());
    };
    let path = store.blob_path(&blob.digest);
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let tar = codec::decoder(std::io::BufReader::new(file), blob.compression)?;
    let owners = scan(tar).with_context(|| format!("reading the owners of layer {diff_id}"))?;
    let mut listed: Vec<Listed> = owners
        .iter()
        .map(|(path, owner)| Listed {
            path: path.clone(),
            owner: *owner,
        })
        .collect();
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    write_atomic(&cache, &serde_json::to_vec(&listed)?, 0o600)?;
    Ok(owners)
}

/// The owners a layer tar's headers give, where not root's.
fn scan(tar: impl Read) -> Result<Owners> {
    let mut owners = Owners::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        if path.is_empty() {
            continue;
        }
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mode = header.mode().unwrap_or(0o755) & 0o7777;
        // Extraction makes every directory owner-writable and -searchable.
        let dir_mode = (header.entry_type().is_dir() && mode & 0o700 != 0o700).then_some(mode);
        if uid != 0 || gid != 0 || dir_mode.is_some() {
            owners.insert(
                path,
                Owner {
                    uid,
                    gid,
                    mode: dir_mode,
                },
            );
        } else {
            // A later entry for the same path (tar allows it) wins.
            owners.remove(&path);
        }
    }
    Ok(owners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_not_roots_is_listed() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, uid: u64, mode: u32, kind: tar::EntryType| {
            let mut header = tar::Header::new_gnu();
            header.set_uid(uid);
            header.set_gid(uid);
            header.set_mode(mode);
            header.set_size(0);
            header.set_entry_type(kind);
            builder.append_data(&mut header, path, &[][..]).unwrap();
        };
        add("./etc/", 0, 0o755, tar::EntryType::Directory);
        add("./etc/passwd", 0, 0o644, tar::EntryType::Regular);
        add("./var/cache/apt/", 42, 0o755, tar::EntryType::Directory);
        add("./root/", 0, 0o500, tar::EntryType::Directory);
        add("home/app/.profile", 1000, 0o644, tar::EntryType::Regular);
        let owners = scan(builder.into_inner().unwrap().as_slice()).unwrap();
        assert_eq!(owners.len(), 3, "{owners:?}");
        assert_eq!(owners["var/cache/apt"].uid, 42);
        assert_eq!(owners["root"].mode, Some(0o500));
        assert_eq!(owners["home/app/.profile"].gid, 1000);
        assert!(!owners.contains_key("etc/passwd"));
    }
}
