//! The command line, as clap structs only (their value parsers are in
//! `values`); `commands/` does the work.
//! Flags follow docker/podman so their users feel at home.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use super::values::{
    bool_flag, cpus_flag, detach_keys_flag, format_flag, log_driver_flag, log_opt_flag,
    namespace_mode_flag, network_flag, publish_flag, security_opt_flag, signal_flag, size_flag,
    swap_flag, DetachKeys, LogOption, PublishedPorts, SecurityOpt,
};
use crate::network::NetworkMode;

#[derive(Debug, Parser)]
#[command(
    name = "rocker",
    version,
    about = "Rootless containers: no root, no setuid helper, no daemon"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// Make a container without starting it (run's flags)
    Create(Box<RunArgs>),
    /// Start stopped or created containers
    Start(StartArgs),
    /// Stop containers, then start them again
    Restart(RestartArgs),
    /// Follow a detached container's output and exit with its status
    Attach(AttachArgs),
    /// Copy files between the host and a container (- for a tar stream)
    Cp(CpArgs),
    /// Hold every process of containers
    Pause(PauseArgs),
    /// Let paused containers run again
    Unpause(PauseArgs),
    /// Show what this host offers rootless containers
    Info(InfoArgs),
    /// Show rocker's version
    Version(InfoArgs),
    /// Pull an image from a registry
    Pull(PullArgs),
    /// Push an image to a registry
    Push(PushArgs),
    /// Write images to an archive (docker-archive or oci-archive)
    Save(SaveArgs),
    /// Read images from an archive
    Load(LoadArgs),
    /// Build an image from a Containerfile (or Dockerfile)
    Build(BuildArgs),
    /// Make an image of a container's writes over its image
    Commit(CommitArgs),
    /// Write a container's root file system as a tar
    Export(ExportArgs),
    /// Make a one-layer image of a tarball
    Import(ImportArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Show how an image's layers were made
    History(HistoryArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// What the store holds, and removing what nothing uses
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage user-defined networks, on which containers reach each other
    /// by name
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Print a shell completion script: bash, zsh, fish, elvish or
    /// powershell (e.g. `rocker completion bash > ~/.local/share/bash-completion/completions/rocker`)
    Completion(CompletionArgs),
    /// List containers
    Ps(PsArgs),
    /// Show a detached container's output
    Logs(LogsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Show what running containers use (CPU, memory, processes)
    Stats(StatsArgs),
    /// Stop containers: the stop signal, then SIGKILL after a timeout
    Stop(StopArgs),
    /// Wait for containers to exit and print their exit statuses
    Wait(WaitArgs),
    /// List a container's published ports
    Port(PortArgs),
    /// Give a container another name
    Rename(RenameArgs),
    /// List what a container changed in its image (A, C, D)
    Diff(DiffArgs),
    /// List a container's processes (with ps options, -ef by default)
    Top(TopArgs),
    /// Send a signal to containers
    Kill(KillArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Show containers' details as JSON
    Inspect(ContainerInspectArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Write files for other tools: a systemd user unit for a container
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out of a registry
    Logout(LogoutArgs),
    /// (internal) Hold rocker's network namespace: started by a run on a
    /// user-defined network, gone with the last such container
    #[command(name = "network-keeper", hide = true)]
    NetworkKeeper,
    /// (internal) Relay a container's IPv6-published ports: started by its
    /// monitor, gone with it
    #[command(name = "port-forwarder", hide = true)]
    PortForwarder {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show the space images, containers, volumes and the build cache take
    Df,
    /// Remove stopped containers, dangling images and the build cache
    Prune(SystemPruneArgs),
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Remove the volumes no container uses too
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask first
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name without NAME) and print its name
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Show volumes in detail
    Inspect(VolumeInspectArgs),
    /// Remove volumes no container uses
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove the anonymous volumes no container uses (-a: every unused one)
    Prune(VolumePruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network and print its id
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Show networks in detail, with their running containers
    Inspect(NetworkInspectArgs),
    /// Remove networks no running container is on
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove every network no running container is on
    Prune(NetworkPruneArgs),
    /// Put a container on another network (at once if it runs)
    Connect(NetworkConnectArgs),
    /// Take a container off a network it was connected to
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    pub network: String,
    pub container: String,
    /// Another name the container has on this network (repeatable)
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    pub network: String,
    pub container: String,
    /// Say nothing if the container is not on the network
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    pub name: String,
    /// The network's IPv4 subnet (default: the first free 10.89.N.0/24)
    #[arg(long, value_name = "A.B.C.D/N")]
    pub subnet: Option<String>,
    /// No way out: its containers reach each other only
    #[arg(long)]
    pub internal: bool,
    /// The driver: bridge, the only one
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// A label for the network: KEY[=VALUE] (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Print only network ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Only the networks that match: name=TEXT, id=PREFIX, driver=bridge,
    /// label=KEY[=VALUE] (repeatable)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Output format: a Go template, json or table
    #[arg(long, value_parser = format_flag, default_value = "text")]
    pub format: Format,
    /// Print whole ids
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    #[arg(required = true)]
    pub networks: Vec<String>,
    /// A Go template applied to each (`{{.IPAM}}`), or json
    #[arg(short, long, value_parser = format_flag, default_value = "json")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    #[arg(required = true)]
    pub networks: Vec<String>,
    /// Say nothing of networks that do not exist
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Only the networks that match: label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Do not ask first
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    pub name: Option<String>,
    /// A label for the volume: KEY[=VALUE] (repeatable)
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// The volume driver: local, the only one
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Driver options (the local driver takes none here)
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Print only volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Only the volumes that match: dangling=true|false, name=TEXT,
    /// label=KEY[=VALUE], driver=local (repeatable)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Output format: a Go template, json or table
    #[arg(long, value_parser = format_flag, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// A Go template applied to each (`{{.Mountpoint}}`), or json
    #[arg(short, long, value_parser = format_flag, default_value = "json")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Say nothing of volumes that do not exist
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Every volume no container uses, named ones too
    #[arg(short, long)]
    pub all: bool,
    /// Only the volumes that match: label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Do not ask first
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache: the images build steps made that no name
    /// holds, and the layers only they used
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Pull an image from a registry
    Pull(PullArgs),
    /// Push an image to a registry
    Push(PushArgs),
    /// Write images to an archive (docker-archive or oci-archive)
    Save(SaveArgs),
    /// Read images from an archive
    Load(LoadArgs),
    /// Make a one-layer image of a tarball
    Import(ImportArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Show how an image's layers were made
    History(HistoryArgs),
    /// Remove layers and blobs that no image uses
    Prune(PruneArgs),
    /// Show an image's details as JSON
    Inspect(InspectArgs),
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// A systemd user unit that starts the container and stops it
    Systemd(GenerateSystemdArgs),
}

#[derive(Debug, Args)]
pub struct GenerateSystemdArgs {
    /// The container, by name or id
    pub container: String,
    /// Write container-NAME.service here instead of printing it
    #[arg(short, long)]
    pub files: bool,
    /// Seconds stop waits before it kills the container (default: its
    /// --stop-timeout, else 10)
    #[arg(short, long)]
    pub time: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Remove every container that is not running
    Prune(PruneArgs),
    /// Show containers' details as JSON
    Inspect(ContainerInspectArgs),
    /// Stop containers
    Stop(StopArgs),
    /// Wait for containers to exit and print their exit statuses
    Wait(WaitArgs),
    /// List a container's published ports
    Port(PortArgs),
    /// Give a container another name
    Rename(RenameArgs),
    /// List what a container changed in its image (A, C, D)
    Diff(DiffArgs),
    /// List a container's processes (with ps options, -ef by default)
    Top(TopArgs),
    /// Send a signal to containers
    Kill(KillArgs),
    /// Show a detached container's output
    Logs(LogsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Make an image of a container's writes over its image
    Commit(CommitArgs),
    /// Write a container's root file system as a tar
    Export(ExportArgs),
    /// Make a container without starting it (run's flags)
    Create(Box<RunArgs>),
    /// Start stopped or created containers
    Start(StartArgs),
    /// Stop containers, then start them again
    Restart(RestartArgs),
    /// Follow a detached container's output and exit with its status
    Attach(AttachArgs),
    /// Copy files between the host and a container (- for a tar stream)
    Cp(CpArgs),
    /// Hold every process of containers
    Pause(PauseArgs),
    /// Let paused containers run again
    Unpause(PauseArgs),
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show every container, not only running ones
    #[arg(short, long)]
    pub all: bool,
    /// Print only container ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Only the containers that match: name=, id=, label=KEY[=VALUE],
    /// status=, ancestor=IMAGE, network=, exited=CODE (repeatable)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// The N containers created last (any state)
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// The container created last (any state)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Do not shorten ids and commands
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show what each container wrote, and that with its image (virtual)
    #[arg(short, long)]
    pub size: bool,
    /// Output format
    #[arg(long, value_parser = format_flag, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The container, by name or id
    pub container: String,
    /// Keep printing what the container writes until it exits
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Put each line's time first
    #[arg(short, long)]
    pub timestamps: bool,
}

/// What `run` and `exec` share: the command's stdio, environment, working
/// directory and user.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Keep stdin open and pass it to the command
    #[arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub interactive: bool,

    /// Give the command a pseudo-terminal
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub tty: bool,

    /// Set an environment variable (NAME=VALUE, or NAME to copy it from here)
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file, one NAME=VALUE a line
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Working directory inside the container (default: the image's, or
    /// for exec the container's)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// User (and group) to run as inside the container: names or ids
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub process: ProcessArgs,

    /// Run the command in the background: return once it runs (its output
    /// goes nowhere)
    #[arg(short = 'd', long, conflicts_with_all = ["tty", "interactive"])]
    pub detach: bool,

    /// The container, by name or id
    pub container: String,

    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Containers by name or id (default: every running one)
    pub containers: Vec<String>,
    /// Print one reading and exit, instead of one every second
    #[arg(long)]
    pub no_stream: bool,
    /// Output format
    #[arg(long, value_parser = format_flag, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container, by name or id
    pub container: String,
    /// Only this container port: PORT[/tcp|/udp]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container, by name or id
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The container, by name or id
    pub container: String,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container, by name or id
    pub container: String,
    /// Its new name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Containers by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Seconds to wait after the stop signal before SIGKILL (default: the
    /// container's --stop-timeout, else 10)
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u64>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Containers by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// The signal: a name (KILL, SIGHUP) or a number
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Containers by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Containers by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// A Go template applied to each (`{{.State.Status}}`), or json
    #[arg(short, long, value_parser = format_flag, default_value = "json")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image, e.g. alpine, ghcr.io/org/app:1.2 or app@sha256:...
    pub reference: String,
    /// The platform to pull from a multi-platform image (default: this host's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image, by name or id
    pub image: String,
    /// Where to push it ([docker://]REGISTRY/REPOSITORY[:TAG]); the image's
    /// own name by default
    pub destination: Option<String>,
    /// Manifest format: oci or v2s2 (default: the image's own)
    #[arg(short = 'f', long, value_name = "oci|v2s2")]
    pub format: Option<String>,
    /// Layer compression: gzip, zstd or none (default: each layer as stored)
    #[arg(long, value_name = "gzip|zstd|none")]
    pub compression_format: Option<String>,
    /// Write the pushed manifest's digest to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<std::path::PathBuf>,
    /// Print no progress
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The images, by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
    /// The archive to write (default: standard output)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// docker-archive (what docker save writes) or oci-archive
    #[arg(long, default_value = "docker-archive", value_name = "FORMAT")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The archive, or an OCI layout directory (default: standard input)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<std::path::PathBuf>,
    /// Print only the loaded names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The containers, by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Run in this terminal, with its output, and exit with its status
    #[arg(short, long)]
    pub attach: bool,
    /// With -a: pass standard input in
    #[arg(short, long)]
    pub interactive: bool,
    /// The keys that detach from a running container and leave it running
    /// (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS", value_parser = detach_keys_flag, default_value = "",
          hide_default_value = true)]
    pub detach_keys: DetachKeys,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The container, by name or id
    pub container: String,
    /// Pass signals sent to attach (Ctrl-C...) on to the container
    /// (--sig-proxy=false: a signal ends the attach alone)
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Do not pass standard input in (output only)
    #[arg(long)]
    pub no_stdin: bool,
    /// The keys that detach and leave the container running (default
    /// ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS", value_parser = detach_keys_flag, default_value = "",
          hide_default_value = true)]
    pub detach_keys: DetachKeys,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// CONTAINER:PATH, a host path, or - (a tar on stdin)
    pub source: String,
    /// CONTAINER:PATH, a host path, or - (a tar on stdout)
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The containers, by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The containers, by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Seconds to wait for each to stop before killing it (default: its
    /// --stop-timeout, else 10)
    #[arg(short, long)]
    pub time: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context: a directory, or - to read the Containerfile
    /// from standard input (no context)
    pub context: String,
    /// The Containerfile (default: Containerfile, else Dockerfile, in the
    /// context)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Name the image (repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// A build argument: NAME=VALUE, or NAME for the value in this
    /// environment (repeatable)
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// The stage to build (default: the last)
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Run every step, reusing nothing from earlier builds
    #[arg(long)]
    pub no_cache: bool,
    /// Pull the base images again even when the store has them
    #[arg(long)]
    pub pull: bool,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image id to FILE
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// A label on the image: KEY=VALUE (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// The network of RUN steps: default or none (a step's own
    /// --network= wins)
    #[arg(long, value_name = "MODE", default_value = "default")]
    pub network: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The container, by name or id
    pub container: String,
    /// The new image's name (none: it is used by id)
    pub repository: Option<String>,
    /// A commit message (the history's comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// The author
    #[arg(short, long)]
    pub author: Option<String>,
    /// A Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Stop a running container's processes while its writes are read
    /// (--pause=false reads them as they change)
    #[arg(short, long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub pause: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The container, by name or id
    pub container: String,
    /// The tar to write (default: standard output)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tarball (plain, gzip or zstd), or - for standard input
    pub source: String,
    /// The new image's name (none: it is used by id)
    pub reference: Option<String>,
    /// A commit message (the history's comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// A Dockerfile instruction for the config, as for commit (repeatable)
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the images build steps made too (the build cache)
    #[arg(short, long)]
    pub all: bool,
    /// Only this repository (all its tags), or this REPOSITORY:TAG
    pub reference: Option<String>,
    /// Only the images that match: dangling=true|false, label=KEY[=VALUE],
    /// reference=PATTERN (repeatable)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Show each image's digest
    #[arg(long)]
    pub digests: bool,
    /// Do not shorten ids
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Output format
    #[arg(long, value_parser = format_flag, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove every name an id matches
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The image, by name or id
    pub image: String,
    /// Print only the image id (the top step's; the others have none)
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not shorten the commands
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Output format
    #[arg(long, value_parser = format_flag, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image, by name or id
    pub source: String,
    /// The new name: [REGISTRY/]REPOSITORY[:TAG]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Accepted for compatibility: prune never asks
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
    /// A Go template applied to each (`{{.Id}}`), or json
    #[arg(short, long, value_parser = format_flag, default_value = "json")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, e.g. ghcr.io or localhost:5000 (default docker.io)
    #[arg(default_value = "docker.io")]
    pub registry: String,
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible to other users in ps: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(default_value = "docker.io")]
    pub registry: String,
}

/// `--format`: rocker's table (`text`, or docker's `table`), `json`, or a
/// Go template (`{{.Names}}`, `table {{.ID}}\t{{.Status}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Template(String),
}

impl RunArgs {
    /// `run`'s flags and arguments from words, read as the command line
    /// would be: how a build runs its RUN steps, with run's own meaning
    /// for every option.
    pub fn from_words(words: &[String]) -> Result<RunArgs, clap::Error> {
        use clap::FromArgMatches;
        let command = RunArgs::augment_args(clap::Command::new("run").no_binary_name(true));
        RunArgs::from_arg_matches(&command.try_get_matches_from(words)?)
    }
}

/// `--image-volume`: what the image's VOLUME paths get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageVolumeMode {
    Bind,
    Tmpfs,
    Ignore,
}

#[derive(Debug, Args)]
// `-h` is --hostname here, as in docker run; help stays on --help.
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run a directory as the root file system instead of an image (every
    /// argument is then the command)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Remove the container's files when it exits
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub rm: bool,

    /// (internal) The root's overlay unsynced, as under --rm: for a build
    /// step's container, committed and removed, never started again
    #[arg(long = "volatile-root", hide = true)]
    pub volatile_root: bool,

    /// Run in the background and print the container's id
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub detach: bool,

    /// The container's name (default: a made-up one)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Log options of a detached container: max-size=SIZE (default 10m;
    /// the log keeps at most two files of that size)
    #[arg(long = "log-opt", value_name = "max-size=SIZE", value_parser = log_opt_flag)]
    pub log_opt: Vec<LogOption>,

    /// When to pull the image: missing (default), always or never
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing, value_name = "POLICY")]
    pub pull: PullPolicy,

    /// Pull without progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,

    #[command(flatten)]
    pub process: ProcessArgs,

    /// Override the command's entrypoint ("" for none)
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,

    /// The container's hostname (default: its short id)
    #[arg(short = 'h', long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Bind-mount a host path (HOST_PATH:CONTAINER_PATH[:OPTS]), mount a
    /// volume (NAME:CONTAINER_PATH[:OPTS], made if missing), or an
    /// anonymous volume (CONTAINER_PATH); OPTS: ro, rw, nocopy, z, Z, U
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volumes: Vec<String>,

    /// A mount in docker's long form: type=bind|volume|tmpfs,source=..,target=..[,readonly]
    #[arg(long = "mount", value_name = "type=TYPE,...")]
    pub mounts: Vec<String>,

    /// What the image's VOLUMEs get: bind (an anonymous volume each, as
    /// docker), tmpfs, or ignore (podman's flag)
    #[arg(
        long = "image-volume",
        value_enum,
        default_value = "bind",
        value_name = "MODE"
    )]
    pub image_volume: ImageVolumeMode,

    /// Mount a tmpfs: CONTAINER_PATH[:OPTIONS]
    #[arg(long, value_name = "DST[:OPTS]")]
    pub tmpfs: Vec<String>,

    /// Mount the root file system read-only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub read_only: bool,

    /// Network: slirp4netns[:OPTION=VALUE,...] (the default), none, host,
    /// or the name of a network (rocker network create)
    #[arg(long, alias = "net", value_name = "MODE", value_parser = network_flag)]
    pub network: Option<NetworkMode>,

    /// Another name the container has on its network (repeatable)
    #[arg(long = "network-alias", alias = "net-alias", value_name = "ALIAS")]
    pub network_aliases: Vec<String>,

    /// Publish a container port on the host:
    /// [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp] (ranges: 8000-8002:80-82)
    #[arg(short = 'p', long = "publish", value_name = "PORTS", value_parser = publish_flag)]
    pub publish: Vec<PublishedPorts>,

    /// Publish every port the image EXPOSEs (and --expose names) on a free
    /// host port
    #[arg(short = 'P', long = "publish-all", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false", action = ArgAction::Set,
          value_parser = bool_flag)]
    pub publish_all: bool,

    /// Run a small init as PID 1 that forwards signals and reaps zombies
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub init: bool,

    /// Memory limit (e.g. 256m); beyond it the kernel kills (OOM) a process
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = size_flag)]
    pub memory: Option<u64>,

    /// Memory the kernel reclaims from other processes before this
    /// container's (a soft limit: cgroup v2's memory.low)
    #[arg(long = "memory-reservation", value_name = "SIZE", value_parser = size_flag)]
    pub memory_reservation: Option<u64>,

    /// Memory plus swap (e.g. 512m; default: twice --memory), -1 for no swap limit
    #[arg(long = "memory-swap", value_name = "SIZE", value_parser = swap_flag,
          allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,

    /// CPU time, in CPUs (e.g. 1.5)
    #[arg(long, value_name = "N", value_parser = cpus_flag)]
    pub cpus: Option<f64>,

    /// Relative CPU weight, 1-10000 (default 100)
    #[arg(long = "cpu-weight", value_name = "N", conflicts_with = "cpu_shares")]
    pub cpu_weight: Option<u64>,

    /// CPU shares as in cgroup v1 (2-262144, default 1024), mapped onto the weight
    #[arg(short = 'c', long = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<u64>,

    /// Most processes the container may have (-1: no limit)
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,

    /// seccomp=unconfined|PROFILE.json, root-emulation=false,
    /// no-new-privileges (always on)
    #[arg(long = "security-opt", value_name = "OPTION", value_parser = security_opt_flag)]
    pub security_opt: Vec<SecurityOpt>,

    /// Add a capability (CAP_NET_RAW or NET_RAW; ALL for every one)
    #[arg(long = "cap-add", value_name = "CAP", value_delimiter = ',')]
    pub cap_add: Vec<String>,

    /// Drop a capability (ALL for every one)
    #[arg(long = "cap-drop", value_name = "CAP", value_delimiter = ',')]
    pub cap_drop: Vec<String>,

    /// Every capability inside the container's user namespace, no seccomp
    /// filter, no masked or read-only paths (nothing beyond you on the host)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub privileged: bool,

    /// A label, KEY=VALUE (or KEY for an empty value), over the image's
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Add a line to /etc/hosts: NAME:ADDRESS (host-gateway: the host, as
    /// slirp4netns reaches it)
    #[arg(long = "add-host", value_name = "NAME:ADDRESS")]
    pub add_host: Vec<String>,

    /// A nameserver for /etc/resolv.conf, instead of the usual ones
    #[arg(long, value_name = "ADDRESS")]
    pub dns: Vec<String>,

    /// A search domain for /etc/resolv.conf, instead of the host's
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,

    /// A resolver option for /etc/resolv.conf, instead of the host's
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPTION")]
    pub dns_option: Vec<String>,

    /// The size of /dev/shm (default 64m)
    #[arg(long = "shm-size", value_name = "SIZE", value_parser = size_flag)]
    pub shm_size: Option<u64>,

    /// A resource limit: NAME=SOFT[:HARD] (nofile, nproc, core, stack, ...)
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,

    /// Seconds `stop` waits after the stop signal before SIGKILL (default 10)
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,

    /// A sysctl of the container's own namespaces: KEY=VALUE (net.* with
    /// its own network, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,

    /// A supplementary group: the container's own group, or keep-groups
    /// (your own groups, which a rootless container always keeps)
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,

    /// Accepted with a warning: cgroup v2 has no switch to turn the OOM
    /// killer off
    #[arg(long = "oom-kill-disable", num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = bool_flag)]
    pub oom_kill_disable: bool,

    /// Ports the container listens on, for inspect (and -P): PORT[/PROTO]
    /// or a range
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,

    /// PID namespace: host shares the caller's processes and /proc (the
    /// container can see and signal your processes then)
    #[arg(long, value_name = "MODE", value_parser = namespace_mode_flag)]
    pub pid: Option<bool>,

    /// IPC namespace: private (the default; shareable is the same here) or
    /// host (the caller's, with its /dev/shm and /dev/mqueue)
    #[arg(long, value_name = "MODE", value_parser = namespace_mode_flag)]
    pub ipc: Option<bool>,

    /// UTS namespace: host shares the caller's hostname (no --hostname then)
    #[arg(long, value_name = "MODE", value_parser = namespace_mode_flag)]
    pub uts: Option<bool>,

    /// A host device in the container: HOST[:CONTAINER[:PERMISSIONS]]
    /// (/dev/fuse, /dev/kvm...; as far as your own permissions on it go)
    #[arg(long, value_name = "HOST[:CONTAINER[:rwm]]")]
    pub device: Vec<String>,

    /// The platform of the image, OS/ARCH[/VARIANT] (pulled for it if the
    /// store has the image for another)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Where a detached container's output is kept: json-file (default,
    /// what logs reads) or none
    #[arg(long = "log-driver", value_name = "DRIVER", value_parser = log_driver_flag,
          default_value = "json-file")]
    pub log_driver: crate::spec::LogDriver,

    /// The signal stop sends first (default: the image's StopSignal, else
    /// SIGTERM)
    #[arg(long = "stop-signal", value_name = "SIGNAL", value_parser = signal_flag)]
    pub stop_signal: Option<String>,

    /// Write the container's id to this file (which must not exist)
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,

    /// Start it again when it exits: no, on-failure[:N], always,
    /// unless-stopped (its monitor does: needs -d, or start)
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: crate::spec::RestartPolicy,

    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// The image, then the command and its arguments (with --rootfs: only
    /// the command)
    #[arg(trailing_var_arg = true, value_name = "IMAGE COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull only when the image is not in the store
    Missing,
    /// Pull every time (layers already stored are not fetched again)
    Always,
    /// Never pull; fail when the image is not in the store
    Never,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format
    #[arg(long, value_parser = format_flag, default_value = "text")]
    pub format: Format,
}
