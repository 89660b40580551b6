//! `rocker stats`: what running containers use, read from their cgroups
//! (cpu.stat, memory.current and memory.max, pids.current), as docker
//! stats shows it. CPU % is the CPU time used between two readings a second
//! apart, over that second (100% is one CPU).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::cgroups;
use crate::cli::args::{Format, StatsArgs};
use crate::commands::output::write_table;
use crate::container::record::{Containers, State};
use crate::host::dirs::Dirs;

const INTERVAL: Duration = Duration::from_secs(1);

/// One container's use, as `--format json` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Usage {
    id: String,
    name: String,
    /// None for a container without a cgroup of its own (no limits).
    cpu_percent: Option<f64>,
    memory_usage: Option<u64>,
    /// None when unlimited.
    memory_limit: Option<u64>,
    pids: Option<u64>,
}

/// A container being watched: its cgroup and the previous CPU reading.
struct Watched {
    id: String,
    name: String,
    cgroup: Option<PathBuf>,
    cpu_usec: Option<u64>,
    at: Instant,
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn cpu_usec(cgroup: &Path) -> Option<u64> {
    cgroups::keyed_value(cgroup, "cpu.stat", "usage_usec")
}

impl Watched {
    /// Reads the counters now; CPU % is over the time since the last read.
    fn read(&mut self) -> Usage {
        let now = Instant::now();
        let cgroup = self.cgroup.as_deref();
        let cpu = cgroup.and_then(cpu_usec);
        let cpu_percent = match (self.cpu_usec, cpu) {
            (Some(before), Some(after)) => {
                let wall = now.duration_since(self.at).as_micros().max(1) as f64;
                Some(after.saturating_sub(before) as f64 / wall * 100.0)
            }
            _ => None,
        };
        self.cpu_usec = cpu;
        self.at = now;
        Usage {
            id: self.id.clone(),
            name: self.name.clone(),
            cpu_percent,
            memory_usage: cgroup.and_then(|c| read_number(&c.join("memory.current"))),
            memory_limit: cgroup.and_then(|c| read_number(&c.join("memory.max"))),
            pids: cgroup.and_then(|c| read_number(&c.join("pids.current"))),
        }
    }
}

pub fn stats_command(args: StatsArgs) -> Result<i32> {
    let containers = Containers::open(&Dirs::discover()?)?;
    let records = match args.containers.is_empty() {
        true => containers.list()?,
        false => args
            .containers
            .iter()
            .map(|query| containers.find(query))
            .collect::<Result<_>>()?,
    };
    let mut watched = vec![];
    for record in records {
        match containers.state(&record.id)? {
            State::Running(live) => watched.push(Watched {
                id: record.id,
                name: record.name,
                cgroup: live.cgroup,
                cpu_usec: None,
                at: Instant::now(),
            }),
            state if !args.containers.is_empty() => anyhow::bail!(
                "container {} is not running ({})",
                record.name,
                state.word()
            ),
            _ => {}
        }
    }
    // The first reading only starts the CPU clock.
    for container in &mut watched {
        container.read();
    }
    let clear = !args.no_stream && args.format == Format::Text && std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(INTERVAL);
        let usage: Vec<Usage> = watched.iter_mut().map(Watched::read).collect();
        let mut out = std::io::stdout().lock();
        if clear {
            write!(out, "\x1b[H\x1b[2J")?;
        }
        match &args.format {
            Format::Json if args.no_stream => {
                writeln!(out, "{}", serde_json::to_string_pretty(&usage)?)?
            }
            Format::Json => writeln!(out, "{}", serde_json::to_string(&usage)?)?,
            Format::Template(template) => {
                let rows: Vec<serde_json::Value> = usage.iter().map(docker_row).collect();
                crate::commands::template::Formatter::new(template)?.write_all(&mut out, &rows)?
            }
            Format::Text => write_usage_table(&mut out, &usage)?,
        }
        out.flush()?;
        if args.no_stream {
            return Ok(0);
        }
        // Containers that ended drop out (with a cgroup or without one);
        // stop when none is left.
        watched.retain(|c| {
            c.cgroup.as_deref().is_none_or(Path::exists)
                && matches!(containers.state(&c.id), Ok(State::Running(_)))
        });
        if watched.is_empty() {
            return Ok(0);
        }
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1}MiB", bytes as f64 / (1 << 20) as f64)
}

/// One container's reading as the table shows it: id, name, CPU %,
/// memory use / limit, memory %, pids.
fn cells(u: &Usage) -> [String; 6] {
    let unknown = || "--".to_string();
    let memory = match (u.memory_usage, u.memory_limit) {
        (Some(used), Some(limit)) => format!("{} / {}", mebibytes(used), mebibytes(limit)),
        (Some(used), None) => format!("{} / unlimited", mebibytes(used)),
        _ => unknown(),
    };
    let memory_percent = match (u.memory_usage, u.memory_limit) {
        (Some(used), Some(limit)) if limit > 0 => {
            format!("{:.2}%", used as f64 / limit as f64 * 100.0)
        }
        _ => unknown(),
    };
    [
        u.id[..12].to_string(),
        u.name.clone(),
        u.cpu_percent.map_or_else(unknown, |p| format!("{p:.2}%")),
        memory,
        memory_percent,
        u.pids.map_or_else(unknown, |p| p.to_string()),
    ]
}

/// The fields of docker's `stats --format`.
fn docker_row(u: &Usage) -> serde_json::Value {
    let [id, name, cpu, memory, memory_percent, pids] = cells(u);
    serde_json::json!({
        "ID": id,
        "Container": id,
        "Name": name,
        "CPUPerc": cpu,
        "MemUsage": memory,
        "MemPerc": memory_percent,
        "PIDs": pids,
    })
}

fn write_usage_table(out: &mut impl Write, usage: &[Usage]) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = usage.iter().map(|u| cells(u).to_vec()).collect();
    write_table(
        out,
        &[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "PIDS",
        ],
        &rows,
    )
}
