//! `rocker exec`: runs a command in a running container, as docker exec
//! does. This side finds the container, works out the command's
//! environment, working directory and user from the container's record and
//! the flags, forks the process that joins the container (see `exec`), and
//! relays signals and the terminal until the command ends, with its status.
//! With `-d` a supervisor of its own does that in the background.

use anyhow::{bail, Context, Result};
use caps::CapsHashSet;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::setsid;

use crate::cli::args::ExecArgs;
use crate::cli::values as options;
use crate::commands::container::running;
use crate::container::live_dir;
use crate::container::record::{ContainerRecord, Containers};
use crate::error::{exit_status_of, StatusError, EXIT_ROCKER_FAILED};
use crate::host::dirs::Dirs;
use crate::runtime::capabilities;
use crate::runtime::channel;
use crate::runtime::join::{self, ExecSpec};
use crate::runtime::namespaces;
use crate::runtime::seccomp::profile::parse_capability;
use crate::runtime::seccomp::Program;
use crate::runtime::start_report::{self, Outcome};
use crate::runtime::stdio;
use crate::runtime::stdio_pipes::StdioPipes;
use crate::runtime::supervise::{self, BlockedSignals, Supervised};
use crate::spec::ProcessSpec;
use crate::spec::{Environment, UserSpec};
use crate::sys::{self, Forked};
use crate::util::fs::stdin_from_null;

pub fn exec_command(args: ExecArgs) -> Result<i32> {
    stdio::refuse_paths(args.process.interactive)?;
    let dirs = Dirs::discover()?;
    let containers = Containers::open(&dirs)?;
    let record = containers.find(&args.container)?;
    let live = running(&containers, &record, "exec in")?;
    if live.paused.is_some() {
        return Err(StatusError::new(
            1,
            format!(
                "container {} is paused: rocker unpause {} first",
                record.name, record.name
            ),
        )
        .into());
    }
    let init = live.init.open().with_context(|| {
        format!(
            "cannot exec in container {}: it has just stopped",
            record.name
        )
    })?;
    let spec = ExecSpec {
        init,
        init_pid: live.init.pid,
        cgroup: live.cgroup.clone(),
        namespaces: namespaces(&record),
        shared_network: matches!(
            record.network,
            crate::network::NetworkMode::Container { .. }
        ),
        user: args
            .process
            .user
            .as_deref()
            .map(UserSpec::parse)
            .transpose()?,
        process: ProcessSpec {
            env: environment(&record, &args)?,
            cwd: match &args.process.workdir {
                Some(dir) => options::container_path(dir, "the working directory")?,
                None => record.working_dir.clone(),
            },
            user: record.user,
            args: args.command,
            terminal: args.process.tty,
            stdin: args.process.interactive,
            capabilities: capabilities_of(&record)?,
        },
        seccomp: live_dir::read_seccomp(&containers.runtime_of(&record.id), &record.id)?
            .map(|bytes| Program::from_bytes(&bytes))
            .transpose()
            .with_context(|| format!("the syscall filter of container {}", record.name))?,
    };

    match args.detach {
        true => exec_detached(&spec),
        false => run_in(&spec, &mut || Ok(())),
    }
}

/// Forks the process that joins the container, relays signals and stdio
/// to the command it starts there, and returns the command's status.
/// `started` runs once the command has been executed.
fn run_in(spec: &ExecSpec, started: &mut dyn FnMut() -> Result<()>) -> Result<i32> {
    let (channel, child_end) = channel::pair()?;
    // Without -t, the command must not hold our terminal.
    let mut pipes = match spec.process.terminal {
        true => None,
        false => StdioPipes::for_terminals(spec.process.stdin)?,
    };
    // The joining process forwards them to the command too.
    let mask = BlockedSignals::for_supervision()?;
    let pid = match sys::fork().context("forking to join the container")? {
        Forked::Child => {
            drop(channel);
            if let Some(pipes) = pipes.as_mut() {
                if let Err(err) = pipes.become_stdio() {
                    let _ = child_end.failed(EXIT_ROCKER_FAILED, format!("{err:#}"));
                    sys::exit_now(EXIT_ROCKER_FAILED);
                }
            }
            join::run(child_end, spec, mask.signals())
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    if let Some(pipes) = pipes.as_mut() {
        pipes.close_container_ends();
    }
    let mut joined = Supervised::new(pid);
    let status = supervise::run_to_exit(
        &channel,
        &mut joined,
        mask.signals(),
        spec.process.terminal,
        spec.process.stdin,
        pipes.as_mut(),
        None,
        started,
    )?;
    if let Some(pipes) = pipes.as_mut() {
        pipes.drain();
    }
    Ok(status)
}

/// `exec -d`: a supervisor of its own, in a session of its own with its
/// stdio on /dev/null, runs the command as a foreground exec would (the
/// joining process dies with it, the command with its container); this
/// process returns once the command has been executed, or fails as a
/// foreground exec would have.
fn exec_detached(spec: &ExecSpec) -> Result<i32> {
    let (report, mut reporter) = start_report::pair()?;
    match sys::fork().context("forking the exec's supervisor")? {
        Forked::Parent(_) => {
            drop(reporter);
            match start_report::wait(report)? {
                Outcome::Started => Ok(0),
                Outcome::Failed(err) => Err(err),
                Outcome::Silent => bail!("the exec's supervisor ended before the command ran"),
            }
        }
        Forked::Child => {
            drop(report);
            let detached = setsid()
                .context("starting a session for the exec")
                .and_then(|_| null_stdio());
            let result = detached.and_then(|()| {
                run_in(spec, &mut || {
                    reporter.started();
                    Ok(())
                })
            });
            let status = match result {
                Ok(status) => status,
                Err(err) => {
                    reporter.failed(&err);
                    exit_status_of(&err)
                }
            };
            sys::exit_now(status)
        }
    }
}

/// All of stdin, stdout and stderr on /dev/null: a detached exec's command
/// writes nowhere, as with docker.
fn null_stdio() -> Result<()> {
    stdin_from_null()?;
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening /dev/null")?;
    nix::unistd::dup2_stdout(&null).context("redirecting stdout")?;
    nix::unistd::dup2_stderr(&null).context("redirecting stderr")?;
    Ok(())
}

/// The container's namespaces. With `--network host` that includes no
/// network namespace: the container's is the caller's own (and joining it
/// from the container's user namespace is not allowed).
fn namespaces(record: &ContainerRecord) -> CloneFlags {
    namespaces::flags(&record.network, record.host_namespaces)
}

/// The capabilities the container was started with, which `exec` gets too.
fn capabilities_of(record: &ContainerRecord) -> Result<CapsHashSet> {
    match &record.security.capabilities {
        None => Ok(capabilities::default_set()),
        Some(names) => names.iter().map(|name| parse_capability(name)).collect(),
    }
}

/// docker exec's environment: the container's, then `--env-file`, then
/// `-e`; with `-t`, TERM as in `run -t` unless something set it.
fn environment(record: &ContainerRecord, args: &ExecArgs) -> Result<Vec<(String, String)>> {
    let mut env = Environment::default();
    for entry in &record.env {
        if let Some((name, value)) = entry.split_once('=') {
            env.set(name, value);
        }
    }
    if args.process.tty && env.get("TERM").is_none() {
        env.set("TERM", "xterm");
    }
    options::apply_env_options(&mut env, &args.process.env_file, &args.process.env)?;
    Ok(env.into_vec())
}
