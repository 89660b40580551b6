//! slirp4netns: a user-mode TCP/IP stack on the host side of a tap device
//! in the container's network namespace. rocker starts it (with
//! `std::process`) once the id maps are written, waits on its ready fd
//! (or, when the command need not wait for it, watches that fd while the
//! container runs: `spawn`, `wait::Awaited`), publishes ports through its
//! API socket, and stops it when the container ends. It cannot outlive
//! rocker: it exits when its exit fd (whose other end only rocker holds)
//! closes, and gets SIGKILL when rocker dies.
//!
//! rocker does not wait for it to finish exiting: closing the tap device
//! makes the kernel wait out RCU grace periods and unregister the
//! interface, 15-20 ms that would otherwise be added to every run (podman
//! does not wait either). A dying slirp4netns is reaped by whoever inherits
//! it once rocker exits, the user's session manager or init.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{pipe2, Pid};

use super::ports::PortMapping;
use super::SlirpOptions;
use crate::host::which;
use crate::util::wait::{self, Awaited};

/// How long slirp4netns may take to configure the interface.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// The API socket, relative to the container's live dir: a unix socket path
/// must fit in 108 bytes, which a full path under the runtime dir may not.
const API_SOCKET: &str = "slirp.sock";
const LOG_FILE: &str = "slirp4netns.log";
/// Where the features of the installed slirp4netns are remembered.
const FEATURES_CACHE: &str = "slirp4netns-features";
/// The interface the container sees.
pub const INTERFACE: &str = "eth0";

/// The network namespace slirp4netns serves.
pub enum Target<'a> {
    /// A container's: slirp4netns configures its tap device as the
    /// container's eth0. `root_mapped` says whether the container's user
    /// namespace maps uid and gid 0: slirp4netns's sandbox (a mount
    /// namespace of its own, pivoted into an empty root) becomes root there
    /// to make itself, and cannot where it is not.
    ///
    /// With the sandbox, slirp4netns is started inside the container's
    /// user namespace (`user`, as podman starts it inside its own) and
    /// finds the network namespace by descriptor (`net`); it then never
    /// looks the container up by `pid`. Otherwise its sandbox would open
    /// `/proc/PID/ns/user` only after the interface is configured, by
    /// which time a container started on its default route (see
    /// `network::starts_on_default_route`) may have made itself
    /// non-dumpable, or exited. Without the sandbox only its configuring
    /// child joins, through `pid`, before it configures anything, and
    /// slirp4netns holds no capability over the container.
    ///
    /// `publishes` says whether ports will be published through its API
    /// socket; without, it gets none, so that nothing of it appears in the
    /// live dir after rocker stopped waiting for it (a command that fails
    /// at once has its live dir removed while slirp4netns still starts).
    Container {
        pid: Pid,
        root_mapped: bool,
        user: BorrowedFd<'a>,
        net: BorrowedFd<'a>,
        publishes: bool,
    },
    /// One this process is privileged over (rocker's network namespace,
    /// from inside its user namespace), by descriptor; the tap device
    /// `tap` is left unconfigured for a bridge to take.
    Bridge { netns: BorrowedFd<'a>, tap: &'a str },
}

pub struct Slirp {
    child: Child,
    /// Closing this ends slirp4netns.
    exit_fd: Option<OwnedFd>,
    live_dir: PathBuf,
    /// Its ready pipe, until it has answered on it (by `ready_by`).
    ready: Option<OwnedFd>,
    ready_by: Instant,
}

/// slirp4netns's confinement (0.4.0 and later): libslirp has had
/// memory-safety bugs, so confine it where we can.
const HARDENING_FLAGS: [&str; 2] = ["--enable-sandbox", "--enable-seccomp"];

/// The hardening flags this slirp4netns knows.
fn known_hardening_flags(program: &Path, runtime: &Path) -> Vec<&'static str> {
    let identity = std::fs::metadata(program)
        .map(|m| {
            format!(
                "{} {} {}\n",
                program.display(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000,
                m.size()
            )
        })
        .unwrap_or_default();
    let cache = runtime.join(FEATURES_CACHE);
    let known = match std::fs::read_to_string(&cache) {
        Ok(text) if !identity.is_empty() && text.starts_with(&identity) => {
            text[identity.len()..].to_string()
        }
        _ => {
            // A hung --help costs the hardening flags, not the run.
            let mut help = Command::new(program);
            help.arg("--help");
            let help = crate::util::wait::helper_output(&mut help, Duration::from_secs(3))
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default();
            let flags: Vec<&str> = HARDENING_FLAGS
                .into_iter()
                .filter(|flag| help.contains(flag))
                .collect();
            let text = flags.join(" ");
            // A failed write only costs the next run another --help.
            let _ = crate::util::fs::write_atomic(
                &cache,
                format!("{identity}{text}").as_bytes(),
                0o600,
            );
            text
        }
    };
    HARDENING_FLAGS
        .into_iter()
        .filter(|flag| known.split_whitespace().any(|k| k == *flag))
        .collect()
}

/// /dev/net/tun must be usable for slirp4netns to make the tap device;
/// say so plainly rather than pass on its terse error.
fn check_tun() -> Result<()> {
    match open(
        "/dev/net/tun",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(_) => Ok(()),
        Err(errno) => bail!(
            "slirp4netns needs /dev/net/tun, which cannot be opened ({errno}); \
             desktop distributions make it mode 0666 (sudo chmod 0666 /dev/net/tun), \
             or run with --network none"
        ),
    }
}

impl Slirp {
    /// Starts slirp4netns for the network namespace `target` and returns
    /// once its tap device is there (and configured, for a container).
    /// Its API socket and log go into `live_dir`.
    pub fn start(
        target: Target<'_>,
        options: &SlirpOptions,
        runtime: &Path,
        live_dir: &Path,
    ) -> Result<Slirp> {
        let mut slirp = Slirp::spawn(target, options, runtime, live_dir)?;
        slirp.wait_until_ready()?;
        Ok(slirp)
    }

    /// Starts slirp4netns as `start` does, without waiting for it: see
    /// `wait_until_ready`, and `Awaited` for the monitor's watch.
    pub fn spawn(
        target: Target<'_>,
        options: &SlirpOptions,
        runtime: &Path,
        live_dir: &Path,
    ) -> Result<Slirp> {
        let program = which::find_in_path("slirp4netns").context(
            "slirp4netns is not installed, and containers get their network from it: \
             sudo apt-get install slirp4netns (or run with --network none for no network)",
        )?;
        check_tun()?;
        let (ready_read, ready_write) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
        let (exit_read, exit_write) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
        let log_path = live_dir.join(LOG_FILE);
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;

        let root_mapped = match target {
            Target::Container { root_mapped, .. } => root_mapped,
            Target::Bridge { .. } => true,
        };
        let hardening: Vec<&str> = known_hardening_flags(&program, runtime)
            .into_iter()
            .filter(|flag| root_mapped || *flag != "--enable-sandbox")
            .collect();
        let sandboxed = hardening.contains(&"--enable-sandbox");
        let mut command = Command::new(&program);
        let mut inherited = vec![ready_write.as_raw_fd(), exit_read.as_raw_fd()];
        let mut user_namespace = None;
        match target {
            Target::Container { user, net, .. } if sandboxed => {
                inherited.push(net.as_raw_fd());
                user_namespace = Some(user.as_raw_fd());
                command.args(["--configure", "--netns-type=path"]).args([
                    format!("/proc/self/fd/{}", net.as_raw_fd()),
                    INTERFACE.into(),
                ])
            }
            Target::Container { pid, .. } => command
                .arg("--configure")
                .args([pid.to_string(), INTERFACE.into()]),
            Target::Bridge { netns, tap } => {
                inherited.push(netns.as_raw_fd());
                command.arg("--netns-type=path").args([
                    format!("/proc/self/fd/{}", netns.as_raw_fd()),
                    tap.to_string(),
                ])
            }
        };
        command
            .arg(format!("--mtu={}", options.mtu))
            .arg(format!("--cidr={}", options.cidr))
            .arg(format!("--ready-fd={}", ready_write.as_raw_fd()))
            .arg(format!("--exit-fd={}", exit_read.as_raw_fd()))
            .args(hardening);
        if !matches!(
            target,
            Target::Container {
                publishes: false,
                ..
            }
        ) {
            command.arg(format!("--api-socket={API_SOCKET}"));
        }
        if !options.allow_host_loopback {
            command.arg("--disable-host-loopback");
        }
        if options.enable_ipv6 {
            command.arg("--enable-ipv6");
        }
        command
            .current_dir(live_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log fd")?)
            .stderr(log);
        crate::sys::inherit_fds_on_spawn(&mut command, inherited, user_namespace);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        // Only slirp4netns may hold these ends: then its death reads as
        // end of file on the ready pipe.
        drop(ready_write);
        drop(exit_read);
        Ok(Slirp {
            child,
            exit_fd: Some(exit_write),
            live_dir: live_dir.to_path_buf(),
            ready: Some(ready_read),
            ready_by: Instant::now() + READY_DEADLINE,
        })
    }

    /// Waits until slirp4netns is ready (it has configured the interface,
    /// built its sandbox and installed its filter), or fails.
    pub fn wait_until_ready(&mut self) -> Result<()> {
        let Some((ready, by)) = self.pending() else {
            return Ok(());
        };
        let left = by.saturating_duration_since(Instant::now());
        let answered = wait::readable(ready, left).context("waiting for slirp4netns")?;
        self.settle(answered)
    }

    /// `err`, with what slirp4netns wrote in its log.
    fn with_its_log(&self, err: anyhow::Error) -> anyhow::Error {
        let log = std::fs::read_to_string(self.live_dir.join(LOG_FILE)).unwrap_or_default();
        let detail: Vec<&str> = log
            .lines()
            .filter(|line| !line.contains("seccomp is experimental"))
            .collect();
        match detail.is_empty() {
            true => err,
            false => err.context(format!("slirp4netns says: {}", detail.join("; "))),
        }
    }

    /// Publishes `port` on the host, to `guest` (or the container's
    /// address, as slirp4netns configured it); its host side is bound on
    /// return. Returns the forward's id, which `unpublish` takes.
    pub fn publish(&self, port: &PortMapping, guest: Option<Ipv4Addr>) -> Result<u64> {
        let mut request = serde_json::json!({
            "execute": "add_hostfwd",
            "arguments": {
                "proto": port.protocol.to_string(),
                "host_addr": port.host_ip.to_string(),
                "host_port": port.host_port,
                "guest_port": port.container_port,
            }
        });
        if let Some(guest) = guest {
            request["arguments"]["guest_addr"] = guest.to_string().into();
        }
        let reply = self
            .call(&request)
            .with_context(|| format!("publishing {port} through slirp4netns"))?;
        if let Some(error) = reply.get("error") {
            let desc = error["desc"].as_str().unwrap_or("no reason given");
            bail!(
                "cannot publish {port}: {} (slirp4netns: {desc})",
                super::ports::why_unbindable(port).unwrap_or("slirp4netns refused it".into())
            );
        }
        reply["return"]["id"]
            .as_u64()
            .with_context(|| format!("slirp4netns published {port} without an id: {reply}"))
    }

    /// Ends the forward `id`, freeing its host port.
    pub fn unpublish(&self, id: u64) -> Result<()> {
        let request = serde_json::json!({
            "execute": "remove_hostfwd",
            "arguments": { "id": id }
        });
        let reply = self
            .call(&request)
            .with_context(|| format!("ending port forward {id} of slirp4netns"))?;
        match reply.get("error") {
            Some(error) => bail!("slirp4netns kept port forward {id}: {error}"),
            None => Ok(()),
        }
    }

    /// One request over the API socket: the request, then the reply until
    /// slirp4netns closes the connection.
    fn call(&self, request: &serde_json::Value) -> Result<serde_json::Value> {
        let dir = open(
            &self.live_dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", self.live_dir.display()))?;
        // Through the directory's fd, the path stays short however deep
        // the runtime dir is.
        let path = format!("/proc/self/fd/{}/{API_SOCKET}", dir.as_raw_fd());
        let mut stream = UnixStream::connect(&path).context("connecting to the API socket")?;
        stream.set_read_timeout(Some(READY_DEADLINE))?;
        stream.write_all(request.to_string().as_bytes())?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .context("reading the reply")?;
        serde_json::from_str(&reply).with_context(|| format!("a reply that is not JSON: {reply:?}"))
    }
}

/// A container's command may start before slirp4netns is ready (see
/// `network::starts_on_default_route`); its monitor then watches it thus.
impl Awaited for Slirp {
    /// While slirp4netns has not said it is ready: the descriptor that
    /// becomes readable when it does (or dies), and by when it must.
    fn pending(&self) -> Option<(BorrowedFd<'_>, Instant)> {
        self.ready.as_ref().map(|fd| (fd.as_fd(), self.ready_by))
    }

    /// Once `pending`'s descriptor is readable (`answered`) or its time
    /// has come: Ok if slirp4netns said it is ready, else why not.
    fn settle(&mut self, answered: bool) -> Result<()> {
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        let answered = match answered {
            true => wait::helper_has_answered(&mut self.child, ready, "slirp4netns"),
            false => Err(anyhow::anyhow!(
                "slirp4netns did not configure the network within {} s",
                READY_DEADLINE.as_secs()
            )),
        };
        answered.map_err(|err| self.with_its_log(err))
    }
}

impl Drop for Slirp {
    /// Closes the exit fd: slirp4netns then exits on its own, and if the
    /// monitor exits first, its parent-death signal finishes it.
    fn drop(&mut self) {
        drop(self.exit_fd.take());
        // Reaped here if it is already gone; otherwise see the module doc.
        let _ = self.child.try_wait();
    }
}
