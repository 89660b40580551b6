//! `rocker builder prune`, and the build cache's part of `system prune`
//! and `system df`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::CACHE_MOUNTS;
use crate::build::cache::Cache;
use crate::commands::image::ImageContext;
use crate::image::store::Store;

/// `rocker builder prune`: the build cache's images that no name holds,
/// the cache's entries for them, its cache mounts, and the layers only
/// they used.
pub fn builder_prune_command() -> Result<i32> {
    let context = ImageContext::open()?;
    let removed = prune_build_cache(&context.store)?;
    let (layers, _) = context
        .store
        .collect_garbage(crate::commands::image::pins)?;
    println!(
        "Deleted {removed} build cache images, {layers} layers only they used, and the RUN cache \
         mounts"
    );
    Ok(0)
}

/// Removes the build cache but for the layers (garbage collection's job
/// after): the steps' images no name holds, their cache entries, the cache
/// mounts. Returns how many images went.
pub fn prune_build_cache(store: &Store) -> Result<usize> {
    let named: BTreeSet<String> = store
        .images()?
        .iter()
        .filter(|image| !image.build_cache)
        .map(|image| image.id().to_string())
        .collect();
    let removed = store
        .remove_images(|image| image.build_cache && !named.contains(&image.id().to_string()))?;
    let indexed: BTreeSet<String> = store.images()?.iter().map(|i| i.id().to_string()).collect();
    Cache::open(store.root()).prune(&|id| indexed.contains(id))?;
    let mounts = store.root().join(CACHE_MOUNTS);
    if mounts.exists() {
        crate::util::fs::remove_tree(&mounts)
            .with_context(|| format!("removing the cache mounts in {}", mounts.display()))?;
    }
    Ok(removed.len())
}

/// The store's cache mounts' directory, for `system df`.
pub fn cache_mounts_dir(store: &Store) -> PathBuf {
    store.root().join(CACHE_MOUNTS)
}
