//! `RUN --mount=...`: what a build step mounts besides the image. A cache
//! mount (`type=cache,target=/var/cache/apt`) is a directory the store
//! keeps across builds, shared by every step that names the same id (the
//! target by default), never part of a layer; a tmpfs mount is empty each
//! time.

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    Cache {
        target: String,
        /// What names the cache: `id=`, else the target.
        id: String,
        /// `sharing=locked`: one step at a time uses it.
        locked: bool,
        readonly: bool,
    },
    Tmpfs {
        target: String,
    },
}

/// One `--mount=` value, as BuildKit writes them: comma-separated
/// `key=value` fields (`readonly`/`ro` alone).
pub fn parse(text: &str) -> Result<RunMount> {
    let mut kind = "bind".to_string();
    let mut target = None;
    let mut id = None;
    let mut locked = false;
    let mut readonly = false;
    for field in text.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => (field.trim(), "true"),
        };
        match key {
            "type" => kind = value.to_string(),
            "target" | "dst" | "destination" => target = Some(value.to_string()),
            "id" => id = Some(value.to_string()),
            "sharing" => match value {
                "shared" | "private" => locked = false,
                "locked" => locked = true,
                other => bail!("--mount sharing={other}: shared, private or locked"),
            },
            "readonly" | "ro" => readonly = value != "false",
            // A cache dir is the caller's; these change nothing for one uid.
            "mode" | "uid" | "gid" => {}
            other => bail!("--mount={text}: rocker does not know {other}="),
        }
    }
    let target = target.with_context(|| format!("--mount={text} needs target=PATH"))?;
    if !target.starts_with('/') {
        bail!("--mount={text}: the target must be an absolute path");
    }
    match kind.as_str() {
        "cache" => Ok(RunMount::Cache {
            id: id.unwrap_or_else(|| target.clone()),
            target,
            locked,
            readonly,
        }),
        "tmpfs" => Ok(RunMount::Tmpfs { target }),
        other => {
            bail!("RUN --mount=type={other} is not supported: rocker has type=cache and type=tmpfs")
        }
    }
}

/// The directory name a cache id gets in the store (ids are free text).
pub fn cache_dir_name(id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    format!("{digest:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_as_buildkit_writes_them() {
        assert_eq!(
            parse("type=cache,target=/var/cache/apt,sharing=locked").unwrap(),
            RunMount::Cache {
                target: "/var/cache/apt".into(),
                id: "/var/cache/apt".into(),
                locked: true,
                readonly: false
            }
        );
        assert_eq!(
            parse("type=cache,id=pip,dst=/root/.cache/pip,ro").unwrap(),
            RunMount::Cache {
                target: "/root/.cache/pip".into(),
                id: "pip".into(),
                locked: false,
                readonly: true
            }
        );
        assert_eq!(
            parse("type=tmpfs,target=/scratch").unwrap(),
            RunMount::Tmpfs {
                target: "/scratch".into()
            }
        );
        assert!(parse("type=secret,id=token")
            .unwrap_err()
            .to_string()
            .contains("target"));
        assert!(parse("type=secret,id=t,target=/t")
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        assert!(parse("type=cache,target=relative").is_err());
        assert_ne!(cache_dir_name("a"), cache_dir_name("b"));
    }
}
