//! The container's file system layout as a list of steps, bubblewrap style:
//! `plan` decides (pure, tested here), `rootfs::enter` carries it out.
//! Paths are absolute inside the container.

use std::fmt;
use std::path::PathBuf;

use nix::mount::MsFlags;

use crate::spec::{ContainerSpec, UserMount};

/// One step of the layout, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// A new instance of a kernel file system.
    Filesystem {
        fstype: &'static str,
        destination: String,
        flags: MsFlags,
        data: String,
    },
    /// A host path bound into the container; the destination is created as a
    /// file or directory like the source.
    Bind {
        source: PathBuf,
        destination: String,
        recursive: bool,
        read_only: bool,
    },
    Symlink {
        target: String,
        link: String,
    },
    /// Hides a path: /dev/null over a file, an empty read-only tmpfs over a
    /// directory. Missing paths are skipped.
    Mask {
        path: String,
    },
    /// Makes an existing path read-only. Missing paths are skipped.
    ReadOnly {
        path: String,
    },
    /// Writes a namespaced sysctl (`--sysctl`), before /proc/sys goes
    /// read-only.
    Sysctl {
        key: String,
        value: String,
    },
    /// Fills a volume never mounted before (its `marker` exists) with the
    /// container's content at `path`, docker's "copy up"; then removes the
    /// marker. Comes just before the volume's bind.
    SeedVolume {
        data: PathBuf,
        marker: PathBuf,
        path: String,
    },
}

impl fmt::Display for MountOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountOp::Filesystem {
                fstype,
                destination,
                ..
            } => write!(f, "mounting {fstype} on {destination}"),
            MountOp::Bind {
                source,
                destination,
                ..
            } => write!(f, "bind-mounting {} on {destination}", source.display()),
            MountOp::Symlink { target, link } => write!(f, "linking {link} to {target}"),
            MountOp::Mask { path } => write!(f, "masking {path}"),
            MountOp::ReadOnly { path } => write!(f, "making {path} read-only"),
            MountOp::Sysctl { key, value } => write!(f, "setting {key} to {value}"),
            MountOp::SeedVolume { data, path, .. } => {
                write!(f, "copying {path} into the volume {}", data.display())
            }
        }
    }
}

/// Paths hidden from the container, as podman hides them: they leak host
/// information or offer kernel interfaces a container has no business with.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/selinux",
];

/// Paths the container may read but not write, as podman has them.
pub const READ_ONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Device nodes bound from the host: an unprivileged user may not mknod.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The per-container files generated outside the rootfs, in a directory
/// of their own (see `mount::confine_generated_files`).
#[derive(Debug, Clone)]
pub struct GeneratedFiles {
    pub dir: PathBuf,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
    /// The files of `dir` and their contents, which the container's side,
    /// a copy of this process, writes from memory (see
    /// `confine_generated_files`).
    pub confined: Vec<(PathBuf, String)>,
}

impl GeneratedFiles {
    /// The files of `dir`.
    pub fn in_dir(dir: PathBuf) -> GeneratedFiles {
        GeneratedFiles {
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: dir.join("resolv.conf"),
            dir,
            confined: vec![],
        }
    }
}

fn filesystem(fstype: &'static str, destination: &str, flags: MsFlags, data: &str) -> MountOp {
    MountOp::Filesystem {
        fstype,
        destination: destination.to_string(),
        flags,
        data: data.to_string(),
    }
}

fn bind(source: impl Into<PathBuf>, destination: &str, recursive: bool, ro: bool) -> MountOp {
    MountOp::Bind {
        source: source.into(),
        destination: destination.to_string(),
        recursive,
        read_only: ro,
    }
}

/// What a kernel file system the container gets may not offer: set-uid
/// programs, device nodes, executables.
const SECURE: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The whole layout of `spec`'s container, in the order it must be applied.
pub fn plan(spec: &ContainerSpec, files: &GeneratedFiles) -> Vec<MountOp> {
    // A proc of the host's pid namespace cannot be mounted from ours (the
    // kernel wants privilege over that namespace): --pid host binds the
    // caller's /proc, sub-mounts and all, masked and read-only paths below
    // applying as usual.
    let mut ops = match spec.host_namespaces.pid {
        true => vec![bind("/proc", "/proc", true, false)],
        false => vec![filesystem("proc", "/proc", SECURE, "")],
    };
    ops.extend(dev(spec.shm_size, spec.host_namespaces.ipc));
    // --device nodes, over the tmpfs /dev like the harmless ones.
    for device in &spec.devices {
        ops.push(bind(
            device.source.clone(),
            &device.destination,
            false,
            false,
        ));
    }
    ops.extend(sys(spec));
    // Parents before children, so /data is mounted before /data/cache.
    let mut user_mounts: Vec<&UserMount> = spec.mounts.iter().collect();
    user_mounts.sort_by_key(|m| m.destination().split('/').filter(|c| !c.is_empty()).count());
    ops.extend(user_mounts.iter().flat_map(|mount| user_mount(mount)));
    // A volume the user put on one of these files wins over ours. Under
    // --read-only they are read-only too.
    for (source, destination) in [
        (&files.hosts, "/etc/hosts"),
        (&files.hostname, "/etc/hostname"),
        (&files.resolv_conf, "/etc/resolv.conf"),
    ] {
        if !user_mounts.iter().any(|m| m.destination() == destination) {
            ops.push(bind(source.clone(), destination, false, spec.read_only));
        }
    }
    ops.extend(spec.sysctls.iter().map(|(key, value)| MountOp::Sysctl {
        key: key.clone(),
        value: value.clone(),
    }));
    // --privileged sees /proc and /sys as the namespace lets it, and so
    // do the paths --security-opt unmask= names.
    let kept =
        |path: &&&str| !spec.privileged && !spec.unmask.iter().any(|u| u == "ALL" || u == **path);
    ops.extend(MASKED_PATHS.iter().filter(kept).map(|p| MountOp::Mask {
        path: p.to_string(),
    }));
    ops.extend(
        READ_ONLY_PATHS
            .iter()
            .filter(kept)
            .map(|p| MountOp::ReadOnly {
                path: p.to_string(),
            }),
    );
    ops
}

/// /dev: a tmpfs with the host's harmless devices bound in (an
/// unprivileged user may not mknod), a devpts of its own, shm, mqueue, and
/// the usual links. With `--ipc host`, the caller's /dev/shm and
/// /dev/mqueue, as docker binds them (a new mqueue needs an IPC namespace
/// of the container's own).
fn dev(shm_size: Option<u64>, host_ipc: bool) -> Vec<MountOp> {
    let mut ops = vec![filesystem(
        "tmpfs",
        "/dev",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        "mode=755,size=65536k",
    )];
    for device in DEVICES {
        ops.push(bind(
            format!("/dev/{device}"),
            &format!("/dev/{device}"),
            false,
            false,
        ));
    }
    // Only the caller's own gid is mapped, so devpts cannot be told gid=5.
    ops.push(filesystem(
        "devpts",
        "/dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    ));
    if host_ipc {
        ops.push(bind("/dev/shm", "/dev/shm", true, false));
        // Hosts without it mounted still have message queues (mq_open
        // needs no file system); the container then has none either.
        if std::path::Path::new("/dev/mqueue").is_dir() {
            ops.push(bind("/dev/mqueue", "/dev/mqueue", false, false));
        }
    } else {
        // docker's 64 MiB unless --shm-size.
        let shm = format!("mode=1777,size={}", shm_size.unwrap_or(64 << 20));
        ops.push(filesystem("tmpfs", "/dev/shm", SECURE, &shm));
        ops.push(filesystem("mqueue", "/dev/mqueue", SECURE, ""));
    }
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        ops.push(MountOp::Symlink {
            target: target.to_string(),
            link: link.to_string(),
        });
    }
    ops
}

/// /sys, read-only, and the container's own cgroup when it has one.
fn sys(spec: &ContainerSpec) -> Vec<MountOp> {
    // sysfs shows the network namespace it is mounted from, and only a
    // namespace we own may mount it; on the host network, bind the host's.
    let read_only = match spec.privileged {
        true => MsFlags::empty(),
        false => MsFlags::MS_RDONLY,
    };
    // sysfs can be mounted only by the owner of the network namespace: not
    // on the host's network, nor on another container's.
    let shared_network = !spec.network.is_own_namespace();
    let mut ops = vec![match shared_network {
        true => bind("/sys", "/sys", true, !spec.privileged),
        _ => filesystem("sysfs", "/sys", SECURE | read_only, ""),
    }];
    // A container with limits has a cgroup of its own, the root of its
    // cgroup namespace: it sees that, read-only, so that runtimes which
    // size themselves from memory.max and cpu.max (the JVM, Go) find them.
    if spec.resources.is_some() {
        ops.push(filesystem(
            "cgroup2",
            "/sys/fs/cgroup",
            SECURE | MsFlags::MS_RDONLY,
            "",
        ));
    } else if shared_network {
        // The host's /sys, bound for a shared network, would show the
        // host's cgroup tree: hide it behind an empty read-only tmpfs.
        ops.push(filesystem(
            "tmpfs",
            "/sys/fs/cgroup",
            SECURE | MsFlags::MS_RDONLY,
            "size=0,mode=0555",
        ));
    }
    ops
}

/// A `-v`, `--mount` or `--tmpfs` mount: its steps.
fn user_mount(mount: &UserMount) -> Vec<MountOp> {
    match mount {
        UserMount::Bind {
            source,
            destination,
            read_only,
        } => vec![bind(source.clone(), destination, true, *read_only)],
        UserMount::Tmpfs {
            destination,
            options,
        } => {
            let mut flags = MsFlags::empty();
            flags.set(MsFlags::MS_RDONLY, options.read_only);
            flags.set(MsFlags::MS_NOEXEC, options.noexec);
            flags.set(MsFlags::MS_NOSUID, options.nosuid);
            flags.set(MsFlags::MS_NODEV, options.nodev);
            vec![filesystem("tmpfs", destination, flags, &options.data)]
        }
        UserMount::Volume {
            source,
            destination,
            read_only,
            copy_up,
            ..
        } => {
            let mut ops = vec![];
            if let Some(marker) = copy_up {
                ops.push(MountOp::SeedVolume {
                    data: source.clone(),
                    marker: marker.clone(),
                    path: destination.clone(),
                });
            }
            ops.push(bind(source.clone(), destination, true, *read_only));
            ops
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ContainerUser, NetworkMode, ProcessSpec, TmpfsOptions};

    fn spec(network: NetworkMode, mounts: Vec<UserMount>) -> ContainerSpec {
        ContainerSpec {
            id: "0".repeat(64),
            rootfs: crate::spec::Rootfs::Directory("/rootfs".into()),
            process: ProcessSpec {
                args: vec!["sh".into()],
                env: vec![],
                cwd: "/".into(),
                user: ContainerUser { uid: 0, gid: 0 },
                terminal: false,
                stdin: false,
                capabilities: Default::default(),
            },
            hostname: "box".into(),
            mounts,
            read_only: false,
            network,
            ports: vec![],
            privileged: false,
            init: false,
            resources: None,
            names: Default::default(),
            shm_size: None,
            ulimits: vec![],
            devices: vec![],
            sysctls: vec![],
            host_namespaces: Default::default(),
            unmask: vec![],
        }
    }

    fn files() -> GeneratedFiles {
        GeneratedFiles::in_dir("/run/c".into())
    }

    fn position(ops: &[MountOp], text: &str) -> usize {
        ops.iter()
            .position(|op| op.to_string() == text)
            .unwrap_or_else(|| panic!("no step {text:?} in {ops:#?}"))
    }

    #[test]
    fn proc_and_dev_come_first_masks_last() {
        let ops = plan(&spec(NetworkMode::None, vec![]), &files());
        assert_eq!(ops[0].to_string(), "mounting proc on /proc");
        assert!(
            position(&ops, "mounting tmpfs on /dev")
                < position(&ops, "mounting devpts on /dev/pts")
        );
        assert!(position(&ops, "bind-mounting /dev/null on /dev/null") > 1);
        assert!(matches!(ops.last(), Some(MountOp::ReadOnly { .. })));
        assert!(position(&ops, "masking /proc/kcore") > position(&ops, "mounting proc on /proc"));
        position(&ops, "making /proc/sys read-only");
        position(&ops, "bind-mounting /run/c/resolv.conf on /etc/resolv.conf");
    }

    #[test]
    fn unmask_leaves_the_paths_it_names_or_all() {
        let mut some = spec(NetworkMode::None, vec![]);
        some.unmask = vec!["/proc/kcore".into(), "/proc/sys".into()];
        let ops = plan(&some, &files());
        assert!(!ops.iter().any(|op| op.to_string() == "masking /proc/kcore"));
        assert!(!ops
            .iter()
            .any(|op| op.to_string() == "making /proc/sys read-only"));
        position(&ops, "masking /proc/keys");
        some.unmask = vec!["ALL".into()];
        let ops = plan(&some, &files());
        assert!(!ops
            .iter()
            .any(|op| matches!(op, MountOp::Mask { .. } | MountOp::ReadOnly { .. })));
    }

    #[test]
    fn the_host_pid_namespace_brings_the_hosts_proc_still_masked() {
        let mut shared = spec(NetworkMode::None, vec![]);
        shared.host_namespaces.pid = true;
        let ops = plan(&shared, &files());
        assert_eq!(ops[0].to_string(), "bind-mounting /proc on /proc");
        assert!(position(&ops, "masking /proc/kcore") > 0);
        position(&ops, "making /proc/sys read-only");
    }

    #[test]
    fn the_host_ipc_namespace_brings_the_hosts_shm_and_mqueue() {
        let mut shared = spec(NetworkMode::None, vec![]);
        shared.host_namespaces.ipc = true;
        let ops = plan(&shared, &files());
        position(&ops, "bind-mounting /dev/shm on /dev/shm");
        if std::path::Path::new("/dev/mqueue").is_dir() {
            position(&ops, "bind-mounting /dev/mqueue on /dev/mqueue");
        }
        assert!(!ops
            .iter()
            .any(|op| op.to_string() == "mounting mqueue on /dev/mqueue"));
    }

    #[test]
    fn sysfs_depends_on_the_network_namespace() {
        let own = plan(&spec(NetworkMode::None, vec![]), &files());
        assert!(own.iter().any(|op| matches!(op, MountOp::Filesystem { fstype: "sysfs", flags, .. } if flags.contains(MsFlags::MS_RDONLY))));
        let host = plan(&spec(NetworkMode::Host, vec![]), &files());
        assert!(host.contains(&bind("/sys", "/sys", true, true)));
    }

    #[test]
    fn only_a_container_with_limits_sees_its_cgroup() {
        let is_cgroup = |op: &MountOp| matches!(op, MountOp::Filesystem { fstype: "cgroup2", flags, .. } if flags.contains(MsFlags::MS_RDONLY));
        let plain = spec(NetworkMode::None, vec![]);
        assert!(!plan(&plain, &files()).iter().any(is_cgroup));
        let mut limited = plain;
        limited.resources = Some(crate::cgroups::Resources {
            limits: crate::cgroups::limits::Limits {
                pids: Some(10),
                ..Default::default()
            },
            delegated: "/sys/fs/cgroup/user.slice/x.scope".into(),
        });
        assert!(plan(&limited, &files()).iter().any(is_cgroup));
    }

    #[test]
    fn user_mounts_parents_first_and_override_generated_files() {
        let tmpfs = |d: &str| UserMount::Tmpfs {
            destination: d.into(),
            options: TmpfsOptions {
                read_only: false,
                noexec: true,
                nosuid: true,
                nodev: true,
                data: "mode=1777".into(),
            },
        };
        let mounts = vec![
            tmpfs("/data/cache"),
            tmpfs("/data"),
            UserMount::Bind {
                source: "/home/me/hosts".into(),
                destination: "/etc/hosts".into(),
                read_only: true,
            },
        ];
        let ops = plan(&spec(NetworkMode::None, mounts), &files());
        assert!(
            position(&ops, "mounting tmpfs on /data")
                < position(&ops, "mounting tmpfs on /data/cache")
        );
        position(&ops, "bind-mounting /home/me/hosts on /etc/hosts");
        assert!(!ops.iter().any(|op| op.to_string().contains("/run/c/hosts")));
    }

    #[test]
    fn a_new_volume_is_filled_just_before_it_is_bound() {
        let volume = |copy_up: Option<&str>| UserMount::Volume {
            name: "db".into(),
            source: "/store/volumes/db/_data".into(),
            destination: "/var/lib/db".into(),
            read_only: false,
            copy_up: copy_up.map(PathBuf::from),
            anonymous: false,
        };
        let ops = plan(
            &spec(
                NetworkMode::None,
                vec![volume(Some("/store/volumes/db/copy-up"))],
            ),
            &files(),
        );
        let seed = position(
            &ops,
            "copying /var/lib/db into the volume /store/volumes/db/_data",
        );
        let bound = position(&ops, "bind-mounting /store/volumes/db/_data on /var/lib/db");
        assert_eq!(seed + 1, bound);
        let ops = plan(&spec(NetworkMode::None, vec![volume(None)]), &files());
        assert!(!ops
            .iter()
            .any(|op| matches!(op, MountOp::SeedVolume { .. })));
    }
}
