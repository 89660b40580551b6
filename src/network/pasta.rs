//! pasta (Debian's `passt` package): the other user-mode network, which
//! podman 5 made its default. Where slirp4netns gives the container a
//! network of its own behind a NAT (10.0.2.0/24), pasta copies the host's
//! addresses and routes into the container's namespace and translates its
//! sockets to the host's one for one.
//!
//! The discipline is slirp4netns's: rocker starts it in the foreground (so
//! it stays rocker's child, with a parent-death signal), learns it is ready
//! when it writes its pid file (a pipe only rocker reads, written once the
//! interface is configured), publishes ports with its own `-t`/`-u`
//! options, and kills it when the container ends. pasta 2023-03 does not
//! quit by itself when a namespace named through /proc ends, so that kill
//! is what ends it.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};

use super::ports::{PortMapping, Protocol};
use crate::host::which;
use crate::util::wait;

/// How long pasta may take to configure the interface.
const READY_DEADLINE: Duration = Duration::from_secs(10);
const LOG_FILE: &str = "pasta.log";

/// A running pasta; dropping it ends it.
pub struct Pasta {
    child: Child,
}

/// `--network pasta:OPT,OPT...`: pasta's own options, as podman takes
/// them (`pasta:--mtu,1500`), after rocker's.
pub fn parse_options(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|option| !option.is_empty())
        .map(str::to_string)
        .collect()
}

/// The gateway a pasta container sees: the host's own default gateway
/// (pasta copies the host's routes), which reaches the host itself when
/// pasta maps it (`allow_host_loopback=true`). From /proc/net/route, whose
/// addresses are hexadecimal in the kernel's byte order.
pub fn host_gateway() -> Option<std::net::Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "00000000", gateway, ..] => {
                let raw = u32::from_str_radix(gateway, 16).ok()?;
                Some(std::net::Ipv4Addr::from(raw.to_le_bytes()))
            }
            _ => None,
        }
    })
}

/// pasta's spelling of a published port: `[ADDRESS/]PORT:TARGET`.
fn port_spec(port: &PortMapping) -> String {
    match port.host_ip {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            format!("{}:{}", port.host_port, port.container_port)
        }
        ip => format!("{ip}/{}:{}", port.host_port, port.container_port),
    }
}

impl Pasta {
    /// Starts pasta for the network namespace of the container whose PID 1
    /// is `pid` and returns once the interface is configured and `ports`
    /// are bound. `allow_host_loopback` lets the gateway reach the host's
    /// 127.0.0.1, as slirp4netns's option does; `extra` are the user's
    /// options.
    pub fn start(
        pid: Pid,
        ports: &[PortMapping],
        allow_host_loopback: bool,
        extra: &[String],
        live_dir: &Path,
    ) -> Result<Pasta> {
        let program = which::find_in_path("pasta").context(
            "pasta is not installed: sudo apt-get install passt \
             (or use the default network, slirp4netns)",
        )?;
        let (ready_read, ready_write) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
        let log_path = live_dir.join(LOG_FILE);
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(&program);
        command.args(["--foreground", "--config-net", "--quiet"]);
        // Nothing forwarded but what -p asks for, either way.
        command.args(["-T", "none", "-U", "none"]);
        let (tcp, udp): (Vec<&PortMapping>, Vec<&PortMapping>) =
            ports.iter().partition(|p| p.protocol == Protocol::Tcp);
        for (flag, list) in [("-t", tcp), ("-u", udp)] {
            match list.is_empty() {
                true => command.args([flag, "none"]),
                false => command.args(list.iter().flat_map(|p| [flag.to_string(), port_spec(p)])),
            };
        }
        if !allow_host_loopback {
            command.arg("--no-map-gw");
        }
        command
            .arg("--pid")
            .arg(format!("/proc/self/fd/{}", ready_write.as_raw_fd()))
            .args(extra)
            .arg("--netns")
            .arg(format!("/proc/{pid}/ns/net"))
            .arg("--userns")
            .arg(format!("/proc/{pid}/ns/user"))
            .current_dir(live_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log fd")?)
            .stderr(log);
        crate::sys::inherit_fds_on_spawn(&mut command, vec![ready_write.as_raw_fd()], None);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        // Only pasta may hold the write end: its death reads as end of file.
        drop(ready_write);
        let mut pasta = Pasta { child };
        // pasta writes its pid once the interface is up and the ports bound.
        wait::helper_ready(&mut pasta.child, ready_read, READY_DEADLINE, "pasta").map_err(
            |err| {
                // pasta's own words for a port it could not bind are terse.
                if let Some(why) = ports.iter().find_map(super::ports::why_unbindable) {
                    return anyhow::anyhow!("cannot publish a port through pasta: {why}");
                }
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let detail: Vec<&str> = log
                    .lines()
                    .filter(|line| !line.contains("syslog") && !line.trim().is_empty())
                    .collect();
                match detail.is_empty() {
                    true => err,
                    false => err.context(format!("pasta says: {}", detail.join("; "))),
                }
            },
        )?;
        Ok(pasta)
    }
}

impl Drop for Pasta {
    /// Kills it, without waiting out the kernel's teardown of its tap
    /// device (see `slirp`): reaped here if it is gone already, otherwise
    /// by whoever inherits it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.try_wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_in_pastas_spelling() {
        let one = |text: &str| port_spec(&crate::network::ports::parse(text).unwrap()[0]);
        assert_eq!(one("8080:80"), "8080:80");
        assert_eq!(one("127.0.0.1:8080:80"), "127.0.0.1/8080:80");
        assert_eq!(one("[::1]:8080:80"), "::1/8080:80");
        assert_eq!(parse_options("--mtu,1500,,-4"), ["--mtu", "1500", "-4"]);
    }
}
