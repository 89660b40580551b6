//! `rocker run`: turns the command line (and the image config, when running
//! an image) into a `ContainerSpec` and hands it to the monitor.
//!
//! An image is looked up in the store and pulled per `--pull`; the
//! container gets a directory of its own in the store (`layered`) and a
//! root file system by the host's storage mode (`storage`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cgroups::{self, limits::Limits, Resources};
use crate::cli::args::{PullPolicy, RunArgs};
use crate::cli::values as options;
use crate::cli::values::{LogOption, SecurityOpt};
use crate::commands::image::ImageContext;
use crate::container::live_dir;
use crate::container::names;
use crate::container::record::{
    ContainerRecord, MountKind, MountRecord, RootfsKind, SecurityRecord, StopSignal,
};
use crate::error::{StatusError, EXIT_ROCKER_FAILED};
use crate::host::config::{Config, Unenforceable};
use crate::host::dirs::Dirs;
use crate::image::manifest::{ContainerConfig, ImageConfig, Platform};
use crate::image::pull::{pull, PullOptions};
use crate::image::reference::Reference;
use crate::image::store::ImageRecord;
use crate::rootfs::backing::container_dir::ContainerFiles;
use crate::rootfs::backing::mode::{self, RootfsMode};
use crate::rootfs::backing::{generated, layers};
use crate::rootfs::users::ACCOUNT_FILE_LIMIT;
use crate::rootfs::{inroot, users};
use crate::runtime::launch::{self, Launch, DEFAULT_LOG_MAX};
use crate::runtime::path_lookup::DEFAULT_PATH;
use crate::runtime::{capabilities, seccomp, stdio};
use crate::spec::{ContainerSpec, NetworkMode, PortMapping, ProcessSpec, Rootfs, UserMount};
use crate::spec::{Environment, MountRequest, SeccompPolicy, UserSpec};
use crate::util::time;

pub fn run(args: RunArgs) -> Result<i32> {
    run_or_create(args, false)
}

/// `rocker create`: everything `run` does up to the start: the container
/// recorded, its files made, ready for `rocker start`.
pub fn create(args: RunArgs) -> Result<i32> {
    run_or_create(args, true)
}

fn run_or_create(mut args: RunArgs, create_only: bool) -> Result<i32> {
    let dirs = Dirs::discover()?;
    let mut extras = RunExtras::of(&args, create_only)?;
    // docker keeps the other container's id: a rename does not break it.
    if let Some(NetworkMode::Container { container }) = &mut args.network {
        let record = crate::container::record::Containers::open(&dirs)?
            .find(container)
            .map_err(|err| {
                StatusError::new(125, format!("--network container:{container}: {err:#}"))
            })?;
        *container = record.id;
    }
    // First of all: on a systemd host this may start rocker again in a
    // delegated scope, and a host without cgroups fails a run with limits.
    let limits = limits_of(&args)?;
    if !limits.is_empty() {
        extras.resources = resources(limits, &dirs)?;
    }
    let Some(rootfs) = args.rootfs.take() else {
        return run_image(args, extras, &dirs);
    };
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let rootfs = root_directory(&options::absolute(&rootfs, &cwd))?;
    let accounts = accounts_in_dir(&rootfs)?;
    let command = std::mem::take(&mut args.command);
    let id = new_container_id()?;
    let files = ContainerFiles::without_rootfs(&dirs.data, &id)?;
    let spec = build_spec(
        args,
        &ContainerConfig::default(),
        command,
        Rootfs::Directory(rootfs.clone()),
        accounts,
        id,
        extras.resources.clone(),
        Place {
            data: &dirs.data,
            container_dir: &files.dir,
        },
    )?;
    let origin = Origin {
        image: rootfs.display().to_string(),
        image_id: None,
        stop_signal: None,
        rootfs_mode: RootfsKind::Directory,
        labels: None,
        exposed_ports: vec![],
    };
    extras.launch(spec, origin, files, &dirs)
}

/// Where a container's root comes from, for its record.
struct Origin<'a> {
    /// The image as named, or the `--rootfs` directory.
    image: String,
    image_id: Option<String>,
    stop_signal: Option<&'a str>,
    rootfs_mode: RootfsKind,
    /// The image's labels.
    labels: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The image's ExposedPorts.
    exposed_ports: Vec<String>,
}

/// What `run` takes from the command line besides the spec: the
/// container's name and life, checked before anything is pulled.
struct RunExtras {
    name: Option<String>,
    detach: bool,
    auto_remove: bool,
    log_max: u64,
    /// Its limits and where its cgroups go, when it has limits.
    resources: Option<Resources>,
    /// Its syscall filter (`--security-opt seccomp=`; none when privileged).
    seccomp: SeccompPolicy,
    /// Whether root's id changes are faked (`--security-opt root-emulation=`).
    root_emulation: bool,
    /// The security options as given, for `inspect`.
    security_opt: Vec<String>,
    /// `--stop-signal`, over the image's StopSignal.
    stop_signal: Option<String>,
    /// `--stop-timeout`.
    stop_timeout: Option<u64>,
    log_driver: crate::container::record::LogDriver,
    /// `--label`s, over the image's.
    labels: Vec<(String, String)>,
    /// `--cidfile`: where the id goes once the container is recorded.
    cidfile: Option<PathBuf>,
    /// `--expose`, as docker's `80/tcp` keys.
    exposed: Vec<String>,
    /// What `inspect` shows of the flags.
    flags: crate::container::record::RunFlags,
    /// `create`: record it, do not start it.
    create_only: bool,
    restart: crate::spec::RestartPolicy,
}

impl RunExtras {
    fn of(args: &RunArgs, create_only: bool) -> Result<RunExtras> {
        if let Some(name) = &args.name {
            names::check(name)?;
        }
        // A foreground container gets our stdout and stderr (and stdin
        // with -i); a detached one gets pipes.
        if !args.detach && !create_only {
            stdio::refuse_paths(args.process.interactive)?;
        }
        let log_max = args
            .log_opt
            .iter()
            .map(|LogOption::MaxSize(size)| *size)
            .next_back()
            .unwrap_or(DEFAULT_LOG_MAX);
        let mut seccomp = SeccompPolicy::default();
        let mut root_emulation = true;
        let mut security_opt = vec![];
        for option in &args.security_opt {
            match option {
                SecurityOpt::Seccomp(policy) => {
                    security_opt.push(format!("seccomp={}", policy.describe()));
                    seccomp = policy.clone();
                }
                SecurityOpt::RootEmulation(on) => {
                    security_opt.push(format!("root-emulation={on}"));
                    root_emulation = *on;
                }
                SecurityOpt::NoNewPrivileges => security_opt.push("no-new-privileges".into()),
                SecurityOpt::Unmask(paths) => {
                    security_opt.push(format!("unmask={}", paths.join(":")))
                }
            }
        }
        if args.privileged {
            seccomp = SeccompPolicy::Unconfined;
        }
        // A profile rocker cannot honour fails before anything is pulled.
        if let SeccompPolicy::Profile(path) = &seccomp {
            seccomp::load(path)?;
        }
        if args.restart != crate::spec::RestartPolicy::No {
            if args.rm {
                bail!("--restart and --rm conflict: a container removed when it exits cannot start again");
            }
            if !args.detach && !create_only {
                bail!(
                    "--restart needs -d: rocker has no daemon, so the container's own monitor \
                     starts it again, in the background"
                );
            }
        }
        if let Some(path) = &args.cidfile {
            if path.exists() {
                bail!(
                    "the container id file {} exists already: remove it, or give another \
                     --cidfile",
                    path.display()
                );
            }
        }
        let labels = args
            .labels
            .iter()
            .map(|label| match label.split_once('=') {
                Some((key, value)) => (key.to_string(), value.to_string()),
                None => (label.to_string(), String::new()),
            })
            .collect::<Vec<_>>();
        if let Some((key, _)) = labels.iter().find(|(key, _)| key.is_empty()) {
            bail!("invalid label {key:?}: give KEY=VALUE");
        }
        if args.oom_kill_disable {
            eprintln!(
                "rocker: warning: --oom-kill-disable is ignored: cgroup v2, the only cgroups \
                 rocker uses, has no switch to turn the OOM killer off"
            );
        }
        let mut exposed = vec![];
        for text in &args.expose {
            exposed.extend(crate::network::ports::parse_exposed(text)?);
        }
        let flags = crate::container::record::RunFlags {
            network_aliases: args.network_aliases.clone(),
            cap_add: args.cap_add.clone(),
            cap_drop: args.cap_drop.clone(),
            dns: args.dns.clone(),
            dns_search: args.dns_search.clone(),
            dns_options: args.dns_option.clone(),
            extra_hosts: args.add_host.clone(),
            group_add: args.group_add.clone(),
            devices: args.device.clone(),
            ulimits: args.ulimit.clone(),
            shm_size: args.shm_size,
            cidfile: args.cidfile.as_ref().map(|p| p.display().to_string()),
            read_only: args.read_only,
            init: args.init,
            open_stdin: args.process.interactive,
            oom_kill_disable: args.oom_kill_disable,
        };
        Ok(RunExtras {
            flags,
            exposed,
            labels,
            stop_signal: args.stop_signal.clone(),
            stop_timeout: args.stop_timeout,
            log_driver: args.log_driver,
            cidfile: args.cidfile.clone(),
            create_only,
            restart: args.restart,
            name: args.name.clone(),
            detach: args.detach,
            auto_remove: args.rm,
            log_max,
            resources: None,
            seccomp,
            root_emulation,
            security_opt,
        })
    }

    /// The container's record (see `container::record`).
    /// Records the container and runs it (see `launch`).
    fn launch(
        &self,
        spec: ContainerSpec,
        origin: Origin<'_>,
        files: ContainerFiles,
        dirs: &Dirs,
    ) -> Result<i32> {
        // Compiled here, before the container is cloned: the container does
        // no work for its filter. Root is emulated only for root.
        let emulate_root = self.root_emulation && spec.process.user.uid == 0;
        let seccomp = seccomp::program(&self.seccomp, &spec.process.capabilities, emulate_root)?;
        let mut record = self.record(&spec, origin);
        record.security = SecurityRecord {
            capabilities: Some(
                spec.process
                    .capabilities
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            ),
            privileged: spec.privileged,
            seccomp: match seccomp {
                Some(_) => self.seccomp.describe(),
                None => SeccompPolicy::Unconfined.describe(),
            },
            root_emulation: emulate_root,
            security_opt: self.security_opt.clone(),
        };
        let cidfile = self.cidfile.as_ref();
        if let Some(path) = cidfile {
            write_cidfile(path, &spec.id)?;
        }
        let ready = Launch {
            spec,
            seccomp,
            record,
            files,
            log_max: self.log_max,
        };
        let result = match self.create_only {
            true => launch::create(ready, dirs),
            false => launch::launch(ready, dirs),
        };
        // A container that never started leaves no id file behind either.
        if let (Some(path), Err(_)) = (cidfile, &result) {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    fn record(&self, spec: &ContainerSpec, origin: Origin<'_>) -> ContainerRecord {
        let Origin {
            image,
            image_id,
            stop_signal,
            rootfs_mode,
            labels: image_labels,
            exposed_ports: image_exposed,
        } = origin;
        let mut labels = image_labels.cloned().unwrap_or_default();
        labels.extend(self.labels.iter().cloned());
        let mounts = spec
            .mounts
            .iter()
            .map(|mount| match mount {
                UserMount::Bind {
                    source,
                    destination,
                    read_only,
                } => MountRecord {
                    kind: MountKind::Bind,
                    name: None,
                    anonymous: false,
                    source: Some(source.display().to_string()),
                    destination: destination.clone(),
                    read_only: *read_only,
                },
                UserMount::Tmpfs {
                    destination,
                    options,
                } => MountRecord {
                    kind: MountKind::Tmpfs,
                    name: None,
                    anonymous: false,
                    source: None,
                    destination: destination.clone(),
                    read_only: options.read_only,
                },
                UserMount::Volume {
                    name,
                    source,
                    destination,
                    read_only,
                    anonymous,
                    ..
                } => MountRecord {
                    kind: MountKind::Volume,
                    name: Some(name.clone()),
                    anonymous: *anonymous,
                    source: Some(source.display().to_string()),
                    destination: destination.clone(),
                    read_only: *read_only,
                },
            })
            .collect();
        let ip_address = match &spec.network {
            NetworkMode::Slirp4netns(options) => Some(options.container_address().to_string()),
            _ => None,
        };
        let process = &spec.process;
        ContainerRecord {
            id: spec.id.clone(),
            name: self.name.clone().unwrap_or_default(),
            image,
            image_id,
            created: time::now_nanos(),
            command: process.args.clone(),
            env: process
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            working_dir: process.cwd.clone(),
            user: process.user,
            hostname: spec.hostname.clone(),
            tty: process.terminal,
            network: spec.network.clone(),
            ip_address,
            ports: spec.ports.clone(),
            mounts,
            stop_signal: StopSignal::of_image(self.stop_signal.as_deref().or(stop_signal)),
            stop_timeout: self.stop_timeout,
            log_driver: self.log_driver,
            auto_remove: self.auto_remove,
            detached: self.detach && !self.create_only,
            rootfs_mode,
            limits: spec
                .resources
                .as_ref()
                .map(|r| r.limits)
                .unwrap_or_default(),
            security: SecurityRecord::default(),
            labels,
            restart: self.restart,
            host_namespaces: spec.host_namespaces,
            flags: self.flags.clone(),
            exposed_ports: {
                let mut ports: Vec<String> = image_exposed;
                ports.extend(self.exposed.iter().cloned());
                ports.extend(
                    spec.ports
                        .iter()
                        .map(|p| format!("{}/{}", p.container_port, p.protocol)),
                );
                ports.sort();
                ports.dedup();
                ports
            },
        }
    }
}

fn run_image(mut args: RunArgs, extras: RunExtras, dirs: &Dirs) -> Result<i32> {
    if args.command.is_empty() {
        bail!(
            "no image given: rocker run [OPTIONS] IMAGE [COMMAND...] (or --rootfs DIR COMMAND...)"
        );
    }
    let image = args.command.remove(0);
    let command = std::mem::take(&mut args.command);
    let context = ImageContext::open()?;
    let config = Config::load(&dirs.config)?;

    // Pulled (if need be) without the store's lock; the shared lock then
    // keeps the image's layers until the container's dir records that it
    // uses them.
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let (lock, record) = locked_image(
        &context,
        &config,
        &image,
        args.pull,
        args.quiet,
        platform.as_ref(),
    )?;
    let image_config: ImageConfig =
        serde_json::from_slice(&context.store.read_blob(&record.config)?)
            .with_context(|| format!("reading the config of {}", record.name))?;
    let mut layers = layers_of(&context, &record)?;
    let image_defaults = image_config.config.unwrap_or_default();
    let user = args
        .process
        .user
        .as_deref()
        .or(image_defaults.user.as_deref());
    if extras.root_emulation
        && runs_as_root(user)
        && layers::is_directory_in_layers(&layers, "/etc/apt/apt.conf.d")
    {
        layers.push(generated::apt_sandbox_layer(context.store.root())?);
    }

    let chosen = mode::choose(dirs, &config)?;
    let host_mode = chosen.mode;
    let choice = mode::for_layers(chosen, layers.len());
    if choice.mode != host_mode {
        eprintln!(
            "rocker: using {} for this container: {}",
            choice.mode, choice.reason
        );
    }
    if choice.mode == RootfsMode::Copy {
        eprintln!(
            "rocker: warning: copying the image for this container, which is slow: {}",
            choice.reason
        );
    }
    let id = new_container_id()?;
    let files = ContainerFiles::create(context.store.root(), &id, &layers, choice.mode)
        .with_context(|| format!("preparing the root file system of {}", record.name))?;
    drop(lock);

    let mount_point = live_dir::rootfs_mount_point(dirs.ensure_runtime()?, &id);
    let volatile = args.rm || args.volatile_root;
    let (rootfs, accounts) = image_rootfs(choice.mode, &files, layers, mount_point, volatile)?;
    let resources = extras.resources.clone();
    let spec = build_spec(
        args,
        &image_defaults,
        command,
        rootfs,
        accounts,
        id,
        resources,
        Place {
            data: &dirs.data,
            container_dir: &files.dir,
        },
    )?;
    let origin = Origin {
        image,
        image_id: Some(record.id().to_string()),
        stop_signal: image_defaults.stop_signal.as_deref(),
        labels: image_defaults.labels.as_ref(),
        exposed_ports: image_defaults
            .exposed_ports
            .iter()
            .flatten()
            .map(|(port, _)| port.clone())
            .collect(),
        rootfs_mode: choice.mode.into(),
    };
    // A container that never started leaves nothing; one that ran keeps
    // its files unless --rm (see `launch`).
    extras.launch(spec, origin, files, dirs)
}

/// Writes `id` to `path`, which must not exist (another run may be
/// writing it).
fn write_cidfile(path: &Path, id: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating the container id file {}", path.display()))?;
    std::io::Write::write_all(&mut file, id.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Whether `-u` (or the image's User) names root: none does, nor `0` or
/// `root`, with or without a group.
fn runs_as_root(user: Option<&str>) -> bool {
    let name = user
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or_default();
    matches!(name, "" | "0" | "root")
}

/// The store's directories of `record`'s layers, bottom first, each once.
/// A layer listed twice is kept where it is topmost: that occurrence
/// shadows or hides everything the lower one would (its files, whiteouts
/// and opaque directories apply over all below it), so the merged tree is
/// the same, and overlayfs refuses a lower dir twice.
pub fn layers_of(context: &ImageContext, record: &ImageRecord) -> Result<Vec<PathBuf>> {
    let mut layers = vec![];
    for layer in &record.layers {
        if !context.store.has_layer(&layer.diff_id) {
            bail!(
                "the store lacks the layer {} of {}; pull the image again",
                layer.diff_id,
                record.name
            );
        }
        layers.push(context.store.layer_path(&layer.diff_id));
    }
    Ok(topmost_once(layers))
}

/// `layers` (bottom first) with each kept only where it is topmost.
fn topmost_once(layers: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<PathBuf> = layers
        .into_iter()
        .rev()
        .filter(|layer| seen.insert(layer.clone()))
        .collect();
    kept.reverse();
    kept
}

/// The root of a container over `layers` (bottom first) in `mode`, whose
/// store dir is `files`, and the image's account files, read from where
/// the root will come from. An overlay is mounted on `mount_point` later,
/// by the container (or fuse-overlayfs); a copy is ready now.
fn image_rootfs(
    mode: RootfsMode,
    files: &ContainerFiles,
    mut layers: Vec<PathBuf>,
    mount_point: PathBuf,
    removed_at_exit: bool,
) -> Result<(Rootfs, Accounts)> {
    if mode == RootfsMode::Copy {
        let dir = files.rootfs();
        let accounts = accounts_in_dir(&dir)?;
        return Ok((Rootfs::Directory(dir), accounts));
    }
    if layers.is_empty() {
        layers.push(files.lower(0)); // the empty lower dir
    }
    let accounts =
        account_files(|path| layers::read_from_layers(&layers, path, ACCOUNT_FILE_LIMIT))?;
    let rootfs = match mode {
        RootfsMode::Overlay => Rootfs::KernelOverlay {
            dir: files.dir.clone(),
            layers: layers.len(),
            mount_point,
            volatile: removed_at_exit,
        },
        _ => Rootfs::FuseOverlay {
            dir: files.dir.clone(),
            lowers: layers,
            mount_point,
        },
    };
    Ok((rootfs, accounts))
}

/// The container's /etc/passwd and /etc/group (when it has them), as
/// `read` finds them.
type Accounts = (Option<String>, Option<String>);

fn account_files(read: impl Fn(&str) -> Result<Option<String>>) -> Result<Accounts> {
    Ok((read("/etc/passwd")?, read("/etc/group")?))
}

/// The account files of a root file system directory, read safely.
fn accounts_in_dir(root: &Path) -> Result<Accounts> {
    account_files(|path| {
        inroot::read_to_string(root, path, ACCOUNT_FILE_LIMIT)
            .with_context(|| format!("reading {path} in {}", root.display()))
    })
}

/// The image in the store, pulled first when `policy` says so.
/// The image `text` names (pulled as `policy` says), with the store's
/// shared lock held over it. An image found under the lock is whole:
/// garbage collection keeps the layers of every indexed image, and a pull
/// indexes only what it has checked is there. The pull itself runs without
/// the lock; an `rmi` between it and the lock makes another round.
pub fn locked_image(
    context: &ImageContext,
    config: &Config,
    text: &str,
    policy: PullPolicy,
    quiet: bool,
    platform: Option<&Platform>,
) -> Result<(crate::image::store::StoreLock, ImageRecord)> {
    let mut policy = policy;
    // An image of another platform than --platform asks for is pulled
    // again for that one, as docker does.
    let wanted = |record: &ImageRecord| {
        platform.is_none_or(|p| {
            let mut text = format!("{}/{}", p.os, p.architecture);
            if let Some(variant) = &p.variant {
                text = format!("{text}/{variant}");
            }
            record.platform == text || record.platform.starts_with(&format!("{text}/"))
        })
    };
    for _ in 0..3 {
        let lock = context.store.lock_shared()?;
        match (policy, context.find_one(text)?.filter(wanted)) {
            (PullPolicy::Never, None) => {
                return Err(StatusError::new(
                    EXIT_ROCKER_FAILED,
                    format!(
                        "{text}: no such image in the store, and --pull never forbids pulling it"
                    ),
                )
                .into())
            }
            (PullPolicy::Never | PullPolicy::Missing, Some(record)) => return Ok((lock, record)),
            _ => {}
        }
        drop(lock);
        pull_image(context, config, text, quiet, platform)?;
        // Pulled: the next round finds it under the lock.
        policy = PullPolicy::Missing;
    }
    bail!("the image {text} was removed while this run was starting, again and again")
}

fn pull_image(
    context: &ImageContext,
    config: &Config,
    text: &str,
    quiet: bool,
    platform: Option<&Platform>,
) -> Result<()> {
    let reference = Reference::parse(text)?;
    if !quiet {
        eprintln!("Pulling {reference}");
    }
    let options = PullOptions::new(platform.cloned(), quiet, config)?;
    pull(
        &context.store,
        &context.registry()?,
        &context.registries()?,
        &reference,
        &options,
    )?;
    Ok(())
}

/// The spec from the command line over the image's defaults (docker's
/// rules: the command line wins).
/// Where the container's files are, for `build_spec`: the store's data dir
/// and the container's own dir there (which claims its volumes).
struct Place<'a> {
    data: &'a Path,
    container_dir: &'a Path,
}

#[allow(clippy::too_many_arguments)]
fn build_spec(
    args: RunArgs,
    image: &ContainerConfig,
    command: Vec<String>,
    rootfs: Rootfs,
    (passwd, group): Accounts,
    id: String,
    resources: Option<Resources>,
    place: Place<'_>,
) -> Result<ContainerSpec> {
    let requests = mount_requests(&args)?;
    let (network, ports) = network_and_ports(&args, image)?;
    if let NetworkMode::Bridge { network, .. } = &network {
        if crate::network::networks::Networks::open(place.data)?
            .get(network)?
            .is_none()
        {
            return Err(StatusError::new(
                125,
                format!("network {network} not found: rocker network create {network} makes it (rocker network ls lists them)"),
            )
            .into());
        }
    }
    let capabilities = match args.privileged {
        true => caps::all(),
        false => capabilities::chosen(&args.cap_add, &args.cap_drop)?,
    };

    let image_user = image.user.as_deref().filter(|u| !u.is_empty());
    let user_spec = args
        .process
        .user
        .as_deref()
        .or(image_user)
        .map(UserSpec::parse)
        .transpose()?;
    let user = users::resolve(user_spec.as_ref(), passwd.as_deref(), group.as_deref())?;
    check_group_add(&args.group_add, user.ids.gid, group.as_deref())?;

    let host_namespaces = crate::spec::HostNamespaces {
        pid: args.pid.unwrap_or(false),
        ipc: args.ipc.unwrap_or(false),
        uts: args.uts.unwrap_or(false),
    };
    let hostname = match (host_namespaces.uts, &args.hostname) {
        (true, Some(_)) => bail!(
            "--hostname and --uts host conflict: the host's UTS namespace has the host's name"
        ),
        (true, None) => nix::unistd::gethostname()
            .context("reading the host's name")?
            .to_string_lossy()
            .into_owned(),
        (false, Some(name)) => name.clone(),
        (false, None) => id[..12].to_string(),
    };
    if !host_namespaces.uts {
        options::check_hostname(&hostname)?;
    }
    if host_namespaces.ipc && args.shm_size.is_some() {
        bail!("--shm-size and --ipc host conflict: the container uses the host's /dev/shm");
    }
    let env = environment(&args, image, &hostname, &user.home)?;
    let command = command_line(args.entrypoint.as_deref(), image, command)?;
    let image_workdir = image.working_dir.as_deref().filter(|w| !w.is_empty());
    let workdir = options::container_path(
        args.process
            .workdir
            .as_deref()
            .or(image_workdir)
            .unwrap_or("/"),
        "working directory",
    )?;

    let names = name_settings(&args, &network)?;
    let ulimits = args
        .ulimit
        .iter()
        .map(|text| crate::spec::Ulimit::parse(text))
        .collect::<Result<_>>()?;
    let devices = args
        .device
        .iter()
        .map(|text| device(text))
        .collect::<Result<_>>()?;
    let sysctls = args
        .sysctl
        .iter()
        .map(|text| sysctl(text, &network, host_namespaces.ipc))
        .collect::<Result<_>>()?;
    // Last: anything that fails before this leaves no volume made for
    // nothing.
    let image_volumes: Vec<String> = image
        .volumes
        .iter()
        .flatten()
        .map(|(p, _)| p.clone())
        .collect();
    let mounts = super::volume::mounts_for_run(
        requests,
        &image_volumes,
        args.image_volume,
        place.data,
        place.container_dir,
    )?;
    Ok(ContainerSpec {
        id,
        rootfs,
        process: ProcessSpec {
            args: command,
            env,
            cwd: workdir,
            user: user.ids,
            terminal: args.process.tty,
            stdin: args.process.interactive,
            capabilities,
        },
        hostname,
        mounts,
        read_only: args.read_only,
        network,
        ports,
        init: args.init,
        resources,
        privileged: args.privileged,
        names,
        shm_size: args.shm_size,
        ulimits,
        devices,
        sysctls,
        host_namespaces,
        unmask: args
            .security_opt
            .iter()
            .filter_map(|option| match option {
                SecurityOpt::Unmask(paths) => Some(paths.clone()),
                _ => None,
            })
            .flatten()
            .collect(),
    })
}

/// `--group-add`: a rootless container maps one group id, the container's
/// own (the caller's group on the host), and `setgroups` is denied in its
/// user namespace (the kernel's rule for an unprivileged map), so the
/// process keeps the caller's supplementary groups for the host's access
/// checks and can gain no other. A group that is the container's own, and
/// podman's `keep-groups` (what happens anyway), are taken; any other is
/// refused rather than silently missing.
fn check_group_add(groups: &[String], gid: u32, group_file: Option<&str>) -> Result<()> {
    for wanted in groups.iter().filter(|g| g.as_str() != "keep-groups") {
        let wanted_gid =
            users::group(wanted, group_file).with_context(|| format!("--group-add {wanted}"))?;
        if wanted_gid != gid {
            bail!(
                "--group-add {wanted}: a rootless container has one group id, its own ({gid}), \
                 mapped to your group; gid {wanted_gid} cannot exist in it without root's \
                 newgidmap. Your own supplementary groups still apply to host files \
                 (--group-add keep-groups says so)"
            );
        }
    }
    Ok(())
}

/// `--sysctl KEY=VALUE`, of the container's own namespaces only.
fn sysctl(text: &str, network: &NetworkMode, host_ipc: bool) -> Result<(String, String)> {
    let Some((key, value)) = text.split_once('=') else {
        bail!("--sysctl {text}: give KEY=VALUE");
    };
    let key = key.replace('/', ".");
    if !crate::spec::is_namespaced_sysctl(&key, network.is_own_namespace(), !host_ipc) {
        bail!(
            "--sysctl {key}: not a sysctl of the container's own namespaces (net.* with its own \
             network, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* with its own IPC \
             namespace): it would be the host's"
        );
    }
    if key.split('.').any(|part| part.is_empty() || part == "..") {
        bail!("--sysctl {text}: a malformed key");
    }
    Ok((key, value.to_string()))
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]`, which must name a device
/// node (a bind of anything else would be a volume in disguise).
fn device(text: &str) -> Result<crate::spec::Device> {
    use std::os::unix::fs::FileTypeExt;
    let mut parts = text.splitn(3, ':');
    let source = PathBuf::from(parts.next().unwrap_or_default());
    let destination = parts
        .next()
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| source.to_string_lossy().to_string());
    let permissions = parts.next().unwrap_or("rwm");
    if permissions.is_empty() || !permissions.chars().all(|c| "rwm".contains(c)) {
        bail!("--device {text}: permissions are a mix of r, w and m");
    }
    let kind = std::fs::metadata(&source)
        .with_context(|| format!("--device {text}: {}", source.display()))?
        .file_type();
    if !kind.is_char_device() && !kind.is_block_device() {
        bail!(
            "--device {text}: {} is not a device node (use -v for files)",
            source.display()
        );
    }
    Ok(crate::spec::Device {
        source,
        destination: options::container_path(&destination, "the device's path")?,
    })
}

/// `--add-host`, `--dns`, `--dns-search`, `--dns-option`, checked.
fn name_settings(args: &RunArgs, network: &NetworkMode) -> Result<crate::spec::NameSettings> {
    let mut extra_hosts = vec![];
    for entry in &args.add_host {
        // docker writes NAME:ADDRESS (an IPv6 address has colons of its
        // own, so the name is up to the first) or NAME=ADDRESS.
        let Some((name, address)) = entry.split_once('=').or_else(|| entry.split_once(':')) else {
            bail!("--add-host {entry}: give NAME:ADDRESS");
        };
        let address = match (address, network) {
            ("host-gateway", NetworkMode::Slirp4netns(options)) => options.gateway().to_string(),
            ("host-gateway", NetworkMode::Host) => "127.0.0.1".to_string(),
            ("host-gateway", NetworkMode::Pasta { .. }) => crate::network::pasta::host_gateway()
                .with_context(|| {
                    format!("--add-host {entry}: this host has no default route for pasta to copy")
                })?
                .to_string(),
            ("host-gateway", _) => bail!(
                "--add-host {entry}: host-gateway needs the default network (slirp4netns), \
                 pasta or --network host"
            ),
            (address, _) => {
                address
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .with_context(|| {
                        format!("--add-host {entry}: {address} is not an IP address")
                    })?;
                address.trim_matches(|c| c == '[' || c == ']').to_string()
            }
        };
        options::check_hostname(name)
            .with_context(|| format!("--add-host {entry}: {name} is not a host name"))?;
        extra_hosts.push((name.to_string(), address));
    }
    for server in &args.dns {
        server
            .parse::<std::net::IpAddr>()
            .with_context(|| format!("--dns {server}: give a nameserver's IP address"))?;
    }
    Ok(crate::spec::NameSettings {
        extra_hosts,
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
    })
}

/// `-v`, `--mount` and `--tmpfs`, each flag in command-line order.
fn mount_requests(args: &RunArgs) -> Result<Vec<MountRequest>> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut mounts = vec![];
    for volume in &args.volumes {
        mounts.push(crate::cli::mounts::parse_volume(volume, &cwd)?);
    }
    for mount in &args.mounts {
        mounts.push(crate::cli::mounts::parse_mount(mount, &cwd)?);
    }
    for tmpfs in &args.tmpfs {
        mounts.push(MountRequest::Mount(options::parse_tmpfs(tmpfs)?));
    }
    Ok(mounts)
}

/// docker's order: defaults, the image's Env, then --env-file, then -e;
/// later wins. HOME comes from passwd unless something set it.
fn environment(
    args: &RunArgs,
    image: &ContainerConfig,
    hostname: &str,
    home: &str,
) -> Result<Vec<(String, String)>> {
    let mut env = Environment::default();
    env.set("PATH", DEFAULT_PATH);
    env.set("HOSTNAME", hostname);
    // systemd's convention, which podman follows too: the engine's name,
    // so that what runs inside (rocker itself, `rocker info`) can tell.
    env.set("container", "rocker");
    if args.process.tty {
        env.set("TERM", "xterm");
    }
    for entry in image.env.iter().flatten() {
        if let Some((name, value)) = entry.split_once('=') {
            env.set(name, value);
        }
    }
    if env.get("HOME").is_none() {
        env.set("HOME", home);
    }
    options::apply_env_options(&mut env, &args.process.env_file, &args.process.env)?;
    Ok(env.into_vec())
}

/// The command to run: `--entrypoint` replaces the image's Entrypoint and
/// drops its Cmd; arguments replace Cmd.
fn command_line(
    entrypoint: Option<&str>,
    image: &ContainerConfig,
    arguments: Vec<String>,
) -> Result<Vec<String>> {
    let (entrypoint, default_cmd) = match entrypoint {
        Some("") => (vec![], vec![]),
        Some(entrypoint) => (vec![entrypoint.to_string()], vec![]),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone().unwrap_or_default(),
        ),
    };
    let command: Vec<String> = match arguments.is_empty() {
        true => entrypoint.into_iter().chain(default_cmd).collect(),
        false => entrypoint.into_iter().chain(arguments).collect(),
    };
    if command.is_empty() {
        bail!("no command given, and the image sets no Entrypoint or Cmd: add one after the image (or the rootfs)");
    }
    Ok(command)
}

/// Where a run with `limits` gets its cgroups. A host that cannot enforce
/// them gets a one-line warning and a run without them, as with docker and
/// podman, unless config.toml says `[limits] unenforceable = "error"`.
pub fn resources(limits: Limits, dirs: &Dirs) -> Result<Option<Resources>> {
    match cgroups::ensure_delegated(&limits) {
        Ok(delegated) => Ok(Some(Resources { limits, delegated })),
        Err(err) if err.downcast_ref::<cgroups::Unenforceable>().is_some() => {
            match Config::load(&dirs.config)?.limits.unenforceable {
                Unenforceable::Error => Err(err),
                Unenforceable::Warn => {
                    eprintln!(
                        "rocker: warning: the resource limits are ignored: {err:#} (set \
                         [limits] unenforceable = \"error\" in config.toml to refuse such runs)"
                    );
                    Ok(None)
                }
            }
        }
        Err(err) => Err(err),
    }
}

/// `--memory`, `--cpus` and friends, checked against each other.
fn limits_of(args: &RunArgs) -> Result<Limits> {
    let limits = Limits {
        memory: args.memory,
        memory_swap: args.memory_swap,
        cpus: args.cpus,
        cpu_weight: args
            .cpu_weight
            .or(args.cpu_shares.map(cgroups::limits::shares_to_weight)),
        pids: args.pids_limit,
        memory_reservation: args.memory_reservation,
    };
    limits.check()?;
    Ok(limits)
}

/// `--network` and `-p`. Ports need slirp4netns: docker drops them (with a
/// warning) on the host network, and there is nothing to forward to with
/// no network at all.
fn network_and_ports(
    args: &RunArgs,
    image: &ContainerConfig,
) -> Result<(NetworkMode, Vec<PortMapping>)> {
    let mut network = args.network.clone().unwrap_or_default();
    match &mut network {
        NetworkMode::Bridge { aliases, .. } => {
            for alias in &args.network_aliases {
                options::check_hostname(alias)
                    .with_context(|| format!("--network-alias {alias}: not a host name"))?;
            }
            aliases.clone_from(&args.network_aliases);
        }
        _ if !args.network_aliases.is_empty() => bail!(
            "--network-alias needs a user-defined network (rocker network create NAME, then \
             --network NAME)"
        ),
        _ => {}
    }
    let mut ports: Vec<PortMapping> = args.publish.iter().flat_map(|p| p.0.clone()).collect();
    if args.publish_all {
        // docker's -P: each exposed port not published already, on all
        // addresses.
        let mut exposed: Vec<String> = image
            .exposed_ports
            .iter()
            .flatten()
            .map(|(p, _)| p.clone())
            .collect();
        for text in &args.expose {
            exposed.extend(crate::network::ports::parse_exposed(text)?);
        }
        for key in exposed {
            let mapping = crate::network::ports::parse(&key)?;
            for port in mapping {
                let published = ports.iter().any(|p| {
                    p.container_port == port.container_port && p.protocol == port.protocol
                });
                if !published {
                    ports.push(port);
                }
            }
        }
    }
    match &network {
        NetworkMode::None if !ports.is_empty() => {
            bail!("-p needs a network to forward to, and --network none has none")
        }
        NetworkMode::Container { .. } if !ports.is_empty() => bail!(
            "-p cannot publish into another container's network: publish the ports on that \
             container (docker: conflicting options)"
        ),
        NetworkMode::Host if !ports.is_empty() => {
            eprintln!(
                "rocker: warning: published ports are discarded with --network host \
                 (the container's ports are the host's)"
            );
            ports.clear();
        }
        _ => crate::network::ports::assign_free_ports(&mut ports)?,
    }
    Ok((network, ports))
}

fn root_directory(path: &Path) -> Result<PathBuf> {
    let canonical = std::fs::canonicalize(path)
        .with_context(|| format!("the rootfs {} does not exist", path.display()))?;
    if !canonical.is_dir() {
        bail!("the rootfs {} is not a directory", path.display());
    }
    Ok(canonical)
}

/// A random 64-hex-digit id whose short form (the default hostname) is not
/// all decimal digits: resolvers read such a name as an IPv4 address, so
/// `hostname -i` and the like would fail (docker draws again too).
fn new_container_id() -> Result<String> {
    loop {
        let id = crate::util::random::hex_id()?;
        if !looks_like_a_number(&id[..12]) {
            return Ok(id);
        }
    }
}

fn looks_like_a_number(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_layer_is_kept_where_it_is_topmost() {
        let paths = |names: &[&str]| names.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            topmost_once(paths(&["a", "b", "a", "c", "b"])),
            paths(&["a", "c", "b"])
        );
        assert_eq!(topmost_once(paths(&["a", "b"])), paths(&["a", "b"]));
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_combines_them() {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let image = ContainerConfig {
            entrypoint: Some(strings(&["/entry"])),
            cmd: Some(strings(&["default"])),
            ..ContainerConfig::default()
        };
        let cases: &[(Option<&str>, &[&str], &[&str])] = &[
            (None, &[], &["/entry", "default"]),
            (None, &["arg"], &["/entry", "arg"]),
            (Some("/other"), &[], &["/other"]),
            (Some("/other"), &["arg"], &["/other", "arg"]),
            (Some(""), &["sh", "-c", "x"], &["sh", "-c", "x"]),
        ];
        for (entrypoint, arguments, want) in cases {
            let got = command_line(*entrypoint, &image, strings(arguments)).unwrap();
            assert_eq!(got, strings(want), "{entrypoint:?} {arguments:?}");
        }
        let err = command_line(Some(""), &image, vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no command given"), "{err}");
    }

    #[test]
    fn ids_are_64_hex_digits_and_never_a_numeric_hostname() {
        assert!(looks_like_a_number("723269765120"));
        assert!(!looks_like_a_number("72326976512a"));
        let id = new_container_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!looks_like_a_number(&id[..12]));
    }
}
