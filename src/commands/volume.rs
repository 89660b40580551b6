//! `rocker volume create|ls|inspect|rm|prune`, and the volumes of a run:
//! its `-v`/`--mount` requests and the image's VOLUMEs found or made in
//! the store and claimed for the container (see `volume`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::filters::{label_matches, name_matches, Filters};
use super::output::{confirm, human_size, remove_each, write_removed, write_table};
use crate::cli::args::{
    Format, ImageVolumeMode, VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs,
    VolumeRmArgs,
};
use crate::error::StatusError;
use crate::host::dirs::Dirs;
use crate::rootfs::backing::container_dir::CONTAINERS_DIR;
use crate::spec::{MountRequest, TmpfsOptions, UserMount};
use crate::util::fs::tree_size;
use crate::util::time;
use crate::volume::{claims, Volume, Volumes};

/// The mounts of a new container in `container_dir`: each request as it
/// is, volumes found or made, and a mount for each of the image's VOLUME
/// paths no request covers (`mode` says which). The volumes are claimed
/// for the container before the lock is let go.
pub fn mounts_for_run(
    requests: Vec<MountRequest>,
    image_volumes: &[String],
    mode: ImageVolumeMode,
    data: &Path,
    container_dir: &Path,
) -> Result<Vec<UserMount>> {
    let mut seen = BTreeSet::new();
    for request in &requests {
        if !seen.insert(request.destination().trim_end_matches('/').to_string()) {
            bail!(
                "duplicate mount point {}: give each container path one mount",
                request.destination()
            );
        }
    }
    let image_paths: Vec<String> = image_volumes
        .iter()
        .map(|path| path.trim_end_matches('/').to_string())
        .filter(|path| path.starts_with('/') && !seen.contains(path))
        .collect();
    let wants_volumes = requests
        .iter()
        .any(|r| matches!(r, MountRequest::Volume(_)))
        || (mode == ImageVolumeMode::Bind && !image_paths.is_empty());
    if !wants_volumes {
        return Ok(requests
            .into_iter()
            .filter_map(|request| match request {
                MountRequest::Mount(mount) => Some(mount),
                MountRequest::Volume(_) => None,
            })
            .chain(image_tmpfs(&image_paths, mode))
            .collect());
    }
    let volumes = Volumes::open(data)?;
    let lock = volumes.lock_shared()?;
    let volume_mount =
        |volume: Volume, destination: String, read_only, copy: bool| UserMount::Volume {
            name: volume.name().to_string(),
            source: volume.data(),
            destination,
            read_only,
            copy_up: copy.then(|| volume.copy_up_marker()),
            anonymous: volume.record.is_anonymous(),
        };
    let mut mounts = vec![];
    for request in requests {
        mounts.push(match request {
            MountRequest::Mount(mount) => mount,
            MountRequest::Volume(request) => {
                let volume = match &request.name {
                    Some(name) => volumes.get_or_create(name, &request.labels)?.0,
                    None => volumes.create_anonymous()?,
                };
                volume_mount(
                    volume,
                    request.destination,
                    request.read_only,
                    !request.no_copy,
                )
            }
        });
    }
    if mode == ImageVolumeMode::Bind {
        for path in &image_paths {
            mounts.push(volume_mount(
                volumes.create_anonymous()?,
                path.clone(),
                false,
                true,
            ));
        }
    }
    mounts.extend(image_tmpfs(&image_paths, mode));
    let names: Vec<String> = mounts
        .iter()
        .filter_map(|mount| match mount {
            UserMount::Volume { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    claims::claim(container_dir, &names, &lock)?;
    Ok(mounts)
}

/// `--image-volume tmpfs`: a tmpfs on each VOLUME path, as podman mounts
/// them (writable, no devices or set-uid programs).
fn image_tmpfs(paths: &[String], mode: ImageVolumeMode) -> Vec<UserMount> {
    if mode != ImageVolumeMode::Tmpfs {
        return vec![];
    }
    paths
        .iter()
        .map(|path| UserMount::Tmpfs {
            destination: path.clone(),
            options: TmpfsOptions {
                read_only: false,
                noexec: false,
                nosuid: true,
                nodev: true,
                data: "mode=1777".to_string(),
            },
        })
        .collect()
}

struct Store {
    volumes: Volumes,
    containers: std::path::PathBuf,
}

fn open() -> Result<Store> {
    let dirs = Dirs::discover()?;
    crate::host::dirs::ensure_private_dir(&dirs.data)?;
    Ok(Store {
        volumes: Volumes::open(&dirs.data)?,
        containers: dirs.data.join(CONTAINERS_DIR),
    })
}

/// docker's `volume inspect` object.
fn report(volume: &Volume) -> Value {
    json!({
        "CreatedAt": time::rfc3339(volume.record.created),
        "Driver": "local",
        "Labels": volume.record.labels,
        "Mountpoint": volume.data().display().to_string(),
        "Name": volume.name(),
        "Options": {},
        "Scope": "local",
    })
}

pub fn create_command(args: VolumeCreateArgs) -> Result<i32> {
    if args.driver != "local" {
        bail!(
            "volume driver {:?} does not exist in rocker: only local",
            args.driver
        );
    }
    if let Some(option) = args.options.first() {
        bail!(
            "volume option {option:?}: rocker's local volumes are directories in the store and \
             take no options (mounting a device or NFS needs root)"
        );
    }
    let labels: BTreeMap<String, String> = args
        .labels
        .iter()
        .map(|label| {
            let (key, value) = label.split_once('=').unwrap_or((label, ""));
            (key.to_string(), value.to_string())
        })
        .collect();
    let store = open()?;
    let _lock = store.volumes.lock_shared()?;
    let volume = match &args.name {
        Some(name) => store.volumes.get_or_create(name, &labels)?.0,
        // docker names it at random, and it is no anonymous volume.
        None => store.volumes.create_unnamed(&labels)?,
    };
    println!("{}", volume.name());
    Ok(0)
}

/// The fields of docker's `volume ls --format`.
fn row(volume: &Volume, users: usize) -> Value {
    json!({
        "Name": volume.name(),
        "Driver": "local",
        "Scope": "local",
        "Mountpoint": volume.data().display().to_string(),
        "CreatedAt": time::rfc3339(volume.record.created),
        "Labels": volume
            .record
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        "Links": users.to_string(),
        "Size": "N/A",
    })
}

pub fn ls_command(args: VolumeLsArgs) -> Result<i32> {
    let filters = Filters::parse(&args.filters, &["dangling", "name", "label", "driver"])?;
    let store = open()?;
    let users = claims::users(&store.containers);
    let listed: Vec<Volume> = store
        .volumes
        .list()?
        .into_iter()
        .filter(|volume| {
            let used = users.contains_key(volume.name());
            filters.allows("dangling", |v| matches!(v, "true" | "1") != used)
                && filters.allows("name", |v| name_matches(v, volume.name()))
                && filters.allows("label", |v| label_matches(v, &volume.record.labels))
                && filters.allows("driver", |v| v == "local")
        })
        .collect();
    if args.quiet {
        for volume in &listed {
            println!("{}", volume.name());
        }
        return Ok(0);
    }
    let count = |volume: &Volume| users.get(volume.name()).map_or(0, Vec::len);
    match &args.format {
        Format::Template(template) => {
            let rows: Vec<Value> = listed.iter().map(|v| row(v, count(v))).collect();
            super::template::print_each(template, &rows)?;
        }
        Format::Json => {
            let mut out = std::io::stdout().lock();
            for volume in &listed {
                writeln!(out, "{}", row(volume, count(volume)))?;
            }
        }
        Format::Text => {
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|v| vec!["local".to_string(), v.name().to_string()])
                .collect();
            write_table(
                &mut std::io::stdout().lock(),
                &["DRIVER", "VOLUME NAME"],
                &rows,
            )?;
        }
    }
    Ok(0)
}

pub fn inspect_command(args: VolumeInspectArgs) -> Result<i32> {
    let store = open()?;
    let reports = args
        .names
        .iter()
        .map(|name| store.volumes.find(name).map(|volume| report(&volume)))
        .collect::<Result<Vec<_>>>()?;
    match &args.format {
        Format::Template(template) => super::template::print_each(template, &reports)?,
        _ => println!("{}", serde_json::to_string_pretty(&reports)?),
    }
    Ok(0)
}

/// Refuses a volume some container claims, naming the containers.
fn check_unused(
    volume: &Volume,
    users: &BTreeMap<String, Vec<String>>,
) -> std::result::Result<(), StatusError> {
    match users.get(volume.name()) {
        Some(ids) => Err(StatusError::new(
            1,
            format!(
                "volume {} is in use by container {}: remove the container first (rocker rm)",
                volume.name(),
                ids.iter()
                    .map(|id| &id[..id.len().min(12)])
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Ok(()),
    }
}

pub fn rm_command(args: VolumeRmArgs) -> Result<i32> {
    let store = open()?;
    let lock = store.volumes.lock_exclusive()?;
    let users = claims::users(&store.containers);
    Ok(remove_each(&args.names, |name| {
        match store.volumes.get(name) {
            Ok(None) if args.force => Ok(false),
            Ok(None) => Err(store.volumes.find(name).unwrap_err()),
            Ok(Some(volume)) => check_unused(&volume, &users)
                .map_err(anyhow::Error::from)
                .and_then(|()| store.volumes.remove(&volume, &lock))
                .map(|()| true),
            Err(err) => Err(err),
        }
    }))
}

/// Removes the volumes no container claims: anonymous ones, or with `all`
/// every one; those `filters` (label=, label!=) pass. Their names and the
/// space freed.
pub fn prune_unused(all: bool, filters: &Filters) -> Result<(Vec<String>, u64)> {
    let store = open()?;
    let lock = store.volumes.lock_exclusive()?;
    store.volumes.sweep(&lock);
    let users = claims::users(&store.containers);
    let mut removed = vec![];
    let mut freed = 0;
    for volume in store.volumes.list()? {
        let labels = &volume.record.labels;
        let chosen = (all || volume.record.is_anonymous())
            && !users.contains_key(volume.name())
            && filters.allows("label", |v| label_matches(v, labels))
            && filters.allows("label!", |v| !label_matches(v, labels));
        if chosen {
            let size = tree_size(&volume.dir);
            store.volumes.remove(&volume, &lock)?;
            freed += size;
            removed.push(volume.name().to_string());
        }
    }
    Ok((removed, freed))
}

pub fn prune_command(args: VolumePruneArgs) -> Result<i32> {
    let filters = Filters::parse(&args.filters, &["label", "label!"])?;
    if !args.force {
        let what = match args.all {
            true => "all local volumes not used by at least one container",
            false => "anonymous local volumes not used by at least one container",
        };
        if !confirm(&format!("WARNING! This will remove {what}."))? {
            return Ok(0);
        }
    }
    let (removed, freed) = prune_unused(args.all, &filters)?;
    let mut out = std::io::stdout().lock();
    write_removed(&mut out, "Deleted Volumes:", &removed)?;
    writeln!(out, "Total reclaimed space: {}", human_size(freed))?;
    Ok(0)
}

/// `system df`'s line for volumes: how many, how many in use, their size
/// and what removing the unused would free.
pub fn usage() -> Result<(usize, usize, u64, u64)> {
    let store = open()?;
    let users = claims::users(&store.containers);
    let (mut total, mut active, mut size, mut reclaimable) = (0, 0, 0, 0);
    for volume in store.volumes.list()? {
        let bytes = tree_size(&volume.data());
        total += 1;
        size += bytes;
        match users.contains_key(volume.name()) {
            true => active += 1,
            false => reclaimable += bytes,
        }
    }
    Ok((total, active, size, reclaimable))
}
