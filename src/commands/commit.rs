//! `rocker commit`, `export` and `import`: images from containers and
//! tarballs, and a container's files as a tarball.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use super::archive::sniff_compression;
use super::image::ImageContext;
use crate::cli::args::{CommitArgs, ExportArgs, ImportArgs};
use crate::container::freeze::freeze;
use crate::container::record::{ContainerRecord, Containers, RootfsKind, State};
use crate::image::assemble::{assemble, NewImage};
use crate::image::config_changes;
use crate::image::layer::ingest::{take_layer, ImageBudget, Incoming, Keep};
use crate::image::manifest::{Compression, ImageConfig};
use crate::image::reference::Reference;
use crate::image::store::{ImageRecord, Store};
use crate::rootfs::backing::layer_tar::{
    image_layers, write_changes, write_copy_changes, write_merged, Ownership,
};
use crate::util::fs::write_streamed_atomic;

fn budget(context: &ImageContext) -> Result<ImageBudget> {
    let config = crate::host::config::Config::load(&context.dirs.config)?;
    Ok(ImageBudget::new(
        config.max_layer_size()?,
        config.max_image_size()?,
    ))
}

/// `[REPOSITORY[:TAG]]` as the store names it; none: the image goes
/// unnamed (under its id).
pub fn target_names(reference: Option<&str>) -> Result<Vec<String>> {
    match reference {
        None => Ok(vec![]),
        Some(text) => {
            let reference = Reference::parse(text)?;
            if reference.digest.is_some() {
                bail!("{text}: name the new image with a tag, not a digest");
            }
            Ok(vec![reference.to_string()])
        }
    }
}

/// The container's image, which must still be in the store.
fn base_image(context: &ImageContext, record: &ContainerRecord) -> Result<ImageRecord> {
    let Some(id) = &record.image_id else {
        bail!(
            "container {} runs on a directory (--rootfs), not an image: tar the directory \
             and rocker import it",
            record.name
        );
    };
    context.find_one(id)?.with_context(|| {
        format!(
            "the image of container {} ({id}, {}) is no longer in the store; pull it again",
            record.name, record.image
        )
    })
}

/// docker commit's config: the image's, with what the container was run
/// with (its environment, command, working directory, labels).
fn container_config(
    base: &ImageConfig,
    base_value: &Value,
    record: &ContainerRecord,
) -> Map<String, Value> {
    let mut config = base_value
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let image = base.config.clone().unwrap_or_default();
    let image_env = image.env.clone().unwrap_or_default();
    let has = |key: &str| image_env.iter().any(|e| e.split('=').next() == Some(key));
    // What rocker sets at run time is no part of the image.
    let runtime_only = |key: &str| {
        key == "HOSTNAME"
            || (key == "TERM" && record.tty && !has("TERM"))
            || (key == "HOME" && !has("HOME"))
    };
    let env: Vec<&String> = record
        .env
        .iter()
        .filter(|entry| !runtime_only(entry.split('=').next().unwrap_or("")))
        .collect();
    config.insert("Env".into(), json!(env));
    let entrypoint = image.entrypoint.unwrap_or_default();
    if !entrypoint.is_empty() && record.command.starts_with(&entrypoint) {
        config.insert("Cmd".into(), json!(record.command[entrypoint.len()..]));
    } else {
        config.insert("Entrypoint".into(), Value::Null);
        config.insert("Cmd".into(), json!(record.command));
    }
    config.insert("WorkingDir".into(), record.working_dir.clone().into());
    if !record.labels.is_empty() {
        config.insert("Labels".into(), json!(record.labels));
    }
    config
}

fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for change in changes {
        config_changes::apply(config, change).with_context(|| format!("--change {change:?}"))?;
    }
    Ok(())
}

/// The layer directories of a copy-mode container's image (a copied root
/// keeps no links to them); the first one missing, as the error.
fn copied_image_layers(store: &Store, base: &ImageRecord) -> Result<Vec<PathBuf>, PathBuf> {
    let layers: Vec<PathBuf> = base
        .layers
        .iter()
        .map(|l| store.layer_path(&l.diff_id))
        .collect();
    match layers.iter().find(|layer| !layer.is_dir()) {
        Some(gone) => Err(gone.clone()),
        None => Ok(layers),
    }
}

/// `rocker commit CONTAINER [REPOSITORY[:TAG]]`: the container's writes
/// as a new layer over its image.
pub fn commit_command(args: CommitArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let containers = Containers::open(&context.dirs)?;
    let record = containers.find(&args.container)?;
    if record.rootfs_mode == RootfsKind::Directory {
        bail!(
            "container {} runs on a directory (--rootfs), not an image: tar the directory \
             and rocker import it",
            record.name
        );
    }
    let base = base_image(&context, &record)?;
    let base_value: Value = serde_json::from_slice(&context.store.read_blob(&base.config)?)
        .with_context(|| format!("reading the config of {}", base.name))?;
    let base_config: ImageConfig = serde_json::from_value(base_value.clone())
        .with_context(|| format!("reading the config of {}", base.name))?;
    let mut config = container_config(&base_config, &base_value, &record);
    apply_changes(&mut config, &args.change)?;
    let names = target_names(args.repository.as_deref())?;
    let image = commit_container(
        &context,
        &containers,
        &record,
        &base,
        Commit {
            config,
            earlier: vec![],
            created_by: format!("rocker commit {}", record.name),
            comment: args.message.clone(),
            author: args.author.clone(),
            pause: args.pause,
            build_cache: false,
        },
        &names,
    )?;
    println!("{}", image.id());
    Ok(0)
}

/// What a commit makes of a container's writes: the new image's config
/// and history.
pub struct Commit {
    pub config: Map<String, Value>,
    pub earlier: Vec<String>,
    pub created_by: String,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Freeze a running container while its writes are read.
    pub pause: bool,
    /// A build step's image (see `ImageRecord::build_cache`).
    pub build_cache: bool,
}

/// The writes of container `record` as one new layer over `base`, its
/// image: the image written and indexed under `names` (none: its id).
pub fn commit_container(
    context: &ImageContext,
    containers: &Containers,
    record: &ContainerRecord,
    base: &ImageRecord,
    commit: Commit,
    names: &[String],
) -> Result<ImageRecord> {
    let store = &context.store;
    // Garbage collection waits: the container's layers stay meanwhile.
    let _shared = store.lock_shared()?;
    let dir = containers.dir(&record.id);
    let copied = record.rootfs_mode == RootfsKind::Copy;
    let layers = match copied {
        true => copied_image_layers(store, base).map_err(|gone| {
            anyhow::anyhow!(
                "a layer of the image of container {} is no longer in the store ({}); pull {} \
                 again to commit the container",
                record.name,
                gone.display(),
                base.name
            )
        })?,
        false => image_layers(&dir, store)?,
    };
    let ownership = Ownership::new(store, layers, record.user.uid, record.user.gid);
    // As docker: nothing in a running container runs while its writes
    // are read, so the layer is one moment of them.
    let frozen = match containers.state(&record.id)? {
        // (a paused one is held already)
        State::Running(live) if commit.pause && live.paused.is_none() => {
            Some(freeze(live.init.pid)?)
        }
        _ => None,
    };
    let temp = store.temp_dir("commit")?;
    let tar_path = temp.path().join("layer.tar");
    let file = std::fs::File::create(&tar_path)
        .with_context(|| format!("creating {}", tar_path.display()))?;
    let out = std::io::BufWriter::new(file);
    let written = if copied {
        write_copy_changes(&dir.join("rootfs"), &ownership, out)
    } else {
        write_changes(&dir.join("upper"), &ownership, out)
    };
    let mut out =
        written.with_context(|| format!("reading the writes of container {}", record.name))?;
    out.flush().context("writing the new layer")?;
    drop(out);
    drop(frozen);
    let incoming = Incoming {
        compression: Compression::None,
        blob: None,
        diff_id: None,
    };
    let tar = std::fs::File::open(&tar_path)?;
    let layer = take_layer(
        store,
        tar,
        &incoming,
        Keep::Compressed(Compression::Gzip),
        &budget(context)?,
    )
    .context("storing the new layer")?;
    assemble(
        store,
        NewImage {
            base: Some(base),
            layers: vec![layer],
            config: commit.config,
            earlier: commit.earlier,
            created_by: commit.created_by,
            comment: commit.comment,
            author: commit.author,
            build_cache: commit.build_cache,
        },
        names,
    )
}

/// `rocker export CONTAINER`: its root as it sees it, as a tar.
pub fn export_command(args: ExportArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let containers = Containers::open(&context.dirs)?;
    let record = containers.find(&args.container)?;
    let dir = containers.dir(&record.id);
    let store = &context.store;
    let (top, with_layers) = match record.rootfs_mode {
        RootfsKind::Overlay | RootfsKind::FuseOverlayfs => (dir.join("upper"), true),
        RootfsKind::Copy => (dir.join("rootfs"), false),
        RootfsKind::Directory => bail!(
            "container {} runs on a directory of yours (--rootfs {}): tar it directly",
            record.name,
            record.image
        ),
    };
    let _shared = store.lock_shared()?;
    // The image's layers say who owns what; a copied root keeps no links
    // to them, so they come from its image while the store has them.
    let layers = match record.rootfs_mode {
        RootfsKind::Copy => base_image(&context, &record)
            .ok()
            .and_then(|base| copied_image_layers(store, &base).ok())
            .unwrap_or_default(),
        _ => image_layers(&dir, store)?,
    };
    let ownership = Ownership::new(store, layers, record.user.uid, record.user.gid);
    let export = |out: &mut dyn Write| -> Result<()> {
        write_merged(&top, &ownership, with_layers, out)
            .with_context(|| format!("exporting container {}", record.name))?
            .flush()
            .context("writing the export")
    };
    match &args.output {
        Some(path) => write_streamed_atomic(path, 0o644, |file| export(file))?,
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("refusing to write a tar to a terminal; give -o FILE or redirect the output");
            }
            export(&mut std::io::BufWriter::with_capacity(
                1 << 20,
                stdout.lock(),
            ))?;
        }
    }
    Ok(0)
}

/// `rocker import FILE|- [REPOSITORY[:TAG]]`: a tarball (plain, gzip or
/// zstd) as a one-layer image.
pub fn import_command(args: ImportArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    if args.source.starts_with("http://") || args.source.starts_with("https://") {
        bail!(
            "rocker import reads files and standard input, not URLs: download {} first",
            args.source
        );
    }
    let mut config = Map::new();
    apply_changes(&mut config, &args.change)?;
    let names = target_names(args.reference.as_deref())?;
    let budget = budget(&context)?;
    let source: Box<dyn Read + Send> = if args.source == "-" {
        if std::io::stdin().is_terminal() {
            bail!("rocker import - reads the tarball from standard input; redirect it");
        }
        Box::new(std::io::stdin())
    } else {
        let file = std::fs::File::open(&args.source)
            .with_context(|| format!("opening {}", args.source))?;
        Box::new(std::io::BufReader::new(file))
    };
    let (compression, whole) = sniff_compression(source)?;
    let keep = Keep::compressed(compression);
    let incoming = Incoming {
        compression,
        blob: None,
        diff_id: None,
    };
    let store = &context.store;
    let _shared = store.lock_shared()?;
    let layer = take_layer(store, whole, &incoming, keep, &budget)
        .with_context(|| format!("importing {}", args.source))?;
    let image = assemble(
        store,
        NewImage {
            base: None,
            layers: vec![layer],
            config,
            earlier: vec![],
            created_by: "rocker import".into(),
            build_cache: false,
            comment: Some(
                args.message
                    .clone()
                    .unwrap_or_else(|| format!("Imported from {}", args.source)),
            ),
            author: None,
        },
        &names,
    )?;
    println!("{}", image.id());
    Ok(0)
}
