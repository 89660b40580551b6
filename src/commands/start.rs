//! `rocker start` and `rocker restart`: a recorded container run again
//! from what it kept (see `runtime::launch`), over the same files.

use anyhow::{bail, Result};

use super::attach::{attach_to, AttachOptions};
use super::container::{each_container, stop};
use super::run::resources;
use crate::cli::args::{RestartArgs, StartArgs};
use crate::container::live_dir;
use crate::container::record::{ContainerRecord, Containers, RootfsKind, State};
use crate::host::dirs::Dirs;
use crate::runtime::launch::{self, Restart};

/// What this session gives a container started again: its overlay's
/// mount point in this runtime dir, and its limits' cgroup now.
fn restart_of(dirs: &Dirs, record: &ContainerRecord, attach: bool, stdin: bool) -> Result<Restart> {
    let mount_point = match record.rootfs_mode {
        RootfsKind::Overlay | RootfsKind::FuseOverlayfs => Some(live_dir::rootfs_mount_point(
            dirs.ensure_runtime()?,
            &record.id,
        )),
        RootfsKind::Copy | RootfsKind::Directory => None,
    };
    let resources = match record.limits.is_empty() {
        true => None,
        false => resources(record.limits, dirs)?,
    };
    Ok(Restart {
        mount_point,
        resources,
        stdin,
        attach,
    })
}

/// Starts one container in the background; a running one is left alone.
fn start_detached(dirs: &Dirs, containers: &Containers, record: ContainerRecord) -> Result<()> {
    if matches!(containers.state(&record.id)?, State::Running(_)) {
        return Ok(());
    }
    let restart = restart_of(dirs, &record, false, false)?;
    launch::start(record, restart, dirs)?;
    Ok(())
}

pub fn start_command(args: StartArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    if !args.attach {
        if args.interactive {
            bail!("-i needs -a: rocker start -ai CONTAINER");
        }
        return each_container(&args.containers, |containers, record| {
            start_detached(&dirs, containers, record)
        });
    }
    let [query] = args.containers.as_slice() else {
        bail!("start -a takes one container: its output comes to this terminal");
    };
    let containers = Containers::open(&dirs)?;
    let record = containers.find(query)?;
    // A running container is attached to, as docker does: its output from
    // now on, and stdin with -i.
    if matches!(containers.state(&record.id)?, State::Running(_)) {
        let options = AttachOptions {
            stdin: args.interactive,
            sig_proxy: true,
            detach_keys: args.detach_keys.0,
        };
        return attach_to(&containers, &record, &options);
    }
    let restart = restart_of(&dirs, &record, true, args.interactive)?;
    launch::start(record, restart, &dirs)
}

pub fn restart_command(args: RestartArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    each_container(&args.containers, |containers, record| {
        stop(containers, &record, args.time)?;
        start_detached(&dirs, containers, record)
    })
}
