//! A container's live directory under the runtime dir: the generated /etc
//! files it bind-mounts. It is removed when the container ends, on every
//! path out of `rocker run` (the guard's Drop).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::dirs::ensure_private_dir;
use crate::etcfiles;
use crate::mountplan::GeneratedFiles;
use crate::spec::ContainerSpec;

pub struct ContainerDir {
    path: PathBuf,
}

impl ContainerDir {
    pub fn create(runtime: &Path, id: &str) -> Result<ContainerDir> {
        let path = runtime.join("containers").join(id);
        ensure_private_dir(&path)?;
        Ok(ContainerDir { path })
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
                etcfiles::hosts_file(&spec.hostname, spec.network, host_hosts.as_deref()),
            ),
            (&files.hostname, etcfiles::hostname_file(&spec.hostname)),
            (
                &files.resolv_conf,
                etcfiles::resolv_conf(spec.network, host_resolv.as_deref()),
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
