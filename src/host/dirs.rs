//! Where rocker keeps things, following the XDG base directories (tests
//! point them elsewhere with XDG_* and HOME).

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Dirs {
    /// `$XDG_DATA_HOME/rocker`: the image and container store.
    pub data: PathBuf,
    /// `$XDG_CONFIG_HOME/rocker`: rocker's own settings.
    pub config: PathBuf,
    /// `$XDG_RUNTIME_DIR/rocker`, or `/tmp/rocker-UID`: live state.
    pub runtime: PathBuf,
    /// `$XDG_CONFIG_HOME`: where `containers/registries.conf` lives.
    pub config_home: PathBuf,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, or under `$XDG_CONFIG_HOME`
    /// without a runtime dir (podman reads both).
    pub auth_file: PathBuf,
    pub home: PathBuf,
}

impl Dirs {
    pub fn discover() -> Result<Dirs> {
        let project = directories::ProjectDirs::from("", "", "rocker")
            .context("cannot find a home directory: set HOME")?;
        let base =
            directories::BaseDirs::new().context("cannot find a home directory: set HOME")?;
        let uid = nix::unistd::getuid().as_raw();
        let runtime = match project.runtime_dir() {
            Some(dir) => dir.to_path_buf(),
            None => PathBuf::from(format!("/tmp/rocker-{uid}")),
        };
        let auth_file = base
            .runtime_dir()
            .unwrap_or(base.config_dir())
            .join("containers/auth.json");
        Ok(Dirs {
            data: project.data_dir().to_path_buf(),
            config: project.config_dir().to_path_buf(),
            runtime,
            config_home: base.config_dir().to_path_buf(),
            auth_file,
            home: base.home_dir().to_path_buf(),
        })
    }

    /// The runtime directory, created 0700 if needed. It must belong to us:
    /// under a shared /tmp another user could have made it first.
    pub fn ensure_runtime(&self) -> Result<&Path> {
        ensure_private_dir(&self.runtime)?;
        Ok(&self.runtime)
    }
}

/// Creates `dir` (and its parents) with mode 0700 and checks that it is a
/// real directory owned by the caller and closed to others.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("checking {}", dir.display()))?;
    let uid = nix::unistd::getuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid {
        bail!(
            "{} is not a directory owned by uid {uid}; remove it or set XDG_RUNTIME_DIR",
            dir.display()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to its owner", dir.display()))?;
    }
    Ok(())
}
