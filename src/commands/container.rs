//! The container commands: `ps`, `logs`, `stop`, `kill`, `wait`, `port`,
//! `rename`, `rm`, `inspect` and `container prune`, over the records of
//! `container::record`.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::cgroups;
use crate::cli::args::{
    ContainerInspectArgs, DiffArgs, Format, KillArgs, LogsArgs, PauseArgs, PortArgs, PsArgs,
    RenameArgs, RmArgs, StopArgs, TopArgs, WaitArgs,
};
use crate::commands::filters::{label_matches, name_matches, Filters};
use crate::commands::image;
use crate::commands::output::{human_size, printable, write_table};
use crate::container::freeze;
use crate::container::listing::{ContainerSummary, Listed};
use crate::container::live_dir;
use crate::container::logfile::{self, Entry, Follower, Stream};
use crate::container::record::{
    ContainerRecord, Containers, LiveState, LogDriver, MountKind, RootfsKind, State,
};
use crate::error::{exit_status_of, StatusError};
use crate::host::dirs::Dirs;
use crate::image::reference::Reference;
use crate::network::ports::PortMapping;
use crate::rootfs::backing::changes;
use crate::spec::{parse_signal, RestartPolicy};
use crate::util::fs::tree_size;
use crate::util::time;

/// How long `stop`, `kill` and `rm -f` wait for a monitor to record the
/// end of its container once the container's processes are gone.
const MONITOR_DEADLINE: Duration = Duration::from_secs(10);

fn open() -> Result<Containers> {
    Containers::open(&Dirs::discover()?)
}

/// `ps -s`: what a container wrote (its upper dir, or its copied root),
/// and that plus its image, docker's "virtual" size.
struct Sizes {
    images: std::collections::BTreeMap<String, u64>,
}

impl Sizes {
    fn measure() -> Result<Sizes> {
        let context = image::ImageContext::open()?;
        let images = context
            .store
            .images()?
            .iter()
            .map(|image| (image.id().to_string(), context.unpacked_size(image)))
            .collect();
        Ok(Sizes { images })
    }

    fn words(&self, containers: &Containers, record: &ContainerSummary) -> String {
        let dir = containers.dir(&record.id);
        let written = ["upper", "rootfs"]
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_dir())
            .map_or(0, |path| tree_size(&path));
        let image = record
            .image_id
            .as_ref()
            .and_then(|id| self.images.get(id))
            .copied()
            .unwrap_or(0);
        format!(
            "{} (virtual {})",
            human_size(written),
            human_size(written + image)
        )
    }
}

/// `ps`' STATUS column, as docker words it.
fn status_words(state: &State, started: Option<u64>, now: u64) -> String {
    match state {
        State::Created => "Created".to_string(),
        State::Running(live) => {
            let up = time::duration_words(started.unwrap_or(now), now);
            match live.paused {
                Some(_) => format!("Up {up} (Paused)"),
                None => format!("Up {up}"),
            }
        }
        State::Exited { code, finished } => format!(
            "Exited ({code}) {} ago",
            time::duration_words(*finished, now)
        ),
        State::Stopped => "Stopped (exit status unknown)".to_string(),
        State::Damaged(_) => "Damaged (its status file cannot be read: rocker rm it)".to_string(),
        State::Restarting { code, finished, .. } => format!(
            "Restarting ({code}) {} ago",
            time::duration_words(*finished, now)
        ),
    }
}

fn ports_text(record: &ContainerSummary) -> String {
    record
        .ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `record` (in `state`) passes `ps`'s filters, as docker's.
fn passes(filters: &Filters, record: &ContainerSummary, state: &State) -> bool {
    let image_id = record.image_id.as_deref().unwrap_or("");
    filters.allows("name", |f| name_matches(f, &record.name))
        && filters.allows("id", |f| record.id.starts_with(f))
        && filters.allows("label", |f| label_matches(f, &record.labels))
        && filters.allows("status", |f| f == state.word())
        && filters.allows("ancestor", |f| {
            let normalized = Reference::parse(f)
                .map(|r| r.to_string())
                .unwrap_or_default();
            record.image == f
                || record.image == normalized
                || (!f.is_empty()
                    && image_id
                        .trim_start_matches("sha256:")
                        .starts_with(f.trim_start_matches("sha256:")))
        })
        && filters.allows("network", |f| f == record.network.to_string())
        && filters.allows(
            "exited",
            |f| matches!(state, State::Exited { code, .. } if f.parse() == Ok(*code)),
        )
}

pub fn ps_command(args: PsArgs) -> Result<i32> {
    let filters = Filters::parse(
        &args.filters,
        &[
            "name", "id", "label", "status", "ancestor", "network", "exited",
        ],
    )?;
    // As docker: a status or exit filter, -n and -l look at every state.
    let last = match args.latest {
        true => Some(1),
        false => args.last,
    };
    let all = args.all || last.is_some() || filters.has("status") || filters.has("exited");
    let containers = open()?;
    let now = time::now_nanos();
    let mut rows = vec![];
    // Newest first; the listing gives them oldest first.
    for listed in containers.listing()?.into_iter().rev() {
        let Listed {
            summary: record,
            status,
            state,
        } = listed;
        if !all && !matches!(state, State::Running(_)) {
            continue;
        }
        if !passes(&filters, &record, &state) {
            continue;
        }
        rows.push((record, state, status.started));
    }
    if let Some(n) = last {
        rows.truncate(n);
    }
    let sizes = args.size.then(Sizes::measure).transpose()?;
    let size_of = |record: &ContainerSummary| match &sizes {
        Some(sizes) => sizes.words(&containers, record),
        None => "N/A".to_string(),
    };
    let id_of = |record: &ContainerSummary| match args.no_trunc {
        true => record.id.clone(),
        false => record.id[..12].to_string(),
    };
    if args.quiet {
        for (record, _, _) in &rows {
            println!("{}", id_of(record));
        }
        return Ok(0);
    }
    // The fields of docker's `ps --format`, and rocker's own beside them
    // (`Pid`, `ExitCode`, `ImageID`) under names docker does not use.
    let fields = || -> Vec<Value> {
        rows.iter()
            .map(|(record, state, started)| {
                json!({
                    "ID": id_of(record),
                    "Image": record.image,
                    "Command": format!("\"{}\"", record.command.join(" ")),
                    "CreatedAt": time::rfc3339(record.created),
                    "RunningFor": format!("{} ago", time::duration_words(record.created, now)),
                    "Ports": ports_text(record),
                    "State": state.word(),
                    "Status": status_words(state, *started, now),
                    "Names": record.name,
                    "Labels": record
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    "Mounts": record
                        .mounts
                        .iter()
                        .map(|m| m.name.clone().unwrap_or_else(|| m.destination.clone()))
                        .collect::<Vec<_>>()
                        .join(","),
                    "LocalVolumes": record
                        .mounts
                        .iter()
                        .filter(|m| m.name.is_some())
                        .count()
                        .to_string(),
                    "Networks": record.network.to_string(),
                    "Size": size_of(record),
                    "ImageID": record.image_id,
                    "Pid": pid(state),
                    "ExitCode": exit_code(state),
                })
            })
            .collect()
    };
    match &args.format {
        Format::Template(template) => {
            super::template::print_each(template, &fields())?;
            return Ok(0);
        }
        // docker's: one object per line.
        Format::Json => {
            let mut out = std::io::stdout().lock();
            for row in fields() {
                writeln!(out, "{row}")?;
            }
            return Ok(0);
        }
        Format::Text => {}
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(record, state, started)| {
            let mut command = format!("\"{}\"", record.command.join(" "));
            if !args.no_trunc && command.chars().count() > 20 {
                command = format!("{}...\"", command.chars().take(16).collect::<String>());
            }
            let mut row = vec![
                id_of(record),
                record.image.clone(),
                command,
                format!("{} ago", time::duration_words(record.created, now)),
                status_words(state, *started, now),
                ports_text(record),
                record.name.clone(),
            ];
            if sizes.is_some() {
                row.push(size_of(record));
            }
            row
        })
        .collect();
    let mut header = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if sizes.is_some() {
        header.push("SIZE");
    }
    write_table(&mut std::io::stdout().lock(), &header, &table)?;
    Ok(0)
}

fn exit_code(state: &State) -> Option<i32> {
    match state {
        State::Exited { code, .. } => Some(*code),
        _ => None,
    }
}

fn pid(state: &State) -> i32 {
    match state {
        State::Running(live) => live.init.pid,
        _ => 0,
    }
}

pub fn logs_command(args: LogsArgs) -> Result<i32> {
    let containers = open()?;
    let record = containers.find(&args.container)?;
    let path = containers.log_path(&record.id);
    if record.log_driver == LogDriver::None {
        return Err(StatusError::new(
            1,
            format!(
                "{}: configured logging driver does not support reading (it runs with \
                 --log-driver none)",
                record.name
            ),
        )
        .into());
    }
    // A log exists once the container has run detached (run -d, start).
    if !record.detached && !path.exists() {
        bail!(
            "{} ran in the foreground: its output went to the terminal, and rocker \
             keeps logs only of detached containers (run -d, start without -a)",
            record.name
        );
    }
    // Start following where the full read ends (the writer appends only).
    let mut follower = Follower::at_end(&path);
    let mut entries = logfile::read_all(&path)?;
    if let Some(tail) = args.tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    print_entries(&entries, args.timestamps)?;
    if !args.follow {
        return Ok(0);
    }
    loop {
        let running = matches!(containers.state(&record.id)?, State::Running(_));
        let entries = follower.read_new();
        print_entries(&entries, args.timestamps)?;
        if !running && entries.is_empty() {
            // One more read: lines the monitor wrote while it finished.
            print_entries(&follower.read_new(), args.timestamps)?;
            return Ok(0);
        }
        if entries.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Each entry to the stream it came from.
fn print_entries(entries: &[Entry], timestamps: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for entry in entries {
        let out: &mut dyn Write = match entry.stream {
            Stream::Stderr => &mut stderr,
            Stream::Stdout => &mut stdout,
        };
        if timestamps {
            write!(out, "{} ", entry.time)?;
        }
        out.write_all(entry.log.as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}

/// A signal as `kill -s` and StopSignal spell it: KILL, SIGKILL or 9.
/// `rocker wait`: blocks until each container has exited, and prints its
/// exit status, as docker does.
pub fn wait_command(args: WaitArgs) -> Result<i32> {
    let containers = open()?;
    let mut status = 0;
    for query in &args.containers {
        match containers
            .find(query)
            .and_then(|record| wait_for_exit(&containers, &record))
        {
            Ok(code) => println!("{code}"),
            Err(err) => {
                eprintln!("rocker: {err:#}");
                status = exit_status_of(&err);
            }
        }
    }
    Ok(status)
}

/// The exit status of `record`'s container once it has one. A running
/// container's monitor records the status and then exits, so waiting is
/// on its pidfd, not a poll.
fn wait_for_exit(containers: &Containers, record: &ContainerRecord) -> Result<i32> {
    loop {
        if containers.lookup(&record.id)?.is_none() {
            bail!(
                "container {} was removed (--rm) as it ended; its status is not kept",
                record.name
            );
        }
        match containers.state(&record.id)? {
            State::Exited { code, .. } | State::Restarting { code, .. } => return Ok(code),
            // Its monitor outlives the run when it may restart it: the
            // command's own end is the one to wait for.
            State::Running(live) if record.restart != RestartPolicy::No => {
                live.init.wait_exit(Duration::from_secs(3600));
                // Its monitor records the end, or the restart, next.
                std::thread::sleep(Duration::from_millis(5));
            }
            State::Running(live) => {
                live.monitor.wait_exit(Duration::from_secs(3600));
            }
            // A monitor keeps the run's live state until it has recorded
            // the end (see `monitor::run`): Stopped means it was killed.
            State::Stopped => bail!(
                "container {} ended without its monitor saying how (it was killed)",
                record.name
            ),
            State::Damaged(why) => {
                bail!("container {}'s status cannot be read: {why}", record.name)
            }
            // Being started: its monitor records the start in a moment.
            State::Created => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `rocker port CONTAINER [PORT[/PROTOCOL]]`: its published ports, as
/// docker lists them (`80/tcp -> 0.0.0.0:8080`), or the host addresses of
/// one.
pub fn port_command(args: PortArgs) -> Result<i32> {
    let record = open()?.find(&args.container)?;
    let host_side = |p: &PortMapping| match p.host_ip {
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", p.host_port),
        std::net::IpAddr::V4(ip) => format!("{ip}:{}", p.host_port),
    };
    let Some(wanted) = &args.port else {
        for p in &record.ports {
            println!("{}/{} -> {}", p.container_port, p.protocol, host_side(p));
        }
        return Ok(0);
    };
    let (port, protocol) = wanted.split_once('/').unwrap_or((wanted, "tcp"));
    let port: u16 = port
        .parse()
        .with_context(|| format!("{wanted:?} is no port: give PORT[/tcp|/udp]"))?;
    let matching: Vec<&PortMapping> = record
        .ports
        .iter()
        .filter(|p| p.container_port == port && p.protocol.to_string() == protocol)
        .collect();
    if matching.is_empty() {
        return Err(StatusError::new(
            1,
            format!(
                "no public port '{port}/{protocol}' published for {}",
                record.name
            ),
        )
        .into());
    }
    for p in matching {
        println!("{}", host_side(p));
    }
    Ok(0)
}

/// `rocker diff CONTAINER`: what it changed in its image, from its upper
/// dir, running or not.
pub fn diff_command(args: DiffArgs) -> Result<i32> {
    let containers = open()?;
    let record = containers.find(&args.container)?;
    let mut out = std::io::stdout().lock();
    for (change, path) in changes::changes(&containers.dir(&record.id))
        .with_context(|| format!("the changes of container {}", record.name))?
    {
        writeln!(out, "{} {}", change.letter(), printable(&path))?;
    }
    Ok(0)
}

/// `rocker top CONTAINER [ps OPTIONS]`: `ps` on the host (pids as the host
/// sees them), its rows cut to the processes of the container's pid
/// namespace, as docker does.
pub fn top_command(args: TopArgs) -> Result<i32> {
    let containers = open()?;
    let record = containers.find(&args.container)?;
    let live = running(&containers, &record, "list the processes of")?;
    let pids = crate::container::freeze::container_pids(live.init.pid)?;
    let options = match args.ps_options.is_empty() {
        true => vec!["-ef".to_string()],
        false => args.ps_options.clone(),
    };
    let ps = std::process::Command::new("ps")
        .args(&options)
        .output()
        .context("running ps (Debian's procps)")?;
    if !ps.status.success() {
        bail!(
            "ps {} failed: {}",
            options.join(" "),
            String::from_utf8_lossy(&ps.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&ps.stdout);
    let mut lines = text.lines();
    let header = lines.next().context("ps printed nothing")?;
    let column = header
        .split_whitespace()
        .position(|field| field == "PID")
        .with_context(|| format!("ps {} shows no PID column", options.join(" ")))?;
    // First, the pid each has inside the container (the host's follow in
    // ps's own PID column).
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<6} {header}", "CPID")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = pid.filter(|pid| pids.contains(pid)) {
            let inside = pid_inside(pid).map_or_else(|| "?".to_string(), |p| p.to_string());
            writeln!(out, "{inside:<6} {}", printable(line))?;
        }
    }
    Ok(0)
}

/// The pid host process `pid` has in its own (innermost) pid namespace:
/// the last of the `NSpid:` line of /proc/PID/status.
fn pid_inside(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// `rocker rename CONTAINER NAME`.
pub fn rename_command(args: RenameArgs) -> Result<i32> {
    let containers = open()?;
    containers.rename(&args.container, &args.name, &containers.lock()?)?;
    Ok(0)
}

/// The live processes of a container that must be running for `what`.
pub fn running(containers: &Containers, record: &ContainerRecord, what: &str) -> Result<LiveState> {
    match containers.state(&record.id)? {
        State::Running(live) => Ok(live),
        // docker's status for what its daemon refuses.
        state => Err(StatusError::new(
            1,
            format!(
                "cannot {what} container {}: it is not running ({})",
                record.name,
                state.word()
            ),
        )
        .into()),
    }
}

/// Kills the container's processes and waits until its monitor has
/// recorded the end and cleaned up, so the next command sees it exited.
fn kill_and_await(live: &LiveState) -> Result<()> {
    // A container with a cgroup is killed whole (exec'd processes too).
    if let Some(leaf) = &live.cgroup {
        cgroups::kill_all(leaf);
    }
    live.init.signal(Signal::SIGKILL)?;
    await_end(live)
}

/// Waits for PID 1 to exit (the kernel ends the rest of the container with
/// it), then for the monitor to record that; says which did not by the
/// deadline.
fn await_end(live: &LiveState) -> Result<()> {
    if !live.init.wait_exit(MONITOR_DEADLINE) {
        bail!(
            "the container's PID 1 (host pid {}) did not end within {} s",
            live.init.pid,
            MONITOR_DEADLINE.as_secs()
        );
    }
    if !live.monitor.wait_exit(MONITOR_DEADLINE) {
        bail!(
            "the container ended, but its monitor (pid {}) did not record it within {} s",
            live.monitor.pid,
            MONITOR_DEADLINE.as_secs()
        );
    }
    Ok(())
}

/// docker's way with commands over several containers: `action` on each,
/// each one named as given when done, each failure on stderr; status 125
/// if any failed.
pub fn each_container(
    queries: &[String],
    mut action: impl FnMut(&Containers, ContainerRecord) -> Result<()>,
) -> Result<i32> {
    let containers = open()?;
    let mut status = 0;
    for query in queries {
        match containers
            .find(query)
            .and_then(|record| action(&containers, record))
        {
            Ok(()) => println!("{query}"),
            Err(err) => {
                eprintln!("rocker: {err:#}");
                // docker's: 1 for a container that does not exist.
                status = exit_status_of(&err);
            }
        }
    }
    Ok(status)
}

pub fn stop_command(args: StopArgs) -> Result<i32> {
    each_container(&args.containers, |containers, record| {
        stop(containers, &record, args.time)
    })
}

/// docker's wait before SIGKILL when neither `-t` nor `--stop-timeout`
/// says.
const DEFAULT_STOP_TIMEOUT: u64 = 10;

/// The seconds `stop` waits for `record`: `-t`, else its `--stop-timeout`.
pub fn stop_time(record: &ContainerRecord, given: Option<u64>) -> u64 {
    given
        .or(record.stop_timeout)
        .unwrap_or(DEFAULT_STOP_TIMEOUT)
}

/// Stops a container: its stop signal, then SIGKILL after `time` seconds
/// (`-t`, else its `--stop-timeout`, else 10); returns once its monitor
/// has recorded the end. A container that is not running is stopped
/// already, for docker.
pub fn stop(containers: &Containers, record: &ContainerRecord, time: Option<u64>) -> Result<()> {
    let time = stop_time(record, time);
    let live = match containers.state(&record.id)? {
        State::Running(live) => live,
        State::Restarting { monitor, .. } => return end_restarts(containers, record, &monitor),
        _ => return Ok(()),
    };
    // Its restart policy yields: a stopped container stays stopped.
    containers.request_stop(&record.id)?;
    live.init.signal(record.stop_signal.0)?;
    // A paused container gets the signal once it runs again, as docker's.
    if let Some(by) = live.paused {
        freeze::unpause(live.init.pid, live.cgroup.as_deref(), by)?;
    }
    if live.init.wait_exit(Duration::from_secs(time)) {
        await_end(&live)
    } else {
        kill_and_await(&live)
    }
}

/// A container between two runs of its restart policy: its monitor is told
/// to give up, and has by the time this returns.
fn end_restarts(
    containers: &Containers,
    record: &ContainerRecord,
    monitor: &crate::container::identity::ProcessId,
) -> Result<()> {
    containers.request_stop(&record.id)?;
    if !monitor.wait_exit(MONITOR_DEADLINE) {
        bail!(
            "the monitor of container {} did not end within {} s",
            record.name,
            MONITOR_DEADLINE.as_secs()
        );
    }
    Ok(())
}

/// `rocker pause CONTAINER...`: its processes held (see `container::freeze`).
pub fn pause_command(args: PauseArgs) -> Result<i32> {
    each_container(&args.containers, |containers, record| {
        let mut live = running(containers, &record, "pause")?;
        if live.paused.is_some() {
            return Err(StatusError::new(
                1,
                format!("container {} is paused already", record.name),
            )
            .into());
        }
        live.paused = Some(freeze::pause(live.init.pid, live.cgroup.as_deref())?);
        containers.write_live_state(&record.id, &live)
    })
}

/// `rocker unpause CONTAINER...`.
pub fn unpause_command(args: PauseArgs) -> Result<i32> {
    each_container(&args.containers, |containers, record| {
        let mut live = running(containers, &record, "unpause")?;
        let Some(by) = live.paused.take() else {
            return Err(
                StatusError::new(1, format!("container {} is not paused", record.name)).into(),
            );
        };
        freeze::unpause(live.init.pid, live.cgroup.as_deref(), by)?;
        containers.write_live_state(&record.id, &live)
    })
}

pub fn kill_command(args: KillArgs) -> Result<i32> {
    let signal = parse_signal(&args.signal)?;
    each_container(&args.containers, |containers, record| {
        if let State::Restarting { monitor, .. } = containers.state(&record.id)? {
            return end_restarts(containers, &record, &monitor);
        }
        let live = running(containers, &record, "kill")?;
        containers.request_stop(&record.id)?;
        if !live.init.signal(signal)? {
            bail!("container {} exited meanwhile", record.name);
        }
        if signal == Signal::SIGKILL {
            await_end(&live)?;
        }
        Ok(())
    })
}

pub fn rm_command(args: RmArgs) -> Result<i32> {
    let containers = open()?;
    // A container whose record a power cut damaged is in no list: by its
    // id, rm still removes what is left of it.
    let mut damaged = vec![];
    let mut queries = vec![];
    for query in &args.containers {
        match (
            containers.lookup(query)?,
            containers.damaged(query).as_slice(),
        ) {
            (None, [id]) => damaged.push((query.clone(), id.clone())),
            _ => queries.push(query.clone()),
        }
    }
    let mut status = 0;
    for (query, id) in damaged {
        let lock = containers.lock()?;
        match containers.remove(&id, &lock) {
            Ok(()) => println!("{query}"),
            Err(err) => {
                eprintln!("rocker: {err:#}");
                status = exit_status_of(&err);
            }
        }
    }
    let rest = each_container(&queries, |containers, record| {
        remove(containers, &record, args.force, args.volumes)
    })?;
    Ok(if status != 0 { status } else { rest })
}

/// A container not running whose maker (the run, or the start, setting
/// it up) still runs: one being started, not a container to remove.
fn is_starting(containers: &Containers, record: &ContainerRecord, state: &State) -> bool {
    !matches!(state, State::Running(_) | State::Restarting { .. })
        && crate::rootfs::backing::container_dir::maker_alive(&containers.dir(&record.id))
}

/// Removes a container (and with `volumes` its anonymous volumes): refused
/// while it runs, unless `force`, which kills it first; refused while it is
/// being started.
fn remove(
    containers: &Containers,
    record: &ContainerRecord,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let state = containers.state(&record.id)?;
    if is_starting(containers, record, &state) {
        bail!(
            "container {} is being started: remove it once it runs (rm -f) or has failed",
            record.name
        );
    }
    if let State::Restarting { monitor, .. } = &state {
        if !force {
            bail!(
                "container {} is restarting: stop it first, or use rm -f",
                record.name
            );
        }
        end_restarts(containers, record, monitor)?;
    }
    if let State::Running(live) = state {
        if live.init.is_alive() {
            if !force {
                bail!(
                    "container {} is running: stop it first, or use rm -f",
                    record.name
                );
            }
            containers.request_stop(&record.id)?;
            kill_and_await(&live)?;
        } else {
            // Its command has ended and its monitor is recording that (an
            // `attach` or `wait` returns as soon as the command ends):
            // wait for the record, as an `rm` right after expects.
            await_end(&live)?;
        }
        // Ended with -d --rm: its monitor has removed it already.
        if containers.find(&record.id).is_err() {
            return Ok(());
        }
    }
    let lock = containers.lock()?;
    match volumes {
        true => containers.remove_with_volumes(&record.id, &lock),
        false => containers.remove(&record.id, &lock),
    }
}

pub fn prune_command() -> Result<i32> {
    for id in prune_stopped(&open()?)? {
        println!("{id}");
    }
    Ok(0)
}

/// Removes every container that is not running (or starting); their ids.
pub fn prune_stopped(containers: &Containers) -> Result<Vec<String>> {
    let mut removed = vec![];
    // Dirs of runs killed before they recorded their container.
    let lock = containers.lock()?;
    crate::rootfs::backing::container_dir::sweep_unrecorded(
        &Dirs::discover()?.data,
        image::UNRECORDED_GRACE,
    );
    drop(lock);
    // What `--rm` runs moved aside and a sweep of theirs left.
    containers.sweep_removed()?;
    for record in containers.list()? {
        let state = containers.state(&record.id)?;
        if matches!(state, State::Running(_) | State::Restarting { .. })
            || is_starting(containers, &record, &state)
        {
            continue;
        }
        let lock = containers.lock()?;
        containers.remove(&record.id, &lock)?;
        removed.push(record.id);
    }
    Ok(removed)
}

/// `inspect`: containers, and (as docker does) images for names that are
/// no container's.
pub fn inspect_command(args: ContainerInspectArgs) -> Result<i32> {
    let containers = open()?;
    let mut list = vec![];
    for query in &args.containers {
        match containers.lookup(query)? {
            Some(record) => list.push(container_report(&containers, &record)?),
            None => list.extend(
                image::image_reports(query)
                    .with_context(|| format!("no such container or image: {query}"))?,
            ),
        }
    }
    image::print_reports(&args.format, &list)?;
    Ok(0)
}

/// What `inspect` says of a container, in docker's shape.
/// GraphDriver.Data: where an overlay container's writes and layers are.
fn graph_data(containers: &Containers, record: &ContainerRecord) -> Value {
    let dir = containers.dir(&record.id);
    match record.rootfs_mode {
        RootfsKind::Directory => json!({"RootDir": record.image}),
        RootfsKind::Copy => json!({"RootDir": dir.join("rootfs")}),
        _ => json!({"UpperDir": dir.join("upper"), "WorkDir": dir.join("work")}),
    }
}

/// docker's entry for a container on a user-defined network: where it is
/// while it runs; the network's id and the aliases always.
fn network_endpoint(
    containers: &Containers,
    record: &ContainerRecord,
    connection: &crate::container::connected::Connection,
    state: &State,
) -> Value {
    let network = &connection.network;
    let aliases = &connection.aliases;
    let live = match state {
        State::Running(_) => {
            live_dir::read_endpoints(&containers.runtime_of(&record.id), &record.id)
                .into_iter()
                .find(|e| &e.network == network)
        }
        _ => None,
    };
    let network_id = live.as_ref().map(|e| e.network_id.clone()).or_else(|| {
        crate::network::networks::Networks::open(containers.data())
            .and_then(|n| n.get(network))
            .ok()
            .flatten()
            .map(|n| n.id)
    });
    let names = crate::network::networks::dns_names(&record.name, aliases, &record.id);
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": (!aliases.is_empty()).then_some(aliases),
        "MacAddress": live.as_ref().map(|e| e.mac.clone()).unwrap_or_default(),
        "NetworkID": network_id.unwrap_or_default(),
        "EndpointID": live.as_ref().map(|e| format!("{}-{}", &e.network_id[..12], &e.container_id[..12])).unwrap_or_default(),
        "Gateway": live.as_ref().and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": live.as_ref().map(|e| e.address.to_string()).unwrap_or_default(),
        "IPPrefixLen": live.as_ref().map_or(0, |e| e.prefix),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": live.is_some().then_some(names),
    })
}

fn container_report(containers: &Containers, record: &ContainerRecord) -> Result<Value> {
    let (status, state) = containers.status_and_state(&record.id);
    // docker's maps: "80/tcp" -> [{HostIp, HostPort}], the port a string.
    let mut ports = serde_json::Map::new();
    let mut bindings = serde_json::Map::new();
    for p in &record.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let binding = json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()});
        for map in [&mut ports, &mut bindings] {
            if let Some(list) = map
                .entry(key.clone())
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                list.push(binding.clone());
            }
        }
    }
    // docker's zero time for what has not happened.
    let time_or_zero = |at: Option<u64>| match at {
        Some(at) => time::rfc3339(at),
        None => "0001-01-01T00:00:00Z".to_string(),
    };
    let mounts: Vec<_> = record
        .mounts
        .iter()
        .map(|m| {
            let mut mount = json!({
                "Type": m.kind,
                "Source": m.source.clone().unwrap_or_default(),
                "Destination": m.destination,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
                "Propagation": "rprivate",
            });
            // docker's volume entries: named, driven, not propagated.
            if let Some(name) = &m.name {
                mount["Name"] = json!(name);
                mount["Driver"] = json!("local");
                mount["Propagation"] = json!("");
            }
            mount
        })
        .collect();
    // docker's Binds: the -v forms of the binds and named volumes.
    let binds: Vec<String> = record
        .mounts
        .iter()
        .filter(|m| m.kind != MountKind::Tmpfs)
        .filter(|m| !m.anonymous)
        .map(|m| {
            let source = m
                .name
                .clone()
                .or_else(|| m.source.clone())
                .unwrap_or_default();
            let mode = if m.read_only { ":ro" } else { "" };
            format!("{source}:{}{mode}", m.destination)
        })
        .collect();
    let etc = containers.live_dir(&record.id).join("etc");
    let flags = &record.flags;
    let network_name = match &record.network {
        crate::network::NetworkMode::Slirp4netns(_) => "slirp4netns",
        crate::network::NetworkMode::Host => "host",
        crate::network::NetworkMode::None => "none",
        crate::network::NetworkMode::Bridge { network, .. } => network,
        crate::network::NetworkMode::Container { .. } => "",
        crate::network::NetworkMode::Pasta { .. } => "pasta",
    };
    let (gateway, prefix) = match &record.network {
        crate::network::NetworkMode::Slirp4netns(options) => {
            (options.gateway().to_string(), options.cidr.prefix)
        }
        _ => (String::new(), 0),
    };
    let networks: serde_json::Map<String, Value> = match &record.network {
        crate::network::NetworkMode::Bridge { network, .. } => {
            let dir = containers.dir(&record.id);
            let mut on = vec![crate::container::connected::Connection {
                network: network.clone(),
                aliases: flags.network_aliases.clone(),
            }];
            on.extend(crate::container::connected::read(&dir).unwrap_or_default());
            on.iter()
                .map(|c| {
                    let entry = network_endpoint(containers, record, c, &state);
                    (c.network.clone(), entry)
                })
                .collect()
        }
        // docker lists no network of its own for a shared one.
        crate::network::NetworkMode::Container { .. } => serde_json::Map::new(),
        _ => serde_json::Map::from_iter([(
            network_name.to_string(),
            json!({
                "IPAMConfig": null,
                "Links": null,
                "Aliases": null,
                "NetworkID": network_name,
                "EndpointID": "",
                "Gateway": gateway,
                "IPAddress": record.ip_address.clone().unwrap_or_default(),
                "IPPrefixLen": prefix,
                "MacAddress": "",
            }),
        )]),
    };
    let volumes: serde_json::Map<String, Value> = record
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Volume)
        .map(|m| (m.destination.clone(), json!({})))
        .collect();
    let (restart_name, retries) = match record.restart {
        RestartPolicy::OnFailure(limit) => ("on-failure", limit.unwrap_or(0)),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        RestartPolicy::No => ("no", 0),
    };
    let host_config = json!({
        "Memory": record.limits.memory.unwrap_or(0),
        "MemorySwap": record.limits.memory_swap.unwrap_or(0),
        "MemoryReservation": record.limits.memory_reservation.unwrap_or(0),
        "NanoCpus": record.limits.cpus.map_or(0, |cpus| (cpus * 1e9) as u64),
        "CpuWeight": record.limits.cpu_weight.unwrap_or(0),
        "PidsLimit": record.limits.pids.unwrap_or(0),
        "AutoRemove": record.auto_remove,
        "Binds": (!binds.is_empty()).then_some(binds),
        "ContainerIDFile": flags.cidfile.clone().unwrap_or_default(),
        "CapAdd": (!flags.cap_add.is_empty()).then_some(&flags.cap_add),
        "CapDrop": (!flags.cap_drop.is_empty()).then_some(&flags.cap_drop),
        "Dns": flags.dns,
        "DnsOptions": flags.dns_options,
        "DnsSearch": flags.dns_search,
        "ExtraHosts": (!flags.extra_hosts.is_empty()).then_some(&flags.extra_hosts),
        "GroupAdd": (!flags.group_add.is_empty()).then_some(&flags.group_add),
        "Devices": flags.devices.iter().map(|text| {
            let mut parts = text.splitn(3, ':');
            let host = parts.next().unwrap_or_default();
            let inside = parts.next().unwrap_or(host);
            json!({
                "PathOnHost": host,
                "PathInContainer": inside,
                "CgroupPermissions": parts.next().unwrap_or("rwm"),
            })
        }).collect::<Vec<_>>(),
        "Ulimits": (!flags.ulimits.is_empty()).then(|| flags.ulimits.iter().map(|text| {
            let (name, limits) = text.split_once('=').unwrap_or((text, ""));
            let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
            json!({
                "Name": name,
                "Soft": soft.parse::<i64>().unwrap_or(-1),
                "Hard": hard.parse::<i64>().unwrap_or(-1),
            })
        }).collect::<Vec<_>>()),
        "Privileged": record.security.privileged,
        "PublishAllPorts": false,
        "ReadonlyRootfs": flags.read_only,
        "SecurityOpt": (!record.security.security_opt.is_empty())
            .then_some(&record.security.security_opt),
        "UsernsMode": "",
        "ShmSize": flags.shm_size.unwrap_or(64 << 20),
        "Init": flags.init,
        "OomKillDisable": flags.oom_kill_disable,
        "CpuShares": 0,
        "NetworkMode": record.network.to_string(),
        "IpcMode": if record.host_namespaces.ipc { "host" } else { "private" },
        "UTSMode": if record.host_namespaces.uts { "host" } else { "" },
        "PidMode": if record.host_namespaces.pid { "host" } else { "" },
        "PortBindings": bindings,
        "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": retries},
        "LogConfig": {
            "Type": match record.log_driver {
                LogDriver::JsonFile => "json-file",
                LogDriver::None => "none",
            },
            "Config": {},
        },
    });
    Ok(json!({
        "Id": record.id,
        // docker's names start with a slash.
        "Name": format!("/{}", record.name),
        "Created": time::rfc3339(record.created),
        "RestartCount": status.restart_count,
        "Image": record.image_id.clone().unwrap_or_default(),
        "ImageName": record.image,
        "Path": record.command.first(),
        "Args": record.command.get(1..).unwrap_or_default(),
        "ResolvConfPath": etc.join("resolv.conf"),
        "HostnamePath": etc.join("hostname"),
        "HostsPath": etc.join("hosts"),
        "Driver": record.rootfs_mode,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "GraphDriver": {
            "Name": record.rootfs_mode,
            "Data": graph_data(containers, record),
        },
        "Config": {
            "Image": record.image,
            "Hostname": record.hostname,
            "Domainname": "",
            "User": record.user.to_string(),
            "AttachStdin": flags.open_stdin && !record.detached,
            "AttachStdout": !record.detached,
            "AttachStderr": !record.detached,
            "OpenStdin": flags.open_stdin,
            "StdinOnce": flags.open_stdin && !record.detached,
            "Env": record.env,
            "Cmd": record.command,
            "Entrypoint": null,
            "OnBuild": null,
            "Volumes": (!volumes.is_empty()).then_some(volumes),
            "WorkingDir": record.working_dir,
            "Tty": record.tty,
            "StopSignal": record.stop_signal.to_string(),
            "StopTimeout": record.stop_timeout,
            "Labels": record.labels,
            "ExposedPorts": (!record.exposed_ports.is_empty()).then(|| {
                record
                    .exposed_ports
                    .iter()
                    .map(|port| (port.clone(), json!({})))
                    .collect::<serde_json::Map<String, Value>>()
            }),
        },
        "State": {
            "Status": state.word(),
            "Running": matches!(state, State::Running(_)),
            "Paused": matches!(&state, State::Running(live) if live.paused.is_some()),
            "Restarting": matches!(state, State::Restarting { .. }),
            "PausedBy": match &state {
                State::Running(live) => live.paused,
                _ => None,
            },
            "Pid": pid(&state),
            "ExitCode": exit_code(&state).unwrap_or(0),
            "StartedAt": time_or_zero(status.started),
            "FinishedAt": time_or_zero(status.finished),
            "OOMKilled": status.oom_killed,
            "Dead": matches!(state, State::Damaged(_)),
            "Error": match &state {
                State::Damaged(why) => why.clone(),
                _ => String::new(),
            },
            "CgroupPath": match &state {
                State::Running(live) => live.cgroup.clone(),
                _ => None,
            },
        },
        "Mounts": mounts,
        "NetworkSettings": {
            "Mode": record.network.to_string(),
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Gateway": gateway,
            "IPAddress": record.ip_address.clone().unwrap_or_default(),
            "IPPrefixLen": prefix,
            "MacAddress": "",
            "Ports": ports,
            "Networks": networks,
        },
        "HostConfig": host_config,
        "Rootfs": record.rootfs_mode,
        "LogPath": record.detached.then(|| containers.log_path(&record.id)),
    }))
}
