//! The raw system calls rocker needs that `nix` does not wrap safely.
//!
//! This is the only module allowed to use `unsafe`; every block says why it
//! is sound. Everything else in the crate goes through these functions.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::Pid;

/// Where a fork-like call returns.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Forking is only sound while the process has one thread: a second thread
/// could hold the allocator lock and leave the child deadlocked; and the
/// kernel lets only a single-threaded process join a user namespace.
/// Threads that were joined a moment ago (a pull's workers, a large
/// store's readers) can still be listed while the kernel finishes their
/// exit, so wait a little for them.
pub fn ensure_single_threaded() -> nix::Result<()> {
    for _ in 0..1000 {
        match thread_count() {
            Some(threads) if threads > 1 => std::thread::sleep(std::time::Duration::from_millis(1)),
            // One thread, or /proc unreadable: nothing known in the way.
            _ => return Ok(()),
        }
    }
    Err(Errno::EBUSY)
}

/// The threads /proc lists for this process, None if it cannot be read.
fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|tasks| tasks.count())
}

/// For a spawned helper, between fork and exec: be killed when the parent
/// (the monitor) dies. Async-signal-safe: one prctl.
fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `command`, between its fork and exec, join the user namespace and
/// then the mount namespace these descriptors name (`/proc/PID/ns/...`),
/// take a copy of the latter for itself, keep its capabilities in that user
/// namespace across exec, and ask to be killed when its parent dies.
///
/// Joining gives every capability in the namespace, but exec drops them
/// unless the process is uid 0 there; a container started as another user
/// has no uid 0 mapped, so they are kept as ambient capabilities instead.
pub fn join_namespaces_on_spawn(
    command: &mut std::process::Command,
    user: std::os::fd::OwnedFd,
    mount: std::os::fd::OwnedFd,
) {
    use std::os::unix::process::CommandExt;
    // Read now: the hook must not allocate.
    let last_cap = last_capability();
    let hook = move || -> std::io::Result<()> {
        for (fd, kind) in [
            (user.as_raw_fd(), libc::CLONE_NEWUSER),
            (mount.as_raw_fd(), libc::CLONE_NEWNS),
        ] {
            // SAFETY: setns only reads its two integer arguments.
            if unsafe { libc::setns(fd, kind) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // A mount namespace of its own, copied from the joined one: the
        // container's pivot_root must not move this process's root.
        // SAFETY: unshare only reads its integer argument.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        keep_capabilities_across_exec(last_cap)?;
        die_with_parent()
    };
    // SAFETY: the hook runs in the forked child before exec and makes only
    // async-signal-safe system calls (setns, unshare, capget, capset,
    // prctl); it allocates nothing.
    unsafe {
        command.pre_exec(hook);
    }
}

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(40)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Makes every permitted capability inheritable and ambient, so that the
/// next program keeps them. Async-signal-safe: system calls on the stack.
fn keep_capabilities_across_exec(last_cap: u32) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData (version 3) into the array, which
    // is that long, and reads the header, which lives on this stack.
    if unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    for set in &mut data {
        set.inheritable = set.permitted;
    }
    // SAFETY: as above; capset only reads the header and the two sets.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for cap in 0..=last_cap {
        let (word, bit) = ((cap / 32) as usize, cap % 32);
        if word < data.len() && data[word].permitted & (1 << bit) != 0 {
            // SAFETY: prctl with PR_CAP_AMBIENT takes integers only.
            let raised = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    cap as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if raised != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Makes `command`'s child inherit `fds` at the same numbers (they are
/// close-on-exec here, so no other child gets them), join the user
/// namespace `user_namespace` names when one is given (every capability
/// there, kept across exec only where the child is uid 0), and ask to be
/// killed when its parent dies. The descriptors must stay open until the
/// spawn.
pub fn inherit_fds_on_spawn(
    command: &mut std::process::Command,
    fds: Vec<RawFd>,
    user_namespace: Option<RawFd>,
) {
    use std::os::unix::process::CommandExt;
    let hook = move || -> std::io::Result<()> {
        for fd in &fds {
            // SAFETY: F_SETFD on a descriptor number only changes its flags.
            if unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) } == -1 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if let Some(fd) = user_namespace {
            // SAFETY: setns only reads its two integer arguments.
            if unsafe { libc::setns(fd, libc::CLONE_NEWUSER) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        die_with_parent()
    };
    // SAFETY: the hook runs in the forked child before exec and makes only
    // async-signal-safe system calls (fcntl, setns, prctl); it allocates
    // nothing.
    unsafe {
        command.pre_exec(hook);
    }
}

/// clone3's arguments (`struct clone_args`, version 2: with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone3(2)` with fork semantics: the child gets a copy of the address
/// space and returns here too, already inside the namespaces named by
/// `flags` and, when given, in the cgroup `cgroup` (a directory fd), so
/// that it never runs outside its limits and its new cgroup namespace is
/// rooted there. Unlike `unshare`, this puts the child itself (not only its
/// children) in the new pid namespace, as its PID 1.
pub fn clone_into_namespaces(
    flags: CloneFlags,
    cgroup: Option<BorrowedFd<'_>>,
) -> nix::Result<Forked> {
    ensure_single_threaded()?;
    let mut args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(cgroup) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cgroup.as_raw_fd() as u64;
    }
    // SAFETY: a zero stack makes clone3 behave like fork: the child runs on
    // a copy of this stack. The kernel only reads `args`, which outlives the
    // call. The process has a single thread (checked above), so no lock can
    // be held by a thread that does not exist in the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(ret) {
        Ok(0) => Ok(Forked::Child),
        Ok(pid) => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
        // Docker's and podman's default seccomp profiles answer clone3 with
        // ENOSYS (so that glibc falls back): inside such a container, do
        // the same, and put the child in its cgroup by hand.
        Err(Errno::ENOSYS) => {
            let forked = clone_legacy(flags)?;
            if let (Forked::Parent(pid), Some(cgroup)) = (&forked, cgroup) {
                join_cgroup(cgroup, *pid)?;
            }
            Ok(forked)
        }
        Err(err) => Err(err),
    }
}

/// `clone(2)` with fork semantics, where clone3 is refused. The child
/// runs before it is in its cgroup, but it waits for its id maps first,
/// which the parent writes after `join_cgroup`.
fn clone_legacy(flags: CloneFlags) -> nix::Result<Forked> {
    // SAFETY: a null stack makes clone behave like fork: the child runs on
    // a copy of this stack, and no pointer is passed for the tids or TLS.
    // The caller checked that the process has a single thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Moves `pid` into the cgroup whose directory is `cgroup`.
fn join_cgroup(cgroup: BorrowedFd<'_>, pid: Pid) -> nix::Result<()> {
    let procs = nix::fcntl::openat(
        cgroup,
        "cgroup.procs",
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::unistd::write(&procs, pid.to_string().as_bytes()).map(|_| ())
}

/// Plain `fork(2)`, for the `--init` reaper and for host probes.
pub fn fork() -> nix::Result<Forked> {
    ensure_single_threaded()?;
    fork_single_threaded()
}

/// `fork(2)` if the process has one thread now, without waiting for
/// others to end (None then): for work the caller can as well do itself,
/// while a thread may block for long (one reading the caller's stdin).
pub fn fork_if_single_threaded() -> nix::Result<Option<Forked>> {
    match thread_count() {
        Some(1) => fork_single_threaded().map(Some),
        _ => Ok(None),
    }
}

/// The fork itself, once the caller has found no other thread.
fn fork_single_threaded() -> nix::Result<Forked> {
    // SAFETY: the process has a single thread (both callers check), so the
    // child cannot inherit a lock held by another thread.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Marks every descriptor from `first` up close-on-exec, so that only what
/// the caller dup'ed below it reaches the next program (CVE-2024-21626).
pub fn cloexec_from(first: RawFd) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    close_range(first, CLOSE_RANGE_CLOEXEC)
}

/// Closes every descriptor from `first` up but those in `keep`: for a
/// forked child that runs on after its parent and must not keep the
/// parent's pipes and sockets open (their readers would wait for it). The
/// child must not drop the objects that owned them afterwards.
pub fn close_from_but(first: RawFd, keep: &[RawFd]) -> nix::Result<()> {
    gaps_between(first, keep)
        .into_iter()
        .try_for_each(|(from, to)| close_range_between(from, to, 0))
}

/// The ranges (inclusive; the last one ends at RawFd::MAX) from `first` up
/// that hold none of `keep`.
fn gaps_between(first: RawFd, keep: &[RawFd]) -> Vec<(RawFd, RawFd)> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    let mut gaps = vec![];
    let mut next = first;
    for fd in keep {
        if fd > next {
            gaps.push((next, fd - 1));
        }
        next = next.max(fd + 1);
    }
    gaps.push((next, RawFd::MAX));
    gaps
}

/// `close_range(first, ~0, flags)`.
fn close_range(first: RawFd, flags: libc::c_uint) -> nix::Result<()> {
    close_range_between(first, RawFd::MAX, flags)
}

/// `close_range(first, last, flags)`.
fn close_range_between(first: RawFd, last: RawFd, flags: libc::c_uint) -> nix::Result<()> {
    // SAFETY: close_range takes no pointers; it only closes descriptors or
    // changes their flags, and the callers own those they name.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            // No descriptor is above RawFd::MAX: as the bound, it is ~0.
            last as libc::c_uint,
            flags,
        )
    };
    Errno::result(ret).map(drop)
}

/// `struct mount_attr` from linux/mount.h.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the mount that `fd` is the root of read-only (and every mount below
/// it when `recursive`), leaving its other flags alone. Those flags may be
/// locked in a user namespace, so a plain MS_REMOUNT that drops them fails.
pub fn mount_setattr_readonly(fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: the path is a valid NUL-terminated empty string and `attr` is a
    // correctly laid out struct whose size is passed alongside it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Brings the loopback interface of the current network namespace up.
pub fn set_loopback_up() -> nix::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we own, which names "lo".
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: the flags member is the one SIOCGIFFLAGS just filled in.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
}

/// A terminal's window size.
pub type WindowSize = libc::winsize;

pub fn window_size(tty: BorrowedFd<'_>) -> nix::Result<WindowSize> {
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut size: WindowSize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut size) })?;
    Ok(size)
}

pub fn set_window_size(tty: BorrowedFd<'_>, size: &WindowSize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from the struct we own.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, size) }).map(drop)
}

/// Makes `tty` the controlling terminal of this (new) session.
pub fn set_controlling_terminal(tty: impl AsFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory.
    Errno::result(unsafe { libc::ioctl(tty.as_fd().as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// Restores the default disposition of `signal`. Rust's runtime ignores
/// SIGPIPE, and an ignored signal stays ignored across exec: the container's
/// programs must get the default back.
pub fn reset_signal_to_default(signal: Signal) -> nix::Result<()> {
    // SAFETY: SIG_DFL installs no handler code, so nothing can run in signal
    // context.
    unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) }.map(drop)
}

/// Takes ownership of a descriptor that just arrived in an SCM_RIGHTS message.
pub fn adopt_received_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel installed this descriptor in our table for this
    // message alone; nothing else refers to it, so we are its only owner.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Ends a forked child at once, without running exit handlers or flushing
/// stdio buffers that belong to the parent's copy of the process.
pub fn exit_now(status: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(status) }
}

/// Sets an extended attribute on an open file.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> nix::Result<()> {
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: name is NUL-terminated, value's pointer and length describe a
    // live slice, and fd is a descriptor we borrow for the call.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// The signals pending for this thread or process (blocked ones that
/// arrived): how setup, with its signals blocked, learns of a Ctrl-C.
pub fn pending_signals() -> nix::Result<nix::sys::signal::SigSet> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the sigset_t we own; it is read only after
    // the call succeeded.
    let ret = unsafe { libc::sigpending(set.as_mut_ptr()) };
    Errno::result(ret)?;
    // SAFETY: the set was initialized by the successful sigpending above,
    // and a set the kernel filled is a valid sigset_t.
    Ok(unsafe { nix::sys::signal::SigSet::from_sigset_t_unchecked(set.assume_init()) })
}

/// Reads an extended attribute of an open file.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &str) -> nix::Result<Vec<u8>> {
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    let mut buffer = vec![0u8; 4096];
    // SAFETY: name is NUL-terminated, the buffer pointer and length
    // describe memory we own, and fd is a descriptor we borrow.
    let ret = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    let len = Errno::result(ret)?;
    buffer.truncate(len as usize);
    Ok(buffer)
}

/// Reads an extended attribute of a path, not following a final symlink.
pub fn lgetxattr(path: &std::path::Path, name: &str) -> nix::Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    let mut buffer = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and the buffer pointer and
    // length describe memory we own.
    let ret = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    let len = Errno::result(ret)?;
    buffer.truncate(len as usize);
    Ok(buffer)
}

/// A pidfd for `pid`: signals sent through it reach that process or none,
/// even if the pid is reused after it exits.
pub fn pidfd_open(pid: Pid) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no pointers are involved.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just installed this descriptor for us alone.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` to the process a pidfd refers to.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> nix::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills in a kill()-like
    // one); the descriptor is borrowed, so it stays open for the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(result).map(drop)
}

/// Installs a seccomp filter on the calling thread (and what it execs):
/// `program` is a classic BPF program, one `(code, jt, jf, k)` a step.
/// no_new_privs must already be set (the kernel refuses otherwise).
pub fn install_seccomp_filter(program: &[(u16, u8, u8, u32)]) -> nix::Result<()> {
    let filters: Vec<libc::sock_filter> = program
        .iter()
        .map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
        .collect();
    let len = u16::try_from(filters.len()).map_err(|_| Errno::E2BIG)?;
    let fprog = libc::sock_fprog {
        len,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `len` initialized sock_filter structs that
    // outlive the call; the kernel copies the program before returning.
    let result = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    Errno::result(result).map(drop)
}

/// Makes the calling process join a new, anonymous session keyring, so it
/// no longer holds the caller's (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)).
pub fn join_new_session_keyring() -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with KEYCTL_JOIN_SESSION_KEYRING reads a name pointer,
    // which NULL means "anonymous"; nothing else is passed or written.
    let result = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    Errno::result(result).map(drop)
}

nix::ioctl_none!(ns_get_parent, 0xb7, 0x2);

/// The parent of the user namespace `ns` names (the NS_GET_PARENT ioctl of
/// linux/nsfs.h), as a new descriptor.
pub fn user_namespace_parent(ns: BorrowedFd<'_>) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: NS_GET_PARENT takes no argument and only reads the
    // descriptor, which `ns` keeps open for the call.
    let parent = unsafe { ns_get_parent(ns.as_raw_fd()) }?;
    // SAFETY: the ioctl returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(parent) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_descriptors_kept_are_left_out_of_the_ranges_closed() {
        use super::gaps_between;
        let max = std::os::fd::RawFd::MAX;
        assert_eq!(gaps_between(3, &[]), vec![(3, max)]);
        assert_eq!(gaps_between(3, &[7, 5]), vec![(3, 4), (6, 6), (8, max)]);
        // Next to each other, below `first`, at `first`, twice.
        assert_eq!(gaps_between(3, &[1, 3, 4, 4, 9]), vec![(5, 8), (10, max)]);
    }
}
