//! A container's live directory, `containers/ID/` under the runtime dir:
//! its `state.json` (the pids of its monitor and init, see `record`), the
//! generated /etc files it bind-mounts, its rootfs mount point, and
//! slirp4netns's socket. This module alone knows that layout. The dir is
//! removed when the container ends, on every path out of `rocker run` (the
//! guard's Drop); a reboot wipes it too, as it should.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::host::dirs::ensure_private_dir;
use crate::network::keeper::protocol::Endpoint;
use crate::rootfs::etc_files;
use crate::rootfs::plan::GeneratedFiles;
use crate::spec::ContainerSpec;

/// The file of a running container's processes (see `record::LiveState`).
pub const STATE_FILE: &str = "state.json";

/// Where the container is on user-defined networks (see `network::keeper`).
const ENDPOINTS_FILE: &str = "endpoints.json";

/// The endpoints of running container `id` on user-defined networks.
pub fn read_endpoints(runtime: &Path, id: &str) -> Vec<Endpoint> {
    crate::util::fs::read_json(&path(runtime, id).join(ENDPOINTS_FILE))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Replaces them (`network connect` and `disconnect`).
pub fn write_endpoints(runtime: &Path, id: &str, endpoints: &[Endpoint]) -> Result<()> {
    write_endpoints_in(&path(runtime, id), endpoints)
}

fn write_endpoints_in(dir: &Path, endpoints: &[Endpoint]) -> Result<()> {
    crate::util::fs::write_atomic(
        &dir.join(ENDPOINTS_FILE),
        &serde_json::to_vec(endpoints)?,
        0o600,
    )
}

/// The container's compiled syscall filter (see `runtime::seccomp`).
const SECCOMP_FILE: &str = "seccomp.bpf";

/// The syscall filter of running container `id`, None when it has none.
pub fn read_seccomp(runtime: &Path, id: &str) -> Result<Option<Vec<u8>>> {
    let path = path(runtime, id).join(SECCOMP_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Container `id`'s live dir under the runtime dir `runtime`.
pub fn path(runtime: &Path, id: &str) -> PathBuf {
    runtime.join("containers").join(id)
}

/// Where an overlay rootfs of container `id` is mounted: in the live dir
/// (a tmpfs on most hosts), since a mount point is state of a running
/// container, not data to keep.
pub fn rootfs_mount_point(runtime: &Path, id: &str) -> PathBuf {
    path(runtime, id).join("rootfs")
}

/// A live dir held by its container's monitor; removed on drop.
pub struct LiveDir {
    path: PathBuf,
}

impl LiveDir {
    /// The live dir of container `id`, with the mount point its rootfs
    /// needs (see `rootfs_mount_point`).
    pub fn create(runtime: &Path, spec: &ContainerSpec) -> Result<LiveDir> {
        let path = path(runtime, &spec.id);
        ensure_private_dir(&path)?;
        let dir = LiveDir { path };
        if let Some(mount_point) = spec.rootfs.mount_point() {
            std::fs::create_dir(mount_point)
                .with_context(|| format!("creating {}", mount_point.display()))?;
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps where the container is on user-defined networks, for
    /// `inspect`.
    pub fn write_endpoints(&self, endpoints: &[Endpoint]) -> Result<()> {
        write_endpoints_in(&self.path, endpoints)
    }

    /// Composes /etc/hosts, /etc/hostname and /etc/resolv.conf for
    /// `spec`, at its `endpoint` on a user-defined network, and makes the
    /// directory the container confines them to (see
    /// `mount::confine_generated_files`), which writes them from memory:
    /// their copies here, which `inspect` names, are written by
    /// `keep_for_later_commands`, after the clone, while the container sets
    /// up. On a user-defined network the hosts file goes to `shared_hosts`
    /// instead, written now: the keeper rewrites it as peers come and go,
    /// so the container binds it as it is rather than a confined copy, and
    /// it belongs on disk, with the container's other writes, not in the
    /// small runtime dir.
    ///
    /// On another container's network, the files it starts from are that
    /// container's, read below `peer_root` (its /proc/PID/root), not the
    /// host's.
    pub fn compose_etc_files(
        &self,
        spec: &ContainerSpec,
        endpoint: Option<&Endpoint>,
        shared_hosts: Option<&Path>,
        peer_root: Option<&Path>,
    ) -> Result<GeneratedFiles> {
        let root = peer_root.unwrap_or(Path::new("/"));
        let host_hosts = std::fs::read_to_string(root.join("etc/hosts")).ok();
        let host_resolv = std::fs::read_to_string(root.join("etc/resolv.conf")).ok();
        let mut files = GeneratedFiles::in_dir(self.path.join("etc"));
        if let Some(path) = shared_hosts {
            files.hosts = path.to_path_buf();
        }
        std::fs::create_dir(&files.dir)
            .with_context(|| format!("creating {}", files.dir.display()))?;
        let contents = [
            (
                files.hosts.clone(),
                etc_files::hosts_file(
                    &spec.hostname,
                    &spec.network,
                    endpoint,
                    host_hosts.as_deref(),
                    &spec.names,
                ),
            ),
            (
                files.hostname.clone(),
                etc_files::hostname_file(&spec.hostname),
            ),
            (
                files.resolv_conf.clone(),
                etc_files::resolv_conf(
                    &spec.network,
                    endpoint,
                    host_resolv.as_deref(),
                    &spec.names,
                ),
            ),
        ];
        for (path, content) in contents {
            match path.starts_with(&files.dir) {
                true => files.confined.push((path, content)),
                false => std::fs::write(&path, &content)
                    .with_context(|| format!("writing {}", path.display()))?,
            }
        }
        Ok(files)
    }

    /// Writes what the container holds in memory and later commands read
    /// here: the syscall filter every `exec` installs, and the copies of
    /// the generated /etc files. The monitor calls it once the container is
    /// cloned, before it is reported started: nothing may look for these
    /// files earlier (`exec` finds a container by its state, written then),
    /// and meanwhile the container mounts its root on the other core.
    pub fn keep_for_later_commands(
        &self,
        seccomp: Option<&[u8]>,
        files: &GeneratedFiles,
    ) -> Result<()> {
        if let Some(program) = seccomp {
            let path = self.path.join(SECCOMP_FILE);
            std::fs::write(&path, program)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        crate::rootfs::mount::write_confined_files(files)
    }
}

impl Drop for LiveDir {
    fn drop(&mut self) {
        // Gone already when a removal of the container took it (--rm).
        match std::fs::remove_dir_all(&self.path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                eprintln!(
                    "rocker: warning: could not remove {}: {err}",
                    self.path.display()
                );
            }
            Ok(()) => {}
        }
    }
}
