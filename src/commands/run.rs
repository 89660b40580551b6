//! `rocker run`: turns the command line into a `ContainerSpec` and hands it
//! to the monitor. Running an image will fill the same spec from the image
//! config first and let these options override it.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::{Network, RunArgs};
use crate::dirs::Dirs;
use crate::options::{self, Environment};
use crate::program::DEFAULT_PATH;
use crate::spec::{ContainerSpec, NetworkMode, ProcessSpec};
use crate::{inroot, monitor, users};

/// The largest /etc/passwd or /etc/group rocker reads from a rootfs.
const ACCOUNT_FILE_LIMIT: u64 = 4 << 20;

pub fn run(args: RunArgs) -> Result<i32> {
    let spec = build_spec(args)?;
    monitor::run(&spec, &Dirs::discover()?)
}

fn build_spec(args: RunArgs) -> Result<ContainerSpec> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rootfs = root_directory(&options::absolute(&args.rootfs, &cwd))?;

    let mut mounts = vec![];
    for volume in &args.volumes {
        mounts.push(options::parse_volume(volume, &cwd)?);
    }
    for tmpfs in &args.tmpfs {
        mounts.push(options::parse_tmpfs(tmpfs)?);
    }

    let user_spec = args.user.as_deref().map(options::parse_user).transpose()?;
    let read = |path| {
        inroot::read_to_string(&rootfs, path, ACCOUNT_FILE_LIMIT)
            .with_context(|| format!("reading {path} in the rootfs {}", rootfs.display()))
    };
    let user = users::resolve(
        user_spec.as_ref(),
        read("/etc/passwd")?.as_deref(),
        read("/etc/group")?.as_deref(),
    )?;

    let id = new_container_id()?;
    let hostname = args.hostname.unwrap_or_else(|| id[..12].to_string());
    if hostname.is_empty() || hostname.len() > 64 || hostname.contains(['\0', '/', ' ']) {
        bail!("invalid hostname {hostname:?}: up to 64 characters, no spaces or slashes");
    }

    // docker's order: defaults, then --env-file, then -e; later wins.
    let mut env = Environment::default();
    env.set("PATH", DEFAULT_PATH);
    env.set("HOSTNAME", &hostname);
    if args.tty {
        env.set("TERM", "xterm");
    }
    env.set("HOME", &user.home);
    let host_env = |name: &str| std::env::var(name).ok();
    let mut entries = vec![];
    for file in &args.env_file {
        let text = options::read_env_file(file)?;
        entries.extend(options::parse_env_file(&text).into_iter().map(String::from));
    }
    entries.extend(args.env.iter().cloned());
    for entry in &entries {
        if let Some((name, value)) = options::parse_env_entry(entry, host_env)? {
            env.set(&name, &value);
        }
    }

    let command = match args.entrypoint {
        Some(entrypoint) if entrypoint.is_empty() => args.command,
        Some(entrypoint) => std::iter::once(entrypoint).chain(args.command).collect(),
        None => args.command,
    };
    if command.is_empty() {
        bail!("no command given: rocker run --rootfs DIR COMMAND [ARG...]");
    }
    let workdir =
        options::container_path(args.workdir.as_deref().unwrap_or("/"), "working directory")?;

    Ok(ContainerSpec {
        id,
        rootfs,
        process: ProcessSpec {
            args: command,
            env: env.into_vec(),
            cwd: workdir,
            user: user.ids,
            terminal: args.tty,
            stdin: args.interactive,
        },
        hostname,
        mounts,
        read_only: args.read_only,
        network: match args.network {
            Network::None => NetworkMode::None,
            Network::Host => NetworkMode::Host,
        },
        init: args.init,
    })
}

fn root_directory(path: &Path) -> Result<std::path::PathBuf> {
    let canonical = std::fs::canonicalize(path)
        .with_context(|| format!("the rootfs {} does not exist", path.display()))?;
    if !canonical.is_dir() {
        bail!("the rootfs {} is not a directory", path.display());
    }
    Ok(canonical)
}

/// 64 random hex digits, as docker's ids.
fn new_container_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?,
        &mut bytes,
    )
    .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
