//! `rocker system df` and `rocker system prune`: what the store holds and
//! what could go, by kind (images, containers, volumes, build cache), as
//! docker counts them; and removing what nothing uses.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Result;

use super::build::{cache_mounts_dir, prune_build_cache};
use super::container::prune_stopped;
use super::filters::Filters;
use super::image::{pins, ImageContext};
use super::output::{confirm, human_size, write_removed, write_table};
use crate::cli::args::SystemPruneArgs;
use crate::container::record::{Containers, State};
use crate::image::store::ImageRecord;
use crate::util::fs::tree_size;

/// One line of `system df`.
struct Usage {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

fn percent(part: u64, whole: u64) -> String {
    match whole {
        0 => "0%".to_string(),
        whole => format!("{}%", part * 100 / whole),
    }
}

/// The unpacked size of each layer the images use, measured once.
fn layer_sizes(context: &ImageContext, images: &[ImageRecord]) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    for image in images {
        for layer in &image.layers {
            sizes.entry(layer.diff_id.to_string()).or_insert_with(|| {
                layer
                    .unpacked_size
                    .unwrap_or_else(|| tree_size(&context.store.layer_path(&layer.diff_id)))
            });
        }
    }
    sizes
}

fn layers_of<'a>(images: impl Iterator<Item = &'a ImageRecord>) -> BTreeSet<String> {
    images
        .flat_map(|image| image.layers.iter().map(|l| l.diff_id.to_string()))
        .collect()
}

pub fn df_command() -> Result<i32> {
    let context = ImageContext::open()?;
    let containers = Containers::open(&context.dirs)?;
    let records = containers.list()?;
    let all = context.store.images()?;
    let sizes = layer_sizes(&context, &all);
    let sum =
        |layers: &BTreeSet<String>| -> u64 { layers.iter().filter_map(|l| sizes.get(l)).sum() };

    // Images: one per id that a name holds.
    let mut named: BTreeMap<String, &ImageRecord> = BTreeMap::new();
    for image in all.iter().filter(|i| !i.build_cache) {
        named.entry(image.id().to_string()).or_insert(image);
    }
    let used_ids: BTreeSet<String> = records.iter().filter_map(|r| r.image_id.clone()).collect();
    let image_layers = layers_of(named.values().copied());
    let active_layers = layers_of(
        named
            .iter()
            .filter(|(id, _)| used_ids.contains(*id))
            .map(|(_, image)| *image),
    );
    let images = Usage {
        kind: "Images",
        total: named.len(),
        active: named.keys().filter(|id| used_ids.contains(*id)).count(),
        size: sum(&image_layers),
        reclaimable: sum(&image_layers.difference(&active_layers).cloned().collect()),
    };

    // Containers: what each wrote (its dir, links to layers not followed).
    let mut container_usage = Usage {
        kind: "Containers",
        total: records.len(),
        active: 0,
        size: 0,
        reclaimable: 0,
    };
    for record in &records {
        let size = tree_size(&containers.dir(&record.id));
        container_usage.size += size;
        match containers.state(&record.id) {
            Ok(State::Running(_)) | Ok(State::Restarting { .. }) => container_usage.active += 1,
            _ => container_usage.reclaimable += size,
        }
    }

    // The build cache: the steps' images no name holds, the layers only
    // they use, and the RUN cache mounts.
    let cache_images: BTreeSet<String> = all
        .iter()
        .filter(|i| i.build_cache && !named.contains_key(&i.id().to_string()))
        .map(|i| i.id().to_string())
        .collect();
    let cache_layers: BTreeSet<String> = layers_of(
        all.iter()
            .filter(|i| cache_images.contains(&i.id().to_string())),
    )
    .difference(&image_layers)
    .cloned()
    .collect();
    let mounts = tree_size(&cache_mounts_dir(&context.store));
    let cache_size = sum(&cache_layers) + mounts;
    let build_cache = Usage {
        kind: "Build Cache",
        total: cache_images.len(),
        active: 0,
        size: cache_size,
        reclaimable: cache_size,
    };
    let (total, active, size, reclaimable) = super::volume::usage()?;
    let volumes = Usage {
        kind: "Local Volumes",
        total,
        active,
        size,
        reclaimable,
    };

    let rows: Vec<Vec<String>> = [images, container_usage, volumes, build_cache]
        .iter()
        .map(|usage| {
            vec![
                usage.kind.to_string(),
                usage.total.to_string(),
                usage.active.to_string(),
                human_size(usage.size),
                format!(
                    "{} ({})",
                    human_size(usage.reclaimable),
                    percent(usage.reclaimable, usage.size)
                ),
            ]
        })
        .collect();
    let mut out = std::io::stdout().lock();
    write_table(
        &mut out,
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &rows,
    )?;
    Ok(0)
}

/// docker's warning for `system prune`.
fn warning(all: bool, volumes: bool) -> String {
    let images = match all {
        true => "all images without at least one container associated to them",
        false => "all dangling images",
    };
    let volumes = match volumes {
        true => "\n  - all anonymous volumes not used by at least one container",
        false => "",
    };
    format!(
        "WARNING! This will remove:\n  - all stopped containers{volumes}\n  - {images}\n  - \
         all build cache\n"
    )
}

pub fn prune_command(args: SystemPruneArgs) -> Result<i32> {
    if !args.force && !confirm(&warning(args.all, args.volumes))? {
        return Ok(0);
    }
    let context = ImageContext::open()?;
    let store = &context.store;
    let before = tree_size(store.root());
    let containers = Containers::open(&context.dirs)?;
    let removed_containers = prune_stopped(&containers)?;
    // docker's --volumes: the anonymous ones only, whatever -a says.
    let (removed_volumes, _) = match args.volumes {
        true => super::volume::prune_unused(false, &Filters::parse(&[], &[])?)?,
        false => (vec![], 0),
    };
    // Images: dangling ones (no name), or with -a every one no container
    // uses.
    let used_ids: BTreeSet<String> = containers
        .list()?
        .iter()
        .filter_map(|r| r.image_id.clone())
        .collect();
    let all = store.images()?;
    let named_ids: BTreeSet<String> = all
        .iter()
        .filter(|i| !i.build_cache && i.name != i.id().to_string())
        .map(|i| i.id().to_string())
        .collect();
    let removed_images = store.remove_images(|image| {
        let id = image.id().to_string();
        if image.build_cache || used_ids.contains(&id) {
            return false;
        }
        let dangling = image.name == id && !named_ids.contains(&id);
        dangling || args.all
    })?;
    let cache = prune_build_cache(store)?;
    store.collect_garbage(pins)?;
    let after = tree_size(store.root());
    let mut out = std::io::stdout().lock();
    write_removed(&mut out, "Deleted Containers:", &removed_containers)?;
    write_removed(&mut out, "Deleted Volumes:", &removed_volumes)?;
    let images: Vec<String> = removed_images
        .iter()
        .map(|image| match image.name == image.id().to_string() {
            true => format!("deleted: {}", image.id()),
            false => format!("untagged: {}", image.name),
        })
        .collect();
    write_removed(&mut out, "Deleted Images:", &images)?;
    if cache > 0 {
        writeln!(out, "Deleted build cache objects: {cache}\n")?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(before.saturating_sub(after))
    )?;
    Ok(0)
}
