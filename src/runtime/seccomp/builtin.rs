//! rocker's default syscall filter: what docker's default profile allows a
//! container, grouped by what the calls are for. Everything else fails
//! with EPERM: loading kernel modules or BPF programs, keyrings, mounts,
//! new namespaces, tracing other processes, reboots, clock changes,
//! userfaultfd, io_uring, kexec, perf events. Some of those come back with
//! the capability they need (`--cap-add`), as in docker.

use caps::Capability;

use super::bpf::{Action, ArgCheck, Op};
use super::profile::{Conditions, Entry, Profile};

/// Files and directories: open, read and write, metadata, links, xattrs,
/// notification, locks, sync.
#[rustfmt::skip]
const FILES: &[&str] = &[
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2",
    "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
    "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "getxattrat",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listxattr", "listxattrat", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat",
    "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat", "openat2",
    "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "removexattr", "removexattrat", "rename", "renameat",
    "renameat2", "rmdir", "sendfile", "sendfile64", "setxattr", "setxattrat", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink",
    "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice", "write",
    "writev", "ioctl", "statmount", "listmount",
];

/// Waiting for descriptors, and the descriptors made for waiting.
#[rustfmt::skip]
const WAITING: &[&str] = &[
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll",
    "ppoll_time64", "pselect6", "pselect6_time64", "select", "_newselect", "pipe", "pipe2",
    "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit",
];

/// Memory.
#[rustfmt::skip]
const MEMORY: &[&str] = &[
    "brk", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap",
    "mseal", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "remap_file_pages",
];

/// Processes and threads: their lives, ids, limits, scheduling, signals,
/// and the id changes that root emulation may answer instead.
#[rustfmt::skip]
const PROCESSES: &[&str] = &[
    "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "vfork",
    "wait4", "waitid", "waitpid", "futex", "futex_requeue", "futex_time64", "futex_wait",
    "futex_waitv", "futex_wake", "get_robust_list", "set_robust_list", "get_thread_area",
    "set_thread_area", "set_tid_address", "gettid", "getpid", "getppid", "getpgid",
    "getpgrp", "getsid", "setpgid", "setsid", "getcpu", "getpriority", "setpriority",
    "getrlimit", "setrlimit", "ugetrlimit", "prlimit64", "getrusage", "ioprio_get",
    "ioprio_set", "prctl", "rseq", "restart_syscall", "seccomp", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "pidfd_open", "pidfd_send_signal", "process_mrelease", "kill", "tgkill",
    "tkill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "uretprobe", "riscv_hwprobe",
    "cachestat", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32",
    "getuid", "getuid32", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
    "setgid32", "setgroups", "setgroups32", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid",
    "setuid32",
];

/// Time.
#[rustfmt::skip]
const TIME: &[&str] = &[
    "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "getitimer", "setitimer", "gettimeofday", "nanosleep", "time",
    "times", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64",
];

/// Sockets (`socket` itself is checked by family below) and System V and
/// POSIX IPC.
#[rustfmt::skip]
const COMMUNICATION: &[&str] = &[
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send",
    "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
    "ipc", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
];

/// What the system says of itself.
const SYSTEM: &[&str] = &["getrandom", "sysinfo", "uname"];

/// Calls a capability brings back, as in docker: each set of names is
/// allowed when the container holds the capability.
const WITH_CAPABILITY: &[(Capability, &[&str])] = &[
    (Capability::CAP_DAC_READ_SEARCH, &["open_by_handle_at"]),
    (
        Capability::CAP_SYS_ADMIN,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::CAP_SYS_BOOT, &["reboot"]),
    (Capability::CAP_SYS_CHROOT, &["chroot"]),
    (
        Capability::CAP_SYS_MODULE,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::CAP_SYS_PACCT, &["acct"]),
    (
        Capability::CAP_SYS_PTRACE,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (Capability::CAP_SYS_RAWIO, &["iopl", "ioperm"]),
    (
        Capability::CAP_SYS_TIME,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Capability::CAP_SYS_TTY_CONFIG, &["vhangup"]),
    (
        Capability::CAP_SYS_NICE,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::CAP_SYSLOG, &["syslog"]),
    (Capability::CAP_BPF, &["bpf"]),
    (Capability::CAP_PERFMON, &["perf_event_open"]),
];

/// The namespace flags of clone(2): a container without CAP_SYS_ADMIN may
/// clone threads and processes, never new namespaces (a nested user
/// namespace is the kernel's largest attack surface).
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// AF_VSOCK (40, talking to the hypervisor) and AF_ALG (38, the kernel's
/// crypto interface, a history of bugs) are refused; every other family is
/// left to the kernel's own checks.
const REFUSED_SOCKET_FAMILIES: [u64; 2] = [38, 40];

/// personality(2) values that only select ordinary behaviour: Linux,
/// `setarch --addr-no-randomize`'s, the 32-bit emulation's, and the
/// query (0xffffffff).
const PERSONALITIES: [u64; 5] = [0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

fn allow(names: &[&str]) -> Entry {
    Entry {
        names: names.iter().map(|n| n.to_string()).collect(),
        action: Action::Allow,
        args: vec![],
        includes: Conditions::default(),
        excludes: Conditions::default(),
    }
}

fn arg(index: u8, op: Op, value: u64) -> ArgCheck {
    ArgCheck { index, op, value }
}

fn arches(names: &[&str]) -> Conditions {
    Conditions {
        arches: names.iter().map(|n| n.to_string()).collect(),
        ..Conditions::default()
    }
}

fn caps(caps: &[Capability]) -> Conditions {
    Conditions {
        caps: caps.to_vec(),
        ..Conditions::default()
    }
}

/// The built-in profile.
pub fn profile() -> Profile {
    let mut entries: Vec<Entry> = [
        FILES,
        WAITING,
        MEMORY,
        PROCESSES,
        TIME,
        COMMUNICATION,
        SYSTEM,
    ]
    .iter()
    .map(|names| allow(names))
    .collect();
    // Tracing and reading another process's memory: the kernel's own
    // ptrace checks are sound from 4.8 on.
    entries.push(Entry {
        includes: Conditions {
            min_kernel: Some((4, 8)),
            ..Conditions::default()
        },
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    });
    // Families below AF_ALG, between it and AF_VSOCK, and above.
    let [alg, vsock] = REFUSED_SOCKET_FAMILIES;
    for check in [
        arg(0, Op::Lt, alg),
        arg(0, Op::Eq, alg + 1),
        arg(0, Op::Gt, vsock),
    ] {
        entries.push(Entry {
            args: vec![check],
            ..allow(&["socket"])
        });
    }
    for value in PERSONALITIES {
        entries.push(Entry {
            args: vec![arg(0, Op::Eq, value)],
            ..allow(&["personality"])
        });
    }
    entries.push(Entry {
        includes: arches(&["amd64", "x32"]),
        ..allow(&["arch_prctl"])
    });
    entries.push(Entry {
        includes: arches(&["amd64", "x32", "x86"]),
        ..allow(&["modify_ldt"])
    });
    entries.push(Entry {
        includes: arches(&["arm", "arm64"]),
        ..allow(&[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ])
    });
    for (capability, names) in WITH_CAPABILITY {
        entries.push(Entry {
            includes: caps(&[*capability]),
            ..allow(names)
        });
    }
    // Without CAP_SYS_ADMIN: clone without namespace flags, and clone3
    // (whose flags sit in memory a filter cannot read) fails with ENOSYS,
    // so that libc falls back to clone.
    entries.push(Entry {
        args: vec![arg(0, Op::MaskedEq(CLONE_NAMESPACE_FLAGS), 0)],
        excludes: caps(&[Capability::CAP_SYS_ADMIN]),
        ..allow(&["clone"])
    });
    entries.push(Entry {
        action: Action::Errno(libc::ENOSYS as u16),
        excludes: caps(&[Capability::CAP_SYS_ADMIN]),
        ..allow(&["clone3"])
    });
    Profile {
        default: Action::Errno(libc::EPERM as u16),
        entries,
    }
}
