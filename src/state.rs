//! A container's live directory under the runtime dir: the generated /etc
//! files it bind-mounts. It is removed when the container ends, on every
//! path out of `rocker run` (the guard's Drop).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::host::dirs::ensure_private_dir;
use crate::rootfs::etc_files;
use crate::rootfs::plan::GeneratedFiles;
use crate::spec::ContainerSpec;

fn live_dir(runtime: &Path, id: &str) -> PathBuf {
    runtime.join("containers").join(id)
}

/// Where an overlay rootfs of container `id` is mounted: in the live dir
/// (a tmpfs on most hosts), since a mount point is state of a running
/// container, not data to keep.
pub fn rootfs_mount_point(runtime: &Path, id: &str) -> PathBuf {
    live_dir(runtime, id).join("rootfs")
}

pub struct ContainerDir {
    path: PathBuf,
}

impl ContainerDir {
    /// The live dir of container `id`, with the mount point its rootfs
    /// needs (see `rootfs_mount_point`).
    pub fn create(runtime: &Path, spec: &ContainerSpec) -> Result<ContainerDir> {
        let path = live_dir(runtime, &spec.id);
        ensure_private_dir(&path)?;
        let dir = ContainerDir { path };
        if let Some(mount_point) = spec.rootfs.mount_point() {
            std::fs::create_dir(mount_point)
                .with_context(|| format!("creating {}", mount_point.display()))?;
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes /etc/hosts, /etc/hostname and /etc/resolv.conf for `spec`.
    pub fn write_etc_files(&self, spec: &ContainerSpec) -> Result<GeneratedFiles> {
        let host_hosts = std::fs::read_to_string("/etc/hosts").ok();
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").ok();
        let files = GeneratedFiles {
            hosts: self.path.join("hosts"),
            hostname: self.path.join("hostname"),
            resolv_conf: self.path.join("resolv.conf"),
        };
        let contents = [
            (
                &files.hosts,
                etc_files::hosts_file(&spec.hostname, spec.network, host_hosts.as_deref()),
            ),
            (&files.hostname, etc_files::hostname_file(&spec.hostname)),
            (
                &files.resolv_conf,
                etc_files::resolv_conf(spec.network, host_resolv.as_deref()),
            ),
        ];
        for (path, content) in contents {
            std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            eprintln!(
                "rocker: warning: could not remove {}: {err}",
                self.path.display()
            );
        }
    }
}
