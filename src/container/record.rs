//! The records of containers, from `run` until `rm`:
//!
//! - in the store, `containers/ID/` (beside its upper dir and lower links):
//!   `config.json`, what the container is (written once, at creation), and
//!   `status.json`, when it started and how it ended (rewritten by its
//!   monitor); `ctr.log` for a detached one;
//! - in the runtime dir, `containers/ID/state.json`: the pids of its
//!   monitor and init while it runs. A reboot wipes it, as it should.
//!
//! Every file is written by rename. Creating and removing records (where
//! names must stay unique) happens under `containers.lock`.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::identity::ProcessId;
use super::name_index::NameIndex;
use super::{live_dir, names};
use crate::cgroups::limits::Limits;
use crate::error::StatusError;
use crate::host::dirs::Dirs;
use crate::network::ports::PortMapping;
use crate::network::NetworkMode;
use crate::rootfs::backing::container_dir::CONTAINERS_DIR;
use crate::rootfs::backing::mode::RootfsMode;
pub use crate::spec::LogDriver;
use crate::spec::{parse_signal, ContainerUser};
use crate::util::fs::{read_json, read_json_at, remove_tree, replace_file};
use crate::util::lock::FileLock;

const CONFIG_FILE: &str = "config.json";
const STATUS_FILE: &str = "status.json";
pub const LOG_FILE: &str = "ctr.log";
/// Left by stop, kill and rm -f: the monitor does not start the container again.
const STOP_REQUESTED: &str = "stop-requested";

/// What a container is: fixed when it is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as named on the command line, or the `--rootfs` directory.
    pub image: String,
    /// The image's id (its config digest); none for `--rootfs`.
    pub image_id: Option<String>,
    /// Nanoseconds since the epoch.
    pub created: u64,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// The ids the container runs as (`UID:GID` in the file): the one user
    /// its user namespace maps.
    #[serde(with = "crate::util::as_text")]
    pub user: ContainerUser,
    pub hostname: String,
    pub tty: bool,
    /// The network mode (its name in the file; options are not kept).
    #[serde(with = "crate::util::as_text")]
    pub network: NetworkMode,
    /// The container's address, behind slirp4netns.
    pub ip_address: Option<String>,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<MountRecord>,
    /// The signal `stop` sends first (the image's StopSignal, or SIGTERM).
    #[serde(with = "crate::util::as_text")]
    pub stop_signal: StopSignal,
    /// `--log-driver`: json-file (the log `logs` reads) or none.
    #[serde(default, skip_serializing_if = "LogDriver::is_default")]
    pub log_driver: LogDriver,
    /// `--stop-timeout`: what `stop` waits by default (docker's 10 s
    /// without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    pub auto_remove: bool,
    pub detached: bool,
    /// How its root is made.
    pub rootfs_mode: RootfsKind,
    #[serde(default)]
    pub limits: Limits,
    /// The image's labels with `--label`s over them.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// When its monitor starts it again (`--restart`).
    #[serde(default, with = "crate::util::as_text")]
    pub restart: crate::spec::RestartPolicy,
    /// The ports it says it listens on, docker's `80/tcp` keys: the
    /// image's ExposedPorts, `--expose` and the published ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// Run flags `inspect` reports that nothing else keeps.
    #[serde(default, skip_serializing_if = "RunFlags::is_default")]
    pub flags: RunFlags,
    /// `--ipc host`, `--uts host`: what `exec` must not try to join.
    #[serde(
        default,
        skip_serializing_if = "crate::spec::HostNamespaces::is_default"
    )]
    pub host_namespaces: crate::spec::HostNamespaces,
    /// Capabilities, filter and root emulation (records written before
    /// rocker had them read as the defaults of then: none of it).
    #[serde(default)]
    pub security: SecurityRecord,
}

/// How a container is confined.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecurityRecord {
    /// The capabilities it keeps, by name (None: the default set).
    pub capabilities: Option<Vec<String>>,
    pub privileged: bool,
    /// Its syscall filter, as `inspect` names it.
    pub seccomp: String,
    pub root_emulation: bool,
    /// `--security-opt` as given.
    pub security_opt: Vec<String>,
}

/// The signal `stop` sends first, kept by name. A name rocker cannot send
/// (an image's `SIGRTMIN+3`) reads as SIGTERM, as docker falls back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal(pub Signal);

impl StopSignal {
    /// The image's StopSignal (or none): SIGTERM, with a warning, when it
    /// names no signal rocker can send.
    pub fn of_image(text: Option<&str>) -> StopSignal {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => StopSignal(Signal::SIGTERM),
            Some(text) => StopSignal(parse_signal(text).unwrap_or_else(|err| {
                eprintln!("rocker: warning: the image's StopSignal: {err:#}; stop sends SIGTERM");
                Signal::SIGTERM
            })),
        }
    }
}

impl std::fmt::Display for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl std::str::FromStr for StopSignal {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<StopSignal, Self::Err> {
        Ok(StopSignal(parse_signal(text).unwrap_or(Signal::SIGTERM)))
    }
}

/// Where a container's root comes from: an image under one of the host's
/// rootfs modes, or a directory (`--rootfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsKind {
    Overlay,
    FuseOverlayfs,
    Copy,
    Directory,
}

impl From<RootfsMode> for RootfsKind {
    fn from(mode: RootfsMode) -> RootfsKind {
        match mode {
            RootfsMode::Overlay => RootfsKind::Overlay,
            RootfsMode::FuseOverlayfs => RootfsKind::FuseOverlayfs,
            RootfsMode::Copy => RootfsKind::Copy,
        }
    }
}

/// The run flags docker's `inspect` shows in HostConfig and Config, as
/// given, for the record alone (the spec has what the runtime needs).
/// Empty ones are not written, so a plain container's record stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFlags {
    /// `--network-alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--add-host NAME:ADDRESS`, as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidfile: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// `-i`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
}

impl RunFlags {
    pub fn is_default(&self) -> bool {
        *self == RunFlags::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Tmpfs,
    Volume,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    pub kind: MountKind,
    /// A volume's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An anonymous volume's (see `UserMount::Volume`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
    pub source: Option<String>,
    pub destination: String,
    pub read_only: bool,
}

/// When the container ran, and how it ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub exit_code: Option<i32>,
    /// The kernel's OOM killer killed a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    /// How often its monitor has started it again (`--restart`).
    #[serde(default)]
    pub restart_count: u32,
    /// The monitor that waits to start it again, while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarting: Option<ProcessId>,
    /// The runtime dir of the session that started it, where its live dir
    /// is: another session (another `XDG_RUNTIME_DIR`, or none) finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<PathBuf>,
}

/// The processes of a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    pub monitor: ProcessId,
    /// The container's PID 1, as the host sees it.
    pub init: ProcessId,
    /// The container's own cgroup, when it has limits.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    /// Set while `pause` holds it, with how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<PausedBy>,
}

/// How a paused container's processes are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PausedBy {
    /// Its cgroup's freezer (`cgroup.freeze`).
    Freezer,
    /// SIGSTOP to each of its processes (a container without a cgroup).
    Signals,
}

/// Where a container is in its life, as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Recorded, not (yet) started.
    Created,
    Running(LiveState),
    Exited {
        code: i32,
        finished: u64,
    },
    /// It started, and its monitor is gone without saying how it ended
    /// (killed, or the machine rebooted).
    Stopped,
    /// Its status file cannot be read (why), and nothing of it runs.
    Damaged(String),
    /// It exited, and its monitor waits to start it again (`--restart`).
    Restarting {
        monitor: ProcessId,
        code: i32,
        finished: u64,
    },
}

impl State {
    /// docker's word for it.
    pub fn word(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running(live) if live.paused.is_some() => "paused",
            State::Running(_) => "running",
            State::Exited { .. } => "exited",
            State::Stopped => "stopped",
            State::Restarting { .. } => "restarting",
            State::Damaged(_) => "damaged",
        }
    }
}

/// The containers of one user: the store's records and the live state.
pub struct Containers {
    /// rocker's data dir, where the name index lives.
    data: PathBuf,
    store: PathBuf,
    /// The store, open: records and statuses are read relative to it.
    store_dir: std::fs::File,
    runtime: PathBuf,
    lock_path: PathBuf,
}

/// A held `containers.lock`.
pub type ContainersLock = FileLock;

impl Containers {
    pub fn open(dirs: &Dirs) -> Result<Containers> {
        crate::host::dirs::ensure_private_dir(&dirs.data)?;
        let store = dirs.data.join(CONTAINERS_DIR);
        std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
        let store_dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_PATH | libc::O_CLOEXEC)
            .open(&store)
            .with_context(|| format!("opening {}", store.display()))?;
        Ok(Containers {
            data: dirs.data.clone(),
            store_dir,
            store,
            runtime: dirs.runtime.clone(),
            lock_path: dirs.data.join("containers.lock"),
        })
    }

    /// Creating or removing records (which changes who holds a name)
    /// happens under this lock.
    pub fn lock(&self) -> Result<ContainersLock> {
        FileLock::exclusive(&self.lock_path)
    }

    /// The container's dir in the store.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.store.join(id)
    }

    /// rocker's data dir, which holds the store.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// This session's runtime dir, where the containers it starts live.
    pub fn runtime(&self) -> &Path {
        &self.runtime
    }

    /// The runtime dir of the session that started the container (its
    /// status says), else this session's.
    pub fn runtime_of(&self, id: &str) -> PathBuf {
        self.status(id)
            .ok()
            .and_then(|status| status.runtime)
            .unwrap_or_else(|| self.runtime.clone())
    }

    /// The container's live dir, in the runtime dir of the session that
    /// started it.
    pub fn live_dir(&self, id: &str) -> PathBuf {
        live_dir::path(&self.runtime_of(id), id)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(LOG_FILE)
    }

    /// Every container with a record, oldest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut records: Vec<ContainerRecord> = self.read_each(|dir| self.read_record_of(dir))?;
        // By reference: a key that clones the id would allocate per comparison.
        records.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(records)
    }

    /// What `read` makes of each container dir in the store, in no order.
    /// A dir it has nothing for (no config.json: a container being
    /// created, or one whose creation was killed) is not a container yet;
    /// one it fails on is named in a warning and left out.
    pub(super) fn read_each<R: Send>(
        &self,
        read: impl Fn(&Path) -> Result<Option<R>> + Sync,
    ) -> Result<Vec<R>> {
        let mut found = vec![];
        let entries = match std::fs::read_dir(&self.store) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", self.store.display()))
            }
        };
        let dirs: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        // Several threads for a large store: the kernel's part of reading
        // thousands of small files is most of `ps -a`'s time.
        let read = crate::util::parallel::map(&dirs, |dir| read(dir));
        for (dir, result) in dirs.iter().zip(read) {
            match result {
                Ok(Some(item)) => found.push(item),
                Ok(None) => {}
                // One damaged record (a power cut) must not hide the rest.
                Err(err) => eprintln!(
                    "rocker: warning: {err:#}; remove {} to drop it",
                    dir.display()
                ),
            }
        }
        Ok(found)
    }

    /// The container a user means by `query`: its name, its id, or a
    /// unique prefix of its id.
    pub fn find(&self, query: &str) -> Result<ContainerRecord> {
        match self.lookup(query)? {
            Some(record) => Ok(record),
            // docker's status for an object that does not exist.
            None => Err(StatusError::new(
                1,
                format!("no such container: {query} (see rocker ps -a)"),
            )
            .into()),
        }
    }

    /// As `find`, with None when no container matches (an ambiguous id
    /// prefix is still an error).
    pub fn lookup(&self, query: &str) -> Result<Option<ContainerRecord>> {
        let Some(index) = NameIndex::existing(&self.data) else {
            return self.lookup_in_records(query);
        };
        if let Some(record) = self.holder_of(&index, query) {
            return Ok(Some(record));
        }
        // An id or a prefix of one: the listing's names, then only the
        // records that match.
        let ids: Vec<String> = match query.is_empty() {
            true => vec![],
            false => std::fs::read_dir(&self.store)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| e.file_name().to_str().map(str::to_string))
                        .filter(|id| id.starts_with(query))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let mut matches = vec![];
        for id in ids {
            if let Ok(Some(record)) = read_record(&self.dir(&id)) {
                if record.id == query {
                    return Ok(Some(record));
                }
                matches.push(record);
            }
        }
        match matches.len() {
            // A name the index lacks: a container an older rocker made
            // after the index was built. Only a miss pays for the records.
            0 => self.lookup_in_records(query),
            1 => Ok(matches.pop()),
            many => bail!("{query} matches {many} containers; give more of the id"),
        }
    }

    /// The container holding `name`, by the index: a link to a container
    /// gone, or renamed since, is stale and names no one.
    fn holder_of(&self, index: &NameIndex, name: &str) -> Option<ContainerRecord> {
        let id = index.holder(name)?;
        read_record(&self.dir(&id))
            .ok()
            .flatten()
            .filter(|record| record.name == name)
    }

    /// The name index, built from the records when this store has none yet
    /// (one made by an older rocker). Under the lock.
    fn name_index(&self, _lock: &ContainersLock) -> Result<NameIndex> {
        if let Some(index) = NameIndex::existing(&self.data) {
            return Ok(index);
        }
        let records = self.list()?;
        NameIndex::build(
            &self.data,
            records.iter().map(|r| (r.name.as_str(), r.id.as_str())),
        )
    }

    /// `lookup` in a store without a name index: every record read.
    fn lookup_in_records(&self, query: &str) -> Result<Option<ContainerRecord>> {
        let records = self.list()?;
        if let Some(record) = records.iter().find(|r| r.name == query || r.id == query) {
            return Ok(Some(record.clone()));
        }
        let matches: Vec<&ContainerRecord> = match query.is_empty() {
            true => vec![],
            false => records.iter().filter(|r| r.id.starts_with(query)).collect(),
        };
        match matches.as_slice() {
            [one] => Ok(Some((*one).clone())),
            [] => Ok(None),
            many => bail!(
                "{query} matches {} containers; give more of the id",
                many.len()
            ),
        }
    }

    /// Records a new container, whose store dir exists. An empty name gets
    /// a free made-up one; a given name that is taken fails, naming the
    /// holder. One listing serves both, under the lock.
    pub fn create(&self, record: &mut ContainerRecord, lock: &ContainersLock) -> Result<()> {
        let index = self.name_index(lock)?;
        if record.name.is_empty() {
            record.name = names::made_up(&record.id, |name| self.holder_of(&index, name).is_some());
        } else if let Some(holder) = self.holder_of(&index, &record.name) {
            bail!(
                "the name {:?} is taken by container {}: remove it (rocker rm {}) or choose another --name",
                record.name,
                &holder.id[..12],
                record.name
            );
        }
        // The name first: cut short here, it is a stale link, which the
        // next container takes over; a record without its link would let
        // a second container take its name.
        index.set(&record.name, &record.id)?;
        // No status.json yet: a missing one reads as "created".
        let written = write_json(&self.dir(&record.id).join(CONFIG_FILE), record);
        if written.is_err() {
            index.release(&record.name, &record.id);
        }
        written
    }

    /// Gives container `query` names `name`, which must be free (its own
    /// counts as free: renaming to it changes nothing). Under the lock, as
    /// `create`, so that names stay unique.
    pub fn rename(&self, query: &str, name: &str, lock: &ContainersLock) -> Result<()> {
        names::check(name)?;
        let index = self.name_index(lock)?;
        let mut record = self.find(query)?;
        if let Some(holder) = self
            .holder_of(&index, name)
            .filter(|holder| holder.id != record.id)
        {
            bail!(
                "the name {name:?} is taken by container {}: remove or rename that one first",
                &holder.id[..12]
            );
        }
        let old = std::mem::replace(&mut record.name, name.to_string());
        index.set(name, &record.id)?;
        write_json(&self.dir(&record.id).join(CONFIG_FILE), &record)?;
        if old != name {
            index.release(&old, &record.id);
        }
        Ok(())
    }

    pub fn status(&self, id: &str) -> Result<Status> {
        let name = Path::new(id).join(STATUS_FILE);
        let shown = self.store.join(&name);
        Ok(read_json_at(&self.store_dir, &name, &shown)?.unwrap_or_default())
    }

    pub fn write_status(&self, id: &str, status: &Status) -> Result<()> {
        write_json(&self.dir(id).join(STATUS_FILE), status)
    }

    /// As `write_status`, for how a container ended: synced, the file and
    /// its directory, so that a power cut leaves the old status or the new,
    /// never an empty file.
    pub fn write_final_status(&self, id: &str, status: &Status) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(status).context("serializing a container status")?;
        crate::util::fs::write_durably(&self.dir(id).join(STATUS_FILE), &bytes, 0o600)
    }

    /// Rewrites a running container's live state (pause), where it is.
    pub fn write_live_state(&self, id: &str, state: &LiveState) -> Result<()> {
        write_json(&self.live_dir(id).join(live_dir::STATE_FILE), state)
    }

    /// Writes the live state of a container this process has just started,
    /// in this session's runtime dir (its status names it next).
    pub fn write_started_live_state(&self, id: &str, state: &LiveState) -> Result<()> {
        write_json(
            &live_dir::path(&self.runtime, id).join(live_dir::STATE_FILE),
            state,
        )
    }

    /// `read_record` of container dir `dir` in the store, relative to the
    /// open store; as the whole record or the part of it `R` has.
    pub(super) fn read_record_of<R: DeserializeOwned + Identified>(
        &self,
        dir: &Path,
    ) -> Result<Option<R>> {
        let Some(id) = dir.file_name() else {
            return checked_record(dir, read_json(&dir.join(CONFIG_FILE))?);
        };
        let name = Path::new(id).join(CONFIG_FILE);
        checked_record(
            dir,
            read_json_at(&self.store_dir, &name, &dir.join(CONFIG_FILE))?,
        )
    }

    /// A monitor that was killed left its container's cgroups behind.
    pub(super) fn remove_leftover_cgroup(&self, id: &str) {
        if let Some(leaf) = self.live_state(id).and_then(|live| live.cgroup) {
            crate::cgroups::remove(&leaf);
        }
    }

    fn live_state(&self, id: &str) -> Option<LiveState> {
        self.live_state_of(id, self.status(id).ok().as_ref())
    }

    /// The live state in the live dir `status` names (or this session's).
    fn live_state_of(&self, id: &str, status: Option<&Status>) -> Option<LiveState> {
        let runtime = status
            .and_then(|s| s.runtime.clone())
            .unwrap_or_else(|| self.runtime.clone());
        read_json(&live_dir::path(&runtime, id).join(live_dir::STATE_FILE))
            .ok()
            .flatten()
    }

    /// Tells the container's monitor not to start it again (stop, kill,
    /// rm -f): its restart policy yields to the user.
    pub fn request_stop(&self, id: &str) -> Result<()> {
        let path = self.dir(id).join(STOP_REQUESTED);
        std::fs::write(&path, b"").with_context(|| format!("writing {}", path.display()))
    }

    pub fn stop_requested(&self, id: &str) -> bool {
        self.dir(id).join(STOP_REQUESTED).exists()
    }

    /// A start by hand: the monitor may restart it again.
    pub fn clear_stop_request(&self, id: &str) -> Result<()> {
        let path = self.dir(id).join(STOP_REQUESTED);
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// Where the container is in its life, checked against the processes
    /// themselves: a recorded pid only counts if it is still the same
    /// process.
    pub fn state(&self, id: &str) -> Result<State> {
        Ok(self.status_and_state(id).1)
    }

    /// A container's status and state; a status file that cannot be read
    /// (a power cut can leave one empty) makes a `Damaged` state, not an
    /// error, so that one bad file never stops `ps` or `rm`.
    pub fn status_and_state(&self, id: &str) -> (Status, State) {
        match self.status(id) {
            Ok(status) => {
                let state = self.state_from(id, &status);
                (status, state)
            }
            Err(err) => {
                let state = match self.live_state(id).filter(|live| live.monitor.is_alive()) {
                    Some(live) => State::Running(live),
                    None => State::Damaged(format!("{err:#}")),
                };
                (Status::default(), state)
            }
        }
    }

    /// As `state`, for a caller that has read the status already.
    pub fn state_from(&self, id: &str, status: &Status) -> State {
        if let Some(monitor) = status.restarting.as_ref().filter(|m| m.is_alive()) {
            return State::Restarting {
                monitor: *monitor,
                code: status.exit_code.unwrap_or(0),
                finished: status.finished.unwrap_or(0),
            };
        }
        if let (Some(finished), Some(code)) = (status.finished, status.exit_code) {
            return State::Exited { code, finished };
        }
        // The monitor answers for the container until it has recorded the
        // end: while it lives, the container counts as running.
        let live = self
            .live_state_of(id, Some(status))
            .filter(|live| live.monitor.is_alive());
        match (status.started, live) {
            (Some(_), Some(live)) => State::Running(live),
            (Some(_), None) => State::Stopped,
            (None, _) => State::Created,
        }
    }

    /// Removes a container's files (store and live dirs), which ends its
    /// record and frees its name.
    /// The container dirs whose id starts with `prefix` (at least 4 hex
    /// digits) and whose record cannot be read: what `rm` removes of a
    /// container a power cut left with a truncated config.json.
    pub fn damaged(&self, prefix: &str) -> Vec<String> {
        if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return vec![];
        }
        let Ok(entries) = std::fs::read_dir(&self.store) else {
            return vec![];
        };
        entries
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|id| id.starts_with(prefix))
            .filter(|id| {
                let dir = self.dir(id);
                dir.join(CONFIG_FILE).exists() && read_record(&dir).is_err()
            })
            .collect()
    }

    /// As `remove`, and then the container's anonymous volumes that no
    /// other container claims (`rm -v`, `--rm`, and a run that failed).
    /// Named volumes always stay.
    pub fn remove_with_volumes(&self, id: &str, lock: &ContainersLock) -> Result<()> {
        let claimed = crate::volume::claims::claimed_by(&self.dir(id));
        self.remove(id, lock)?;
        if claimed.is_empty() {
            return Ok(());
        }
        let data = self.store.parent().unwrap_or(&self.store);
        let volumes = crate::volume::Volumes::open(data)?;
        let volumes_lock = volumes.lock_exclusive()?;
        let users = crate::volume::claims::users(&self.store);
        for name in claimed {
            let Ok(Some(volume)) = volumes.get(&name) else {
                continue;
            };
            if volume.record.is_anonymous() && !users.contains_key(&name) {
                volumes.remove(&volume, &volumes_lock)?;
            }
        }
        Ok(())
    }

    pub fn remove(&self, id: &str, lock: &ContainersLock) -> Result<()> {
        let name = read_record(&self.dir(id)).ok().flatten().map(|r| r.name);
        self.remove_files(id, lock)?;
        // Its name goes last, with the record: until then it holds it.
        if let (Some(name), Some(index)) = (name, NameIndex::existing(&self.data)) {
            index.release(&name, id);
        }
        Ok(())
    }

    fn remove_files(&self, id: &str, _lock: &ContainersLock) -> Result<()> {
        self.remove_leftover_cgroup(id);
        remove_tree(&self.live_dir(id))?;
        // The record last: a removal cut short leaves the container listed
        // (rm again finishes it), never a dir no one sees that pins layers.
        // Its writes go first, then its links to the layers (the pins),
        // then the record.
        let dir = self.dir(id);
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        entries.retain(|path| path.file_name() != Some(std::ffi::OsStr::new(CONFIG_FILE)));
        // Each entry looked at once (a sort's comparisons would stat them
        // again and again).
        entries.sort_by_cached_key(|path| path.symlink_metadata().is_ok_and(|m| m.is_symlink()));
        let mut failure = None;
        for path in entries {
            if let Err(err) = remove_tree(&path) {
                failure.get_or_insert(err);
            }
        }
        if let Some(err) = failure {
            return Err(err.context(format!(
                "container {id} is only partly removed; rocker rm {} again once the cause is fixed",
                &id[..id.len().min(12)]
            )));
        }
        remove_tree(&dir)
    }
}

/// The record in container dir `dir`, checked: it must name the dir (its
/// id, 64 hex digits), or it is damaged; None when there is no record.
fn read_record(dir: &Path) -> Result<Option<ContainerRecord>> {
    checked_record(dir, read_json::<ContainerRecord>(&dir.join(CONFIG_FILE))?)
}

/// A record, whole or in part: what `checked_record` checks it by.
pub(super) trait Identified {
    fn id(&self) -> &str;
}

impl Identified for ContainerRecord {
    fn id(&self) -> &str {
        &self.id
    }
}

/// `record`, read from container dir `dir`, checked as `read_record` says.
fn checked_record<R: Identified>(dir: &Path, record: Option<R>) -> Result<Option<R>> {
    let Some(record) = record else {
        return Ok(None);
    };
    let id = record.id();
    let named = dir.file_name().is_some_and(|name| name == id);
    let well_formed = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !named || !well_formed {
        bail!(
            "{} is damaged: its id {id:?} is not its directory's name",
            dir.join(CONFIG_FILE).display(),
        );
    }
    Ok(Some(record))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).context("serializing a container record")?;
    replace_file(path, &bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as rocker wrote it before its fields had types.
    const OLD_RECORD: &str = r#"{
        "id": "c0ffee", "name": "web", "image": "busybox", "image_id": null,
        "created": 1, "command": ["sh"], "env": [], "working_dir": "/",
        "user": "1000:1000", "hostname": "c0ffee", "tty": false,
        "network": "slirp4netns", "ip_address": "10.0.2.100", "ports": [],
        "mounts": [{"kind": "tmpfs", "source": null, "destination": "/t", "read_only": false}],
        "stop_signal": "SIGRTMIN+3", "auto_remove": false, "detached": true,
        "rootfs_mode": "fuse-overlayfs"
    }"#;

    #[test]
    fn records_written_before_read_as_types_and_write_back_the_same() {
        let record: ContainerRecord = serde_json::from_str(OLD_RECORD).unwrap();
        assert_eq!(
            record.user,
            ContainerUser {
                uid: 1000,
                gid: 1000
            }
        );
        assert!(matches!(record.network, NetworkMode::Slirp4netns(_)));
        assert_eq!(record.stop_signal, StopSignal(Signal::SIGTERM));
        assert_eq!(record.rootfs_mode, RootfsKind::FuseOverlayfs);
        assert_eq!(record.mounts[0].kind, MountKind::Tmpfs);
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(written["user"], "1000:1000");
        assert_eq!(written["network"], "slirp4netns");
        assert_eq!(written["rootfs_mode"], "fuse-overlayfs");
        assert_eq!(written["mounts"][0]["kind"], "tmpfs");
        assert_eq!(written["stop_signal"], "SIGTERM");
    }

    #[test]
    fn an_image_stop_signal_rocker_cannot_send_falls_back_to_sigterm() {
        assert_eq!(StopSignal::of_image(Some("SIGQUIT")).0, Signal::SIGQUIT);
        assert_eq!(StopSignal::of_image(Some("")).0, Signal::SIGTERM);
        assert_eq!(StopSignal::of_image(None).0, Signal::SIGTERM);
        assert_eq!(StopSignal::of_image(Some("SIGRTMIN+3")).0, Signal::SIGTERM);
    }
}
