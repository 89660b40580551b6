//! The steps `run`'s container side (`init`) and `exec`'s (`join`) share
//! once they stand in the container: take its user, change to its working
//! directory, open its console, find the command, reduce privileges, and
//! exec it (after a fork with `--init`, or always for `exec`, whose
//! process stays outside the container's pid namespace).

use std::convert::Infallible;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{
    chdir, dup2_stderr, dup2_stdin, dup2_stdout, execve, getcwd, setresgid, setresuid, setsid, Gid,
    Uid,
};

use super::channel::ChildEnd;
use super::{capabilities, path_lookup, reaper};
use crate::error::exit_status_of;
use caps::CapsHashSet;

use super::seccomp::Program;
use crate::spec::ContainerUser;
use crate::sys::{self, Forked};
use crate::util::fs::stdin_from_null;

/// Execs the prepared command. With `reaper` (the signals to forward), this
/// process forks first and stays as the command's parent, forwarding those
/// signals and exiting with its status: `--init`'s PID 1, and the process
/// `exec` leaves outside the container's pid namespace.
pub fn start(
    channel: ChildEnd,
    prepared: Prepared,
    stdin: bool,
    reaper: Option<&SigSet>,
    forking: &str,
) -> ! {
    if let Some(signals) = reaper {
        // The command waits for the reaper's filter: it must never find
        // its PID 1 unconfined (a test read /proc/1/status too soon).
        let (filtered_read, filtered_write) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
            Ok(ends) => ends,
            Err(err) => fail(
                &channel,
                anyhow::Error::new(err).context(forking.to_string()),
            ),
        };
        match sys::fork() {
            Ok(Forked::Parent(command)) => {
                drop(filtered_read);
                // The reaper lives under the container's filter too (it
                // only waits, forwards signals and exits). Should that
                // fail, its end takes the command with it (parent-death
                // signal, or the pid namespace's end).
                if let Some(filter) = &prepared.seccomp {
                    if let Err(err) = filter.install() {
                        fail(&channel, err);
                    }
                }
                let _ = std::fs::File::from(filtered_write).write_all(b"1");
                // The reaper keeps nothing of the command's: with its copies
                // of the channel and the pty closed, the monitor reads end of
                // stream as soon as the command has exec'd, and the
                // terminal's end once the command is gone.
                drop(channel);
                drop(prepared);
                reaper::supervise(command, signals)
            }
            Ok(Forked::Child) => {
                drop(filtered_write);
                let mut word = [0u8; 1];
                if std::fs::File::from(filtered_read)
                    .read_exact(&mut word)
                    .is_err()
                {
                    // The reaper failed, and has said why.
                    sys::exit_now(crate::error::EXIT_ROCKER_FAILED);
                }
            }
            Err(err) => fail(
                &channel,
                anyhow::Error::new(err).context(forking.to_string()),
            ),
        }
    }
    // A parent-death signal does not survive fork: set it (again).
    let err = match prctl::set_pdeathsig(Signal::SIGKILL)
        .context("setting the parent-death signal")
        .and_then(|()| exec(prepared, stdin))
    {
        Ok(never) => match never {},
        Err(err) => err,
    };
    fail(&channel, err)
}

/// Reports `err` to the parent and exits with the status it calls for.
pub fn fail(channel: &ChildEnd, err: anyhow::Error) -> ! {
    let status = exit_status_of(&err);
    let _ = channel.failed(status, format!("{err:#}"));
    sys::exit_now(status)
}

/// What is left to do once the container is set up: start the command.
pub struct Prepared {
    console: Option<OwnedFd>,
    name: String,
    executable: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// The syscall filter, installed just before exec.
    seccomp: Option<Program>,
    /// `--ulimit`s, set over the defaults just before exec.
    pub ulimits: Vec<crate::spec::Ulimit>,
}

/// Takes the container user's ids (real, effective and saved).
pub fn become_user(user: ContainerUser) -> Result<()> {
    let gid = Gid::from_raw(user.gid);
    let uid = Uid::from_raw(user.uid);
    setresgid(gid, gid, gid).with_context(|| format!("becoming gid {gid} in the container"))?;
    setresuid(uid, uid, uid).with_context(|| format!("becoming uid {uid} in the container"))?;
    Ok(())
}

impl Prepared {
    /// Finds the command on the environment's PATH (in the container's
    /// root: call this once inside it).
    pub fn new(
        console: Option<OwnedFd>,
        args: &[String],
        env: &[(String, String)],
        seccomp: Option<Program>,
    ) -> Result<Prepared> {
        let path = env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map_or(path_lookup::DEFAULT_PATH, |(_, value)| value.as_str());
        let name = args.first().context("no command given")?.clone();
        let executable = path_lookup::find(&name, path)?;
        Ok(Prepared {
            console,
            name,
            executable: CString::new(executable.into_os_string().into_encoded_bytes())?,
            args: c_strings(args.iter().map(String::as_str))?,
            env: c_strings(env.iter().map(|(k, v)| format!("{k}={v}")))?,
            seccomp,
            ulimits: vec![],
        })
    }
}

/// The last step before exec: the capabilities a container keeps, no way
/// to gain more, and no access to this process from the container.
pub fn restrict_privileges(keep: &CapsHashSet) -> Result<()> {
    restrict_privileges_then(keep, || Ok(()))
}

/// As `restrict_privileges`, with `meanwhile` run once the capabilities
/// are gone and before the process is made non-dumpable: until then the
/// monitor's helpers can still open its /proc/PID/ns files (slirp4netns
/// joins the container's namespaces by them), and no other process of the
/// container exists yet to reach its /proc/PID/exe.
pub fn restrict_privileges_then(
    keep: &CapsHashSet,
    meanwhile: impl FnOnce() -> Result<()>,
) -> Result<()> {
    leave_the_callers_keyring()?;
    capabilities::restrict_to(keep)?;
    prctl::set_no_new_privs().context("setting no_new_privs")?;
    meanwhile()?;
    // Until exec replaces it, this process is rocker's binary: keep its
    // /proc/PID/exe out of reach of the container (CVE-2019-5736). Changing
    // capabilities above also cleared the parent-death signal: set it again.
    prctl::set_dumpable(false).context("marking the process non-dumpable")?;
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    Ok(())
}

/// The caller's session keyring (Kerberos caches, fscrypt keys) is not the
/// container's: join a new, empty one, whatever the syscall filter lets
/// the container do with keys (runc and crun do the same).
fn leave_the_callers_keyring() -> Result<()> {
    match sys::join_new_session_keyring() {
        // A kernel without keys has no keyring to share.
        Ok(()) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(nix::errno::Errno::EDQUOT) => bail!(
            "joining a new session keyring: your key quota is used up (many containers at \
             once?); it is /proc/sys/kernel/keys/maxkeys"
        ),
        Err(err) => Err(err).context("joining a new session keyring"),
    }
}

/// What the command starts with whatever the caller had, as runc and
/// podman set it: umask 0022 (the caller's might be 0000, and every file
/// the container makes would be writable by all), and as many open files
/// and processes as the caller's hard limits allow (rootless podman raises
/// the soft limits so; servers need more than 1024 files).
fn process_defaults() -> Result<()> {
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    for (resource, name) in [
        (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        (Resource::RLIMIT_NPROC, "RLIMIT_NPROC"),
    ] {
        let (_, hard) = getrlimit(resource).with_context(|| format!("reading {name}"))?;
        setrlimit(resource, hard, hard).with_context(|| format!("raising {name}"))?;
    }
    Ok(())
}

/// `--ulimit`s, after the defaults (the command and its children inherit
/// them). A hard limit may only go down: raising one takes a privilege
/// the caller's own user namespace does not grant.
fn set_ulimits(ulimits: &[crate::spec::Ulimit]) -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    for limit in ulimits {
        let resource = match limit.name.as_str() {
            "core" => Resource::RLIMIT_CORE,
            "cpu" => Resource::RLIMIT_CPU,
            "data" => Resource::RLIMIT_DATA,
            "fsize" => Resource::RLIMIT_FSIZE,
            "locks" => Resource::RLIMIT_LOCKS,
            "memlock" => Resource::RLIMIT_MEMLOCK,
            "msgqueue" => Resource::RLIMIT_MSGQUEUE,
            "nice" => Resource::RLIMIT_NICE,
            "nofile" => Resource::RLIMIT_NOFILE,
            "nproc" => Resource::RLIMIT_NPROC,
            "rss" => Resource::RLIMIT_RSS,
            "rtprio" => Resource::RLIMIT_RTPRIO,
            "rttime" => Resource::RLIMIT_RTTIME,
            "sigpending" => Resource::RLIMIT_SIGPENDING,
            "stack" => Resource::RLIMIT_STACK,
            "as" => Resource::RLIMIT_AS,
            other => anyhow::bail!("--ulimit: no resource {other:?}"),
        };
        let soft = limit.soft.unwrap_or(RLIM_INFINITY);
        let hard = limit.hard.unwrap_or(RLIM_INFINITY);
        setrlimit(resource, soft, hard).map_err(|err| {
            let (_, current) = getrlimit(resource).unwrap_or((0, 0));
            let current = match current {
                RLIM_INFINITY => "unlimited".to_string(),
                n => n.to_string(),
            };
            anyhow::anyhow!(
                "--ulimit {}: {err} (an unprivileged user may lower a hard limit, not raise \
                 it: yours is {current})",
                limit.name
            )
        })?;
    }
    Ok(())
}

/// Connects stdio and replaces this process with the command.
pub fn exec(prepared: Prepared, pass_stdin: bool) -> Result<Infallible> {
    // A new session with no controlling terminal: the command cannot push
    // input into the caller's terminal with TIOCSTI (CVE-2017-5226).
    setsid().context("starting a new session")?;
    match prepared.console {
        Some(terminal) => attach_terminal(terminal)?,
        None if !pass_stdin => stdin_from_null()?,
        None => {}
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .context("unblocking signals")?;
    sys::reset_signal_to_default(Signal::SIGPIPE).context("restoring SIGPIPE")?;
    process_defaults()?;
    set_ulimits(&prepared.ulimits)?;
    // Only 0, 1 and 2 may reach the command (CVE-2024-21626).
    sys::cloexec_from(3).context("closing inherited descriptors")?;
    // Last: from here on only the filter's allowed calls work, and the one
    // left is execve.
    if let Some(filter) = &prepared.seccomp {
        filter.install()?;
    }
    let errno = execve(&prepared.executable, &prepared.args, &prepared.env).unwrap_err();
    Err(path_lookup::exec_error(&prepared.name, errno).into())
}

fn c_strings<S: Into<Vec<u8>>>(items: impl Iterator<Item = S>) -> Result<Vec<CString>> {
    items
        .map(|s| CString::new(s).context("an argument or variable contains a NUL byte"))
        .collect()
}

/// Opens a pty in the container's devpts, hands the master to the monitor
/// and returns the slave once the monitor has set its window size.
pub fn open_console(channel: &ChildEnd) -> Result<OwnedFd> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening /dev/ptmx in the container")?;
    grantpt(&master).context("grantpt")?;
    unlockpt(&master).context("unlockpt")?;
    let slave_path = ptsname_r(&master).context("ptsname")?;
    let slave = open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {slave_path}"))?;
    channel.send_console(master.as_fd())?;
    drop(master);
    channel.wait_for_console_sized()?;
    Ok(slave)
}

fn attach_terminal(terminal: OwnedFd) -> Result<()> {
    sys::set_controlling_terminal(&terminal).context("making the pty the controlling terminal")?;
    dup2_stdin(&terminal).context("connecting stdin to the pty")?;
    dup2_stdout(&terminal).context("connecting stdout to the pty")?;
    dup2_stderr(&terminal).context("connecting stderr to the pty")?;
    Ok(())
}

/// Changes to the working directory; `run` creates it when missing (as
/// docker does), `exec` does not. The lookup happens after pivot_root (or
/// setns), so it cannot leave the rootfs; the getcwd check catches a
/// directory reached through a descriptor that still points outside
/// (CVE-2024-21626).
pub fn enter_working_directory(cwd: &str, create: bool) -> Result<()> {
    if create {
        if let Err(err) = std::fs::create_dir_all(cwd) {
            if !std::path::Path::new(cwd).is_dir() {
                return Err(err).with_context(|| format!("creating the working directory {cwd}"));
            }
        }
    }
    chdir(cwd).with_context(|| format!("changing to the working directory {cwd}"))?;
    match getcwd() {
        Ok(path) if path.is_absolute() => Ok(()),
        _ => bail!("the working directory {cwd} is outside the container"),
    }
}
