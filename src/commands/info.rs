//! `rocker info`: what this host offers a rootless user, checked live.

use anyhow::Result;
use serde::Serialize;

use crate::cgroups::report::Cgroups;
use crate::cli::args::{Format, InfoArgs};
use crate::host::config::Config;
use crate::host::dirs::Dirs;
use crate::host::probe::{self, Check};
use crate::rootfs::backing::mode::{self, Choice};
use crate::spec::SeccompPolicy;

#[derive(Serialize)]
struct Report {
    version: &'static str,
    kernel: String,
    uid: u32,
    user_namespaces: Check,
    overlay_in_userns: Check,
    rootfs: Choice,
    fuse_overlayfs: Check,
    dev_fuse: Check,
    slirp4netns: Check,
    /// `--network pasta` (not the default: see the README's benchmark).
    pasta: Check,
    dev_net_tun: Check,
    cgroups: Cgroups,
    security: Security,
    nesting: Nesting,
    directories: Dirs,
}

/// Whether rocker itself runs in a container, and what of that container
/// stops rootless ones (see `host::nested`).
#[derive(Serialize)]
struct Nesting {
    /// The kind of container rocker runs in (docker, podman, kubernetes,
    /// rocker...), when it runs in one.
    container: Option<String>,
    /// A seccomp filter on rocker itself: where user namespaces fail, the
    /// likely cause.
    seccomp_filter: bool,
    /// Mount points hiding parts of /proc: a new proc is then refused.
    masked_proc: Vec<String>,
    store_on_overlayfs: bool,
}

fn nesting(dirs: &Dirs) -> Nesting {
    Nesting {
        container: crate::host::nested::container_kind(),
        seccomp_filter: crate::host::userns::under_seccomp_filter(),
        masked_proc: crate::host::nested::masked_proc_paths(),
        store_on_overlayfs: crate::host::nested::is_on_overlayfs(&dirs.data),
    }
}

/// What confines a container by default.
#[derive(Serialize)]
struct Security {
    seccomp: Check,
    root_emulation: String,
}

fn security() -> Security {
    // The kernel shows a Seccomp line for every process when it has filters.
    let seccomp = match crate::host::userns::own_seccomp_mode().is_some() {
        true => Check::yes(format!(
            "{}; --security-opt seccomp=unconfined|PROFILE.json to change it",
            SeccompPolicy::Builtin.describe()
        )),
        false => Check::no("this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)"),
    };
    Security {
        seccomp,
        root_emulation: "on for containers whose user is root: chown and set*id calls and \
                         device mknod report success without changing anything \
                         (--security-opt root-emulation=false turns it off)"
            .to_string(),
    }
}

pub fn run(args: InfoArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    crate::host::dirs::ensure_private_dir(&dirs.data)?;
    let overlay_in_userns = probe::overlay_in_userns(&dirs.data);
    let rootfs = mode::report(&dirs, &Config::load(&dirs.config)?, &overlay_in_userns)?;
    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        kernel: probe::kernel_release()?,
        uid: nix::unistd::getuid().as_raw(),
        user_namespaces: probe::user_namespaces(),
        overlay_in_userns,
        rootfs,
        fuse_overlayfs: probe::program("fuse-overlayfs", "fuse-overlayfs"),
        dev_fuse: probe::device("/dev/fuse"),
        slirp4netns: probe::program("slirp4netns", "slirp4netns"),
        pasta: probe::program("pasta", "passt"),
        dev_net_tun: probe::device("/dev/net/tun"),
        cgroups: crate::cgroups::report::report(),
        security: security(),
        nesting: nesting(&dirs),
        directories: dirs,
    };
    match &args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Template(template) => {
            crate::commands::template::print_each(template, &[serde_json::to_value(&report)?])?
        }
        Format::Text => print_text(&report),
    }
    Ok(0)
}

/// `rocker version`: rocker's version and the platform it runs on.
pub fn version(args: InfoArgs) -> Result<i32> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let kernel = probe::kernel_release()?;
    let version = env!("CARGO_PKG_VERSION");
    // docker's shape has a Client and a Server; rocker is both.
    let side = serde_json::json!({
        "Version": version,
        "Os": std::env::consts::OS,
        "Arch": arch,
        "KernelVersion": kernel,
    });
    let mut report = side.clone();
    report["Client"] = side.clone();
    report["Server"] = side;
    match &args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Template(template) => crate::commands::template::print_each(template, &[report])?,
        Format::Text => {
            println!("rocker version {version}");
            println!(" OS/Arch:        {}/{arch}", std::env::consts::OS);
            println!(" Kernel version: {kernel}");
        }
    }
    Ok(0)
}

fn line(label: &str, check: &Check) {
    let verdict = if check.ok { "yes" } else { "no" };
    println!("  {label:<20} {verdict}: {}", check.detail);
}

fn print_text(report: &Report) {
    println!(
        "rocker {} on Linux {} as uid {}",
        report.version, report.kernel, report.uid
    );
    println!("Isolation:");
    line("user namespaces", &report.user_namespaces);
    println!("Root file systems:");
    line("overlay in userns", &report.overlay_in_userns);
    line("fuse-overlayfs", &report.fuse_overlayfs);
    line("/dev/fuse", &report.dev_fuse);
    println!(
        "  {:<20} {} ({})",
        "containers use", report.rootfs.mode, report.rootfs.reason
    );
    println!("Networking:");
    line("slirp4netns", &report.slirp4netns);
    line("pasta", &report.pasta);
    line("/dev/net/tun", &report.dev_net_tun);
    println!("Resource limits (cgroups {}):", report.cgroups.layout);
    line("systemd user manager", &report.cgroups.systemd_user_manager);
    line("delegated cgroup", &report.cgroups.limits);
    println!("Security:");
    line("syscall filter", &report.security.seccomp);
    println!(
        "  {:<20} {}",
        "root emulation", report.security.root_emulation
    );
    let nesting = &report.nesting;
    println!("Nesting:");
    match &nesting.container {
        Some(kind) => println!("  {:<20} yes: {kind}", "inside a container"),
        None => println!("  {:<20} no", "inside a container"),
    }
    if nesting.seccomp_filter && !report.user_namespaces.ok {
        println!(
            "  {:<20} {}",
            "seccomp filter",
            crate::host::userns::SECCOMP_FIX
        );
    } else if nesting.seccomp_filter {
        println!(
            "  {:<20} on rocker itself; it lets user namespaces through",
            "seccomp filter"
        );
    }
    match nesting.masked_proc.as_slice() {
        [] => println!("  {:<20} no", "masked /proc"),
        masked => println!(
            "  {:<20} yes ({}); for a new /proc, {}",
            "masked /proc",
            masked.join(", "),
            crate::host::nested::MASKED_PROC_FIX
        ),
    }
    if nesting.store_on_overlayfs {
        println!(
            "  {:<20} yes: kernel overlay cannot use it, containers get {}",
            "store on overlayfs", report.rootfs.mode
        );
    }
    println!("Directories:");
    println!("  {:<20} {}", "data", report.directories.data.display());
    println!("  {:<20} {}", "config", report.directories.config.display());
    println!(
        "  {:<20} {}",
        "runtime",
        report.directories.runtime.display()
    );
}
