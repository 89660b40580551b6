//! What a container is, once every option has been parsed and checked.
//!
//! `rocker run --rootfs DIR` fills this from the command line; running an
//! image fills the same struct from the image config plus the command line,
//! so everything downstream (mount plan, child, monitor) stays the same.
//! Its value types (`Environment`, `UserSpec`) live here too: every layer
//! may use this module, and it uses none above it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use caps::CapsHashSet;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

pub use crate::cgroups::Resources;
pub use crate::network::ports::PortMapping;
pub use crate::network::NetworkMode;

/// Everything the runtime needs to start one container. It is kept with a
/// container that may start again (`create`, a `run` without `--rm`),
/// except for what depends on the session that starts it: the delegated
/// cgroup of its limits and the mount point in the runtime dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// 64 lowercase hex digits.
    pub id: String,
    /// What becomes the container's `/`.
    pub rootfs: Rootfs,
    pub process: ProcessSpec,
    pub hostname: String,
    /// Volumes and tmpfs mounts the user asked for, in command-line order.
    pub mounts: Vec<UserMount>,
    /// Mount the root file system read-only (`--read-only`).
    pub read_only: bool,
    pub network: NetworkMode,
    /// Ports published on the host (slirp4netns only).
    pub ports: Vec<PortMapping>,
    /// Run a small reaper as PID 1 (`--init`).
    pub init: bool,
    /// Resource limits, for which the container gets cgroups of its own in
    /// a delegated one; None without limits.
    #[serde(skip)]
    pub resources: Option<Resources>,
    /// `--privileged`: no masked or read-only paths, a writable /sys (as
    /// far as the namespace allows).
    pub privileged: bool,
    /// `--add-host`, `--dns`, `--dns-search`, `--dns-option`: what goes
    /// into its /etc/hosts and /etc/resolv.conf besides the usual.
    #[serde(default)]
    pub names: NameSettings,
    /// `--shm-size`, in bytes (64 MiB by default, as docker).
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// `--ulimit`s, set on its PID 1 before the command runs.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--device`s: host device nodes bound into its /dev.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// `--sysctl`s: (key, value) of its own namespaces' settings.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// `--ipc host`, `--uts host`: namespaces it shares with the caller.
    #[serde(default)]
    pub host_namespaces: HostNamespaces,
    /// Masked and read-only paths left as they are (`--security-opt
    /// unmask=`, `systempaths=unconfined`); `ALL` for every one.
    #[serde(default)]
    pub unmask: Vec<String>,
}

/// Namespaces a container shares with the caller instead of having its
/// own: `--pid host` (the caller's processes, and /proc), `--ipc host`
/// (System V IPC, POSIX message queues, the caller's /dev/shm) and `--uts
/// host` (the hostname).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostNamespaces {
    #[serde(default)]
    pub pid: bool,
    #[serde(default)]
    pub ipc: bool,
    #[serde(default)]
    pub uts: bool,
}

impl HostNamespaces {
    pub fn is_default(&self) -> bool {
        *self == HostNamespaces::default()
    }
}

/// Whether `key` is a sysctl of a namespace the container has of its own
/// (docker's list): the IPC namespace's, and the network namespace's when
/// it has one. Others are the host's, and refused.
pub fn is_namespaced_sysctl(key: &str, own_network: bool, own_ipc: bool) -> bool {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let ipc = IPC.contains(&key) || key.starts_with("fs.mqueue.");
    (own_ipc && ipc) || (own_network && key.starts_with("net."))
}

/// One `--device HOST[:CONTAINER[:PERMISSIONS]]`. The permissions are
/// docker's devices-cgroup rules, which no rootless container has: what
/// the container may do with the node is what the caller may.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    pub source: PathBuf,
    pub destination: String,
}

/// Name resolution settings a run adds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NameSettings {
    /// (name, address) pairs for /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    /// Nameservers instead of the usual ones.
    pub dns: Vec<String>,
    /// Search domains instead of the host's.
    pub dns_search: Vec<String>,
    /// Resolver options instead of the host's.
    pub dns_options: Vec<String>,
}

/// One `--ulimit NAME=SOFT[:HARD]` (None: unlimited).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ulimit {
    /// docker's name for the resource (see `ULIMIT_NAMES`).
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// The resources `--ulimit` knows, by docker's names.
pub const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
];

impl Ulimit {
    pub fn parse(text: &str) -> Result<Ulimit> {
        let (name, limits) = text.split_once('=').with_context(|| {
            format!("--ulimit {text}: give NAME=SOFT[:HARD], e.g. nofile=1024:4096")
        })?;
        if !ULIMIT_NAMES.contains(&name) {
            bail!(
                "--ulimit {text}: no resource {name:?}; rocker knows {}",
                ULIMIT_NAMES.join(", ")
            );
        }
        let value = |v: &str| -> Result<Option<u64>> {
            match v {
                "-1" | "unlimited" => Ok(None),
                v => v
                    .parse()
                    .map(Some)
                    .with_context(|| format!("--ulimit {text}: {v:?} is not a number")),
            }
        };
        let (soft, hard) = match limits.split_once(':') {
            Some((soft, hard)) => (value(soft)?, value(hard)?),
            None => (value(limits)?, value(limits)?),
        };
        let above = match (soft, hard) {
            (None, Some(_)) => true,
            (Some(soft), Some(hard)) => soft > hard,
            _ => false,
        };
        if above {
            bail!("--ulimit {text}: the soft limit is above the hard one");
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }
}

/// Where the container's root file system comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rootfs {
    /// A host directory, bind-mounted as it is (`--rootfs`, or a copied
    /// image).
    Directory(PathBuf),
    /// Image layers under kernel overlayfs, mounted by the container's own
    /// process inside its user namespace. `dir` is the container's store
    /// dir (see `layered`), holding `layers` lower links; `mount_point` is
    /// in the container's live dir (see `state`).
    KernelOverlay {
        dir: PathBuf,
        layers: usize,
        mount_point: PathBuf,
        /// Mounted `volatile`: for a `--rm` container, whose writes no one
        /// keeps (see `container_dir::overlay_options`).
        #[serde(default)]
        volatile: bool,
    },
    /// Image layers under fuse-overlayfs, which the monitor starts inside
    /// the container's namespaces before the container goes on.
    FuseOverlay {
        dir: PathBuf,
        lowers: Vec<PathBuf>,
        mount_point: PathBuf,
    },
}

impl Rootfs {
    /// The host path of the tree that becomes `/` once mounted.
    pub fn path(&self) -> &Path {
        match self {
            Rootfs::Directory(dir) => dir,
            Rootfs::KernelOverlay { mount_point, .. } | Rootfs::FuseOverlay { mount_point, .. } => {
                mount_point
            }
        }
    }

    /// The directory an overlay is mounted on, which the monitor creates.
    pub fn mount_point(&self) -> Option<&Path> {
        match self {
            Rootfs::Directory(_) => None,
            _ => Some(self.path()),
        }
    }
}

/// The process started inside the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// The program and its arguments; never empty.
    pub args: Vec<String>,
    /// The final environment, in order, without duplicate names.
    pub env: Vec<(String, String)>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    /// The ids the caller becomes inside the container.
    pub user: ContainerUser,
    /// Give the process a pseudo-terminal (`-t`).
    pub terminal: bool,
    /// Pass the caller's stdin through (`-i`); otherwise stdin is /dev/null.
    pub stdin: bool,
    /// The capabilities it keeps (inside the container's user namespace).
    pub capabilities: CapsHashSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUser {
    pub uid: u32,
    pub gid: u32,
}

/// `UID:GID`, as records keep it.
impl std::fmt::Display for ContainerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

impl std::str::FromStr for ContainerUser {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<ContainerUser> {
        let parsed = text
            .split_once(':')
            .and_then(|(uid, gid)| Some((uid.parse().ok()?, gid.parse().ok()?)));
        match parsed {
            Some((uid, gid)) => Ok(ContainerUser { uid, gid }),
            None => bail!("{text:?} is no UID:GID"),
        }
    }
}

/// Which syscall filter a container gets (`--security-opt seccomp=...`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompPolicy {
    /// rocker's own, docker's default profile in effect.
    #[default]
    Builtin,
    /// No filter (`unconfined`, and `--privileged`).
    Unconfined,
    /// A profile in docker's JSON format.
    Profile(PathBuf),
}

impl SeccompPolicy {
    /// `unconfined`, or a profile's path.
    pub fn parse(value: &str) -> SeccompPolicy {
        match value {
            "unconfined" => SeccompPolicy::Unconfined,
            "builtin" | "default" => SeccompPolicy::Builtin,
            path => SeccompPolicy::Profile(PathBuf::from(path)),
        }
    }

    /// How `rocker info` and `inspect` name it.
    pub fn describe(&self) -> String {
        match self {
            SeccompPolicy::Builtin => "builtin (docker's default profile)".to_string(),
            SeccompPolicy::Unconfined => "unconfined".to_string(),
            SeccompPolicy::Profile(path) => path.display().to_string(),
        }
    }
}

/// When a container's monitor starts it again after it exits
/// (`--restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    /// After a non-zero exit, at most this many times (None: no limit).
    OnFailure(Option<u32>),
    Always,
    /// As `always`: without a daemon, nothing tells the two apart.
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether a container that exited with `code`, restarted `count`
    /// times so far, goes again.
    pub fn restarts(self, code: i32, count: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure(limit) => code != 0 && limit.is_none_or(|n| count < n),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure(None) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<RestartPolicy> {
        Ok(match text.split_once(':') {
            None if text == "no" => RestartPolicy::No,
            None if text == "on-failure" => RestartPolicy::OnFailure(None),
            None if text == "always" => RestartPolicy::Always,
            None if text == "unless-stopped" => RestartPolicy::UnlessStopped,
            Some(("on-failure", n)) => {
                RestartPolicy::OnFailure(Some(n.parse().with_context(|| {
                    format!("--restart {text}: the count after on-failure: must be a number")
                })?))
            }
            _ => bail!(
                "unknown restart policy {text:?}: use no, on-failure[:N], always or unless-stopped"
            ),
        })
    }
}

/// A signal as docker takes one: a name with or without `SIG` (any case),
/// or a number.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let upper = text.trim().to_ascii_uppercase();
    let signal = match upper.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => {
            let name = match upper.starts_with("SIG") {
                true => upper.clone(),
                false => format!("SIG{upper}"),
            };
            name.parse::<Signal>().ok()
        }
    };
    signal.with_context(|| {
        format!("unknown signal {text:?}: use a name such as TERM or KILL, or a number")
    })
}

/// A mount the user asked for with `-v`, `--mount` or `--tmpfs`, or one
/// of the image's VOLUMEs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserMount {
    Bind {
        source: PathBuf,
        destination: String,
        read_only: bool,
    },
    Tmpfs {
        destination: String,
        options: TmpfsOptions,
    },
    /// A volume of the store, found or made before the container starts.
    Volume {
        name: String,
        /// The volume's data dir.
        source: PathBuf,
        destination: String,
        read_only: bool,
        /// The marker of a volume never mounted yet: while it exists, the
        /// container's content at `destination` is copied in first.
        /// None with `nocopy`.
        copy_up: Option<PathBuf>,
        /// Made for this container (`-v /path`, the image's VOLUME): it
        /// goes with the container on `rm -v` and `--rm`.
        #[serde(default)]
        anonymous: bool,
    },
}

impl UserMount {
    pub fn destination(&self) -> &str {
        match self {
            UserMount::Bind { destination, .. }
            | UserMount::Tmpfs { destination, .. }
            | UserMount::Volume { destination, .. } => destination,
        }
    }
}

/// A volume a mount flag names (or, without a name, an anonymous one), to
/// be found or made in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRequest {
    pub name: Option<String>,
    pub destination: String,
    pub read_only: bool,
    /// `nocopy`: the image's content at the destination is not copied in.
    pub no_copy: bool,
    /// `--mount volume-label=`: labels for a volume made now.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One mount flag, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountRequest {
    Mount(UserMount),
    Volume(VolumeRequest),
}

impl MountRequest {
    pub fn destination(&self) -> &str {
        match self {
            MountRequest::Mount(mount) => mount.destination(),
            MountRequest::Volume(request) => &request.destination,
        }
    }
}

/// `--tmpfs` options: mount flags plus the data string handed to tmpfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsOptions {
    pub read_only: bool,
    pub noexec: bool,
    pub nosuid: bool,
    pub nodev: bool,
    /// `size=..,mode=..` and the like, passed to the kernel as they are.
    pub data: String,
}

/// An ordered environment in which a later `set` of a name replaces the
/// earlier value in place (docker's rule: the command line wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment(Vec<(String, String)>);

impl Environment {
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

/// The `-u` value: `USER[:GROUP]`, each a number or a name to look up in the
/// container's /etc/passwd and /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: String,
    pub group: Option<String>,
}

impl UserSpec {
    /// Parses `USER[:GROUP]`.
    pub fn parse(spec: &str) -> Result<UserSpec> {
        let (user, group) = match spec.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (spec, None),
        };
        let valid = |s: &str| !s.is_empty() && !s.contains([':', '\0', '/', '\n']);
        if !valid(user) || group.is_some_and(|g| !valid(g)) {
            bail!("invalid user {spec:?}: expected -u USER[:GROUP] (names or numeric ids)");
        }
        Ok(UserSpec {
            user: user.to_string(),
            group: group.map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_read_and_decide_as_docker_does() {
        for text in [
            "no",
            "on-failure",
            "on-failure:3",
            "always",
            "unless-stopped",
        ] {
            assert_eq!(text.parse::<RestartPolicy>().unwrap().to_string(), text);
        }
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        let twice = RestartPolicy::OnFailure(Some(2));
        assert!(twice.restarts(1, 0) && twice.restarts(1, 1) && !twice.restarts(1, 2));
        assert!(!twice.restarts(0, 0), "success is no failure");
        assert!(RestartPolicy::Always.restarts(0, 100));
        assert!(!RestartPolicy::No.restarts(1, 0));
    }

    #[test]
    fn users_read_back_as_written() {
        let user = ContainerUser { uid: 1000, gid: 33 };
        assert_eq!(user.to_string(), "1000:33");
        assert_eq!("1000:33".parse::<ContainerUser>().unwrap(), user);
        for bad in ["", "1000", "a:b", "1:2:3"] {
            assert!(bad.parse::<ContainerUser>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signals_by_name_or_number() {
        for (text, want) in [
            ("TERM", Signal::SIGTERM),
            ("sigkill", Signal::SIGKILL),
            ("SIGQUIT", Signal::SIGQUIT),
            ("9", Signal::SIGKILL),
        ] {
            assert_eq!(parse_signal(text).unwrap(), want, "{text}");
        }
        for bad in ["", "NOPE", "999", "SIGRTMIN+3"] {
            assert!(parse_signal(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn later_env_wins_in_place() {
        let mut env = Environment::default();
        env.set("PATH", "/bin");
        env.set("A", "1");
        env.set("PATH", "/usr/bin");
        assert_eq!(
            env.into_vec(),
            vec![("PATH".into(), "/usr/bin".into()), ("A".into(), "1".into())]
        );
    }

    #[test]
    fn users() {
        assert_eq!(
            UserSpec::parse("1000").unwrap(),
            UserSpec {
                user: "1000".into(),
                group: None
            }
        );
        assert_eq!(
            UserSpec::parse("app:staff").unwrap(),
            UserSpec {
                user: "app".into(),
                group: Some("staff".into())
            }
        );
        for bad in ["", ":1", "1:", "a:b:c", "../x"] {
            assert!(UserSpec::parse(bad).is_err(), "{bad:?}");
        }
    }
}

/// Where a detached container's output is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// docker's json-file: one JSON object a line, read by `logs`.
    #[default]
    JsonFile,
    /// Nowhere (attach clients still see it).
    None,
}

impl LogDriver {
    pub fn is_default(&self) -> bool {
        *self == LogDriver::JsonFile
    }
}
