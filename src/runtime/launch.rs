//! Starting a container whose spec and files are ready: its record first
//! (so `ps` shows it), then its monitor, which is this process for a
//! foreground run, or a forked child that outlives the command for `-d`.
//! The monitor records when the container started and how it ended, and
//! removes it afterwards under `--rm`.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::setsid;

use crate::container::identity::ProcessId;
use crate::container::logfile::LogWriter;
use crate::container::record::{ContainerRecord, Containers, LiveState, LogDriver, Status};
use crate::error::{exit_status_of, StatusError, EXIT_ROCKER_FAILED};
use crate::host::dirs::Dirs;
use crate::rootfs::backing::container_dir::ContainerFiles;
use crate::runtime::monitor::{self, Exit, Output, Remains};
use crate::runtime::seccomp::Program;
use crate::runtime::start_report::{self, Outcome, Reporter};
use crate::spec::{ContainerSpec, Rootfs};
use crate::sys::{self, Forked};
use crate::util::background;
use crate::util::fs::stdin_from_null;
use crate::util::time;

/// The log of a detached container stops growing at twice this (docker's
/// json-file has no limit by default; a forgotten chatty container should
/// not fill the disk).
pub const DEFAULT_LOG_MAX: u64 = 10 << 20;
const MONITOR_LOG: &str = "monitor.log";

pub struct Launch {
    pub spec: ContainerSpec,
    /// Its compiled syscall filter, if it has one.
    pub seccomp: Option<Program>,
    /// The record to write; an empty name gets a made-up one.
    pub record: ContainerRecord,
    /// The container's dir in the store, removed if it never starts.
    pub files: ContainerFiles,
    pub log_max: u64,
}

/// What a container that may start again keeps of its launch, in
/// `launch.json` beside its record: the spec as made when it was created
/// (so `start` runs the very same container), its filter compiled then.
#[derive(serde::Serialize, serde::Deserialize)]
struct Startable {
    spec: ContainerSpec,
    seccomp: Option<Program>,
    log_max: u64,
}

const STARTABLE: &str = "launch.json";

/// How this start goes: in the caller (attached) or in a monitor of its
/// own; and whether the container was made by it (then a failure to start
/// removes it, leaving nothing).
#[derive(Clone, Copy)]
struct How {
    detach: bool,
    fresh: bool,
    /// A `--rm` sweep forked while the container ran waits for this
    /// process's exit (see `start_now`).
    sweep_waiting: bool,
}

fn save_startable(containers: &Containers, launch: &Launch) -> Result<()> {
    let startable = Startable {
        spec: launch.spec.clone(),
        seccomp: launch.seccomp.clone(),
        log_max: launch.log_max,
    };
    let path = containers.dir(&launch.record.id).join(STARTABLE);
    crate::util::fs::replace_file(&path, &serde_json::to_vec(&startable)?, 0o600)
}

/// Records the container and runs it; returns its exit status (or, with
/// `-d`, 0 once it has started, having printed its id). Without `--rm` it
/// can be started again.
pub fn launch(mut launch: Launch, dirs: &Dirs) -> Result<i32> {
    let containers = Containers::open(dirs)?;
    containers.create(&mut launch.record, &containers.lock()?)?;
    if !launch.record.auto_remove {
        if let Err(err) = save_startable(&containers, &launch) {
            let _ = containers
                .lock()
                .and_then(|lock| containers.remove_with_volumes(&launch.record.id, &lock));
            return Err(err);
        }
    }
    let how = How {
        detach: launch.record.detached,
        fresh: true,
        sweep_waiting: false,
    };
    start_now(launch, &containers, dirs, how)
}

/// `rocker create`: records the container, ready to start, and prints its id.
pub fn create(mut launch: Launch, dirs: &Dirs) -> Result<i32> {
    let containers = Containers::open(dirs)?;
    containers.create(&mut launch.record, &containers.lock()?)?;
    if let Err(err) = save_startable(&containers, &launch) {
        let _ = containers
            .lock()
            .and_then(|lock| containers.remove_with_volumes(&launch.record.id, &lock));
        return Err(err);
    }
    launch.files.keep();
    println!("{}", launch.record.id);
    Ok(0)
}

/// What `start` changes in a kept spec: where the overlay goes in this
/// session's runtime dir, the cgroup its limits get now, and (started
/// in the caller) whether the caller's stdin goes in.
pub struct Restart {
    pub mount_point: Option<std::path::PathBuf>,
    pub resources: Option<crate::spec::Resources>,
    pub stdin: bool,
    /// In the caller (`start -a`) or detached.
    pub attach: bool,
}

/// Starts the recorded container `record` again (or for the first time,
/// after `create`), from what it kept; its files and record stay whatever
/// happens.
pub fn start(record: ContainerRecord, restart: Restart, dirs: &Dirs) -> Result<i32> {
    let containers = Containers::open(dirs)?;
    // Started by hand: an earlier stop's word no longer holds.
    containers.clear_stop_request(&record.id)?;
    let path = containers.dir(&record.id).join(STARTABLE);
    let startable: Startable = crate::util::fs::read_json(&path)?.with_context(|| {
        format!(
            "container {} cannot be started again: it was made by a rocker that kept no \
             {STARTABLE}, or with --rm",
            record.name
        )
    })?;
    let mut spec = startable.spec;
    if let (
        Some(new),
        Rootfs::KernelOverlay { mount_point, .. } | Rootfs::FuseOverlay { mount_point, .. },
    ) = (restart.mount_point, &mut spec.rootfs)
    {
        *mount_point = new;
    }
    spec.resources = restart.resources;
    // In the caller, stdin goes in with -i; in the background it is open
    // to attach clients as the container was made (-i).
    if restart.attach {
        spec.process.stdin = restart.stdin;
    }
    let files = ContainerFiles::existing(containers.dir(&record.id))?;
    let launch = Launch {
        spec,
        seccomp: startable.seccomp,
        record,
        files,
        log_max: startable.log_max,
    };
    let how = How {
        detach: !restart.attach,
        fresh: false,
        sweep_waiting: false,
    };
    start_now(launch, &containers, dirs, how)
}

/// Runs a recorded container: in this process, or in a detached monitor.
fn start_now(launch: Launch, containers: &Containers, dirs: &Dirs, how: How) -> Result<i32> {
    if how.detach {
        return run_detached(launch, containers, dirs, how);
    }
    let Launch {
        spec,
        seccomp,
        record,
        files,
        ..
    } = launch;
    let mut remains = Remains::default();
    let mut recorder = StartRecorder {
        containers,
        id: &record.id,
        restart_count: 0,
        sweep: record.auto_remove,
        on_start: &mut || {},
        live: None,
        started: None,
        sweep_waiting: false,
    };
    let result = monitor::run(
        &spec,
        &record.name,
        seccomp.as_ref(),
        dirs,
        Output::Inherit,
        &mut recorder,
        &mut remains,
    );
    let StartRecorder {
        started,
        sweep_waiting,
        ..
    } = recorder;
    let how = How {
        sweep_waiting,
        ..how
    };
    let status = finish(
        containers,
        &record,
        started,
        result,
        files,
        how,
        &mut remains,
    );
    drop(remains);
    status
}

/// What a run records as its container comes up (the monitor's `Hooks`).
struct StartRecorder<'a> {
    containers: &'a Containers,
    id: &'a str,
    restart_count: u32,
    /// Fork the `--rm` sweep once the container is cloned (see `cloned`).
    sweep: bool,
    /// Called once the start is recorded.
    on_start: &'a mut dyn FnMut(),
    /// The container's processes, read once it is cloned.
    live: Option<LiveState>,
    /// The status `started` wrote, once the command runs.
    started: Option<Status>,
    /// A sweep was forked, which waits for this process's exit.
    sweep_waiting: bool,
}

impl monitor::Hooks for StartRecorder<'_> {
    /// While the child sets itself up: the processes' start times are read
    /// (two /proc reads, the same after the exec), and the --rm sweep is
    /// forked (0.2-0.3 ms), rather than on the way to the caller's exit
    /// status. The sweep waits for this process's exit, by which time the
    /// container's dirs are in removed/ (or gone, if it never started).
    fn cloned(&mut self, container: &monitor::Started) -> Result<()> {
        self.live = Some(LiveState {
            monitor: ProcessId::current()?,
            init: ProcessId::of(container.init)?,
            cgroup: container.cgroup.map(Path::to_path_buf),
            paused: None,
        });
        // Not when the container has a cgroup: the monitor stands in that
        // cgroup's `monitor` leaf while it runs, and removes it at the
        // end; a sweep waiting in it would keep it.
        if self.sweep && container.cgroup.is_none() {
            let namespace = container
                .mount_namespace
                .and_then(|fd| fd.try_clone_to_owned().ok());
            self.sweep_waiting =
                background::run_detached_after_exit(namespace, sweep(self.containers));
        }
        Ok(())
    }

    /// The command runs: its processes and the time are recorded. The
    /// live state comes first, so a started container always has one to
    /// check.
    fn started(&mut self, _: &monitor::Started) -> Result<()> {
        let live = self
            .live
            .take()
            .context("the container's processes were not read when it was cloned")?;
        self.containers.write_started_live_state(self.id, &live)?;
        let status = Status {
            started: Some(time::now_nanos()),
            restart_count: self.restart_count,
            runtime: Some(self.containers.runtime().to_path_buf()),
            ..Status::default()
        };
        self.containers.write_status(self.id, &status)?;
        self.started = Some(status);
        (self.on_start)();
        Ok(())
    }
}

/// After the monitor: how the container ended (`started` is the status
/// `StartRecorder` wrote, if the command ran), and its removal under `--rm`
/// (or when it never started: then it leaves nothing). A container about
/// to be removed gets no final status, unless the removal fails. Its mount
/// namespace (in `remains`) goes to the sweep of a removed container; any
/// other's is closed before its end is recorded, so that whoever starts it
/// again never meets its last root still mounted.
fn finish(
    containers: &Containers,
    record: &ContainerRecord,
    started: Option<Status>,
    result: Result<Exit>,
    mut files: ContainerFiles,
    how: How,
    remains: &mut Remains,
) -> Result<i32> {
    let oom_killed = matches!(
        result,
        Ok(Exit {
            oom_killed: true,
            ..
        })
    );
    if oom_killed {
        eprintln!(
            "rocker: container {} ran out of memory (its --memory limit): the kernel killed it",
            record.name
        );
    }
    let result = result.map(|exit| exit.code);
    // From here the record's removal is explicit (under the lock), not the
    // guard's.
    files.keep();
    // A container this very command made and could not start leaves
    // nothing; one started again stays, whatever happened.
    let remove = match started {
        None => how.fresh,
        Some(_) => record.auto_remove,
    };
    // Kept for the sweep of a container that ran and goes; any other lets
    // go of it now, before its files go or its end is recorded.
    let mount_namespace = remains
        .mount_namespace
        .take()
        .filter(|_| remove && started.is_some());
    let removed = match remove {
        true => containers
            .lock()
            .and_then(|lock| remove_finished(containers, record, started.is_some(), &lock))
            .map_err(|err| eprintln!("rocker: warning: {err:#}"))
            .is_ok(),
        false => false,
    };
    match removed && started.is_some() && !how.sweep_waiting {
        true => sweep_in_background(containers, mount_namespace),
        // A waiting sweep holds its own copy of the namespace.
        false => drop(mount_namespace),
    }
    if let (Some(mut status), false) = (started, removed) {
        status.finished = Some(time::now_nanos());
        status.oom_killed = oom_killed;
        status.exit_code = Some(match &result {
            Ok(code) => *code,
            Err(err) => exit_status_of(err),
        });
        if let Err(err) = containers.write_final_status(&record.id, &status) {
            eprintln!("rocker: warning: {err:#}");
        }
    }
    result
}

/// Removes a container this command is done with: one that ran is moved
/// aside, for a sweep after the exit status (`container::removal`); one
/// that never started, and one with volumes to settle, go in line.
fn remove_finished(
    containers: &Containers,
    record: &ContainerRecord,
    ran: bool,
    lock: &crate::container::record::ContainersLock,
) -> Result<()> {
    if ran && containers.retire(record, lock)? {
        return Ok(());
    }
    containers.remove_with_volumes(&record.id, lock)
}

/// Deletes what `--rm` moved aside, in a detached child so the caller has
/// its exit status now; in line if no child can be made. The container's
/// mount namespace goes first, in the child after this process's exit.
fn sweep_in_background(containers: &Containers, mount_namespace: Option<OwnedFd>) {
    let detached = background::run_detached_after_exit(mount_namespace, sweep(containers))
        || background::run_detached(sweep(containers));
    if !detached {
        if let Err(err) = containers.sweep_removed() {
            eprintln!("rocker: warning: {err:#}");
        }
    }
}

/// The sweep of what `--rm` moved aside, as detached work: errors have no
/// one to go to there, and what is left is swept next time.
fn sweep(containers: &Containers) -> impl FnOnce() + '_ {
    move || {
        let _ = containers.sweep_removed();
    }
}

/// One detached container's runs, for its restart policy.
struct Run<'a> {
    spec: &'a ContainerSpec,
    seccomp: Option<&'a Program>,
    containers: &'a Containers,
    record: &'a ContainerRecord,
    dirs: &'a Dirs,
}

/// docker's restart backoff: 100 ms, doubling, back to 100 ms after a run
/// that lasted 10 s; at most a minute.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LONGEST_BACKOFF: Duration = Duration::from_secs(60);
const A_GOOD_RUN: Duration = Duration::from_secs(10);

impl Run<'_> {
    /// Runs the container, and again as its restart policy says, until it
    /// ends for good (or `stop` asks); the last run's result. `started`
    /// holds the status of the run in progress.
    fn with_restarts(
        &self,
        output: &mut dyn FnMut() -> Result<Output>,
        started: &mut Option<Status>,
        on_start: &mut dyn FnMut(),
        remains: &mut Remains,
    ) -> Result<Exit> {
        let id = &self.record.id;
        let mut count = 0;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let began = Instant::now();
            // The last run's, kept until its end was recorded below.
            *remains = Remains::default();
            let mut recorder = StartRecorder {
                containers: self.containers,
                id,
                restart_count: count,
                // A detached monitor's exit is no one's exit status: its
                // sweep is forked at the end (see `finish`).
                sweep: false,
                on_start: &mut *on_start,
                live: None,
                // Until this run starts, the last one's.
                started: started.take(),
                sweep_waiting: false,
            };
            let result = monitor::run(
                self.spec,
                &self.record.name,
                self.seccomp,
                self.dirs,
                output()?,
                &mut recorder,
                remains,
            );
            *started = recorder.started;
            let (Ok(exit), Some(status)) = (&result, started.as_ref()) else {
                return result;
            };
            if !self.record.restart.restarts(exit.code, count) || self.containers.stop_requested(id)
            {
                return result;
            }
            // Between runs: the end recorded, and this monitor named as the
            // one that waits, so that ps says Restarting and stop reaches it.
            // The run's mount namespace goes first, as `finish` has it.
            remains.mount_namespace = None;
            let mut waiting = status.clone();
            waiting.finished = Some(time::now_nanos());
            waiting.exit_code = Some(exit.code);
            waiting.oom_killed = exit.oom_killed;
            waiting.restarting = Some(ProcessId::current()?);
            self.containers.write_status(id, &waiting)?;
            if began.elapsed() >= A_GOOD_RUN {
                backoff = FIRST_BACKOFF;
            }
            let wake = Instant::now() + backoff;
            while Instant::now() < wake {
                if self.containers.stop_requested(id) {
                    // `finish` records the end, as after any last run.
                    waiting.restarting = None;
                    *started = Some(waiting);
                    return result;
                }
                std::thread::sleep((wake - Instant::now()).min(Duration::from_millis(20)));
            }
            backoff = (backoff * 2).min(LONGEST_BACKOFF);
            count += 1;
        }
    }
}

/// `-d`: forks the monitor, which lives on in a session of its own, and
/// waits until it reports that the command runs (or why it could not).
fn run_detached(mut launch: Launch, containers: &Containers, dirs: &Dirs, how: How) -> Result<i32> {
    let (report, reporter) = start_report::pair()?;
    match sys::fork().context("forking the container's monitor")? {
        Forked::Parent(_) => {
            // The monitor owns the container's files now.
            launch.files.keep();
            drop(reporter);
            await_start(report, &launch.record, containers, how)
        }
        Forked::Child => {
            drop(report);
            let status = detached_monitor(launch, containers, dirs, reporter, how);
            sys::exit_now(status)
        }
    }
}

/// The parent's side: the id once the command runs, or the failure, which
/// the monitor reports once it has cleaned up.
fn await_start(
    report: OwnedFd,
    record: &ContainerRecord,
    containers: &Containers,
    how: How,
) -> Result<i32> {
    match start_report::wait(report)? {
        Outcome::Started => {
            // `run -d` prints the new id; `start` names what it started.
            if how.fresh {
                println!("{}", record.id);
            }
            Ok(0)
        }
        Outcome::Failed(err) => Err(err),
        Outcome::Silent => bail!(
            "the monitor of container {} ended before the container started; see {}",
            record.name,
            containers.dir(&record.id).join(MONITOR_LOG).display()
        ),
    }
}

/// The detached monitor: runs the container with its output to the log and
/// returns the status this process exits with.
fn detached_monitor(
    launch: Launch,
    containers: &Containers,
    dirs: &Dirs,
    mut reporter: Reporter,
    how: How,
) -> i32 {
    let Launch {
        spec,
        seccomp,
        record,
        files,
        log_max,
    } = launch;
    let record = &record;
    let mut started = None;
    let mut remains = Remains::default();
    let result = detach_from_caller(containers, &record.id).and_then(|()| {
        let mut output = || -> Result<Output> {
            if record.log_driver == LogDriver::None {
                return Ok(Output::Log(None));
            }
            Ok(Output::Log(Some(LogWriter::create(
                &containers.log_path(&record.id),
                log_max,
            )?)))
        };
        let mut on_start = || reporter.started();
        let run = Run {
            spec: &spec,
            seccomp: seccomp.as_ref(),
            containers,
            record,
            dirs,
        };
        run.with_restarts(&mut output, &mut started, &mut on_start, &mut remains)
    });
    // Kept apart: `finish` takes the result, and the caller hears of a
    // failure only once the monitor has cleaned up.
    let failure = result
        .as_ref()
        .err()
        .map(|err| anyhow::Error::from(StatusError::new(exit_status_of(err), format!("{err:#}"))));
    let status = finish(
        containers,
        record,
        started,
        result,
        files,
        how,
        &mut remains,
    )
    .unwrap_or(EXIT_ROCKER_FAILED);
    drop(remains);
    if let Some(err) = failure {
        if !reporter.failed(&err) {
            eprintln!("rocker: {err:#}");
        }
    }
    status
}

/// A new session (no terminal to lose), stdin from /dev/null, and the
/// monitor's own messages to `monitor.log` in the container's dir: nothing
/// of the caller's stays open, so `$(rocker run -d ...)` returns.
fn detach_from_caller(containers: &Containers, id: &str) -> Result<()> {
    setsid().context("starting a session for the monitor")?;
    stdin_from_null()?;
    let log_path = containers.dir(id).join(MONITOR_LOG);
    let log = open(
        &log_path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .with_context(|| format!("creating {}", log_path.display()))?;
    nix::unistd::dup2_stdout(&log).context("redirecting the monitor's stdout")?;
    nix::unistd::dup2_stderr(&log).context("redirecting the monitor's stderr")?;
    Ok(())
}
