//! `rocker pull`, `images`, `rmi`, `image prune` and `image inspect`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::args::{Format, HistoryArgs, ImagesArgs, InspectArgs, PullArgs, RmiArgs, TagArgs};
use crate::commands::filters::{label_matches, Filters};
use crate::commands::output::{human_size, write_table};
use crate::commands::template;
use crate::error::StatusError;
use crate::host::dirs::Dirs;
use crate::image::digest::Digest;
use crate::image::distribution::auth::AuthFiles;
use crate::image::distribution::client::Registry;
use crate::image::distribution::registries_conf::Registries;
use crate::image::manifest::{ImageConfig, Platform};
use crate::image::pull::{pull, PullOptions};
use crate::image::reference::Reference;
use crate::image::store::{ImageRecord, Store};
use crate::rootfs::backing::container_dir::{layers_in_use, sweep_unrecorded};
use crate::util::fs::tree_size;
use crate::util::time;

/// What every image command needs.
pub struct ImageContext {
    pub dirs: Dirs,
    pub store: Store,
}

impl ImageContext {
    pub fn open() -> Result<ImageContext> {
        let dirs = Dirs::discover()?;
        let store = Store::open(&dirs.data)?;
        Ok(ImageContext { dirs, store })
    }

    pub fn registry(&self) -> Result<Registry> {
        let (limit, time) = crate::host::config::Config::load(&self.dirs.config)?.low_speed()?;
        Ok(
            Registry::new(AuthFiles::new(self.dirs.auth_file.clone(), &self.dirs.home))
                .with_low_speed(limit, time),
        )
    }

    pub fn registries(&self) -> Result<Registries> {
        Registries::load(&self.dirs.config_home)
    }

    /// `image`'s size as docker counts it: its layers extracted (measured
    /// in the store when the record has no size for one).
    pub fn unpacked_size(&self, image: &ImageRecord) -> u64 {
        image.unpacked_size(|layer| tree_size(&self.store.layer_path(&layer.diff_id)))
    }

    /// An image by name (normalized: `alpine` finds
    /// `docker.io/library/alpine:latest`) or by an id prefix.
    pub fn find(&self, text: &str) -> Result<Vec<ImageRecord>> {
        if let Ok(reference) = Reference::parse(text) {
            if let Some(record) = self.store.image_named(&reference.to_string())? {
                return Ok(vec![record]);
            }
        }
        // Only a text that can be an id prefix reads the whole index (a
        // name that is not there costs one read of it, not two).
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(self
                .store
                .images()?
                .into_iter()
                .filter(|i| i.id().hex().starts_with(hex))
                .collect());
        }
        Ok(vec![])
    }

    /// The one image `text` names: by name, or by an id prefix that every
    /// match shares (one image under several names is one image).
    pub fn find_one(&self, text: &str) -> Result<Option<ImageRecord>> {
        let found = self.find(text)?;
        let ids: std::collections::BTreeSet<&Digest> = found.iter().map(ImageRecord::id).collect();
        if ids.len() > 1 {
            bail!("{text} matches {} images; give more of the id", ids.len());
        }
        Ok(found.into_iter().next())
    }
}

pub fn no_such_image(text: &str) -> anyhow::Error {
    StatusError::new(1, format!("no such image: {text} (see rocker images)")).into()
}

pub fn pull_command(args: PullArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let reference = Reference::parse(&args.reference)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let config = crate::host::config::Config::load(&context.dirs.config)?;
    let options = PullOptions::new(platform, args.quiet, &config)?;
    let record = pull(
        &context.store,
        &context.registry()?,
        &context.registries()?,
        &reference,
        &options,
    )?;
    if !args.quiet {
        eprintln!("Pulled {} ({})", record.name, record.manifest);
    }
    println!("{}", record.id());
    Ok(0)
}

/// docker's `reference=` filter: a pattern (`busy*`, `*/app:1`) against
/// the name as the user knows it (`busybox:latest`, or a registry's
/// `host/team/app:1`), with or without its tag.
fn reference_matches(pattern: &str, name: &str) -> bool {
    let familiar = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    let untagged = |n: &str| -> String {
        match n.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
            _ => n.to_string(),
        }
    };
    [
        name.to_string(),
        familiar.to_string(),
        untagged(name),
        untagged(familiar),
    ]
    .iter()
    .any(|candidate| crate::build::pattern::matches(pattern, candidate))
}

/// `docker.io/library/alpine:3.20` -> (`docker.io/library/alpine`, `3.20`);
/// an image with no name (filed under its id) is `<none>`, `<none>`.
fn repository_and_tag(name: &str) -> (String, String) {
    if name.starts_with("sha256:") {
        return ("<none>".to_string(), "<none>".to_string());
    }
    match Reference::parse(name) {
        Ok(reference) => (
            reference.name(),
            reference
                .tag
                .clone()
                .unwrap_or_else(|| "<none>".to_string()),
        ),
        Err(_) => (name.to_string(), "<none>".to_string()),
    }
}

pub fn images_command(args: ImagesArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let mut images = context.store.images()?;
    // An image indexed under its id as well as a name is listed by name;
    // build steps' images only with -a.
    let named: std::collections::BTreeSet<Digest> = images
        .iter()
        .filter(|image| image.name != image.id().to_string())
        .map(|image| image.id().clone())
        .collect();
    images.retain(|image| {
        let unnamed = image.name == image.id().to_string();
        !(unnamed && named.contains(image.id())) && (args.all || !image.build_cache)
    });
    let filters = Filters::parse(
        &args.filters,
        &["dangling", "label", "reference", "before", "since"],
    )?;
    // When the image was made, from its config (as docker shows it).
    let created = |image: &ImageRecord| -> Option<u64> {
        let bytes = context.store.read_blob(&image.config).ok()?;
        let config: ImageConfig = serde_json::from_slice(&bytes).ok()?;
        config.created.as_deref().and_then(time::parse_rfc3339)
    };
    // before= and since= name an image; docker compares creation times.
    let created_of_named = |text: &str| -> Result<u64> {
        let image = context.find_one(text)?.ok_or_else(|| {
            anyhow::Error::new(StatusError::new(
                1,
                format!("no such image: {text} (in --filter before/since)"),
            ))
        })?;
        Ok(created(&image).unwrap_or(image.pulled))
    };
    let mut before = vec![];
    let mut since = vec![];
    for (key, list) in [("before", &mut before), ("since", &mut since)] {
        for text in filters.values(key) {
            list.push(created_of_named(text)?);
        }
    }
    let wanted = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let explicit_tag = args
        .reference
        .as_deref()
        .and_then(|text| text.rsplit('/').next())
        .is_some_and(|last| last.contains(':'));
    let labels_of = |image: &ImageRecord| -> std::collections::BTreeMap<String, String> {
        context
            .store
            .read_blob(&image.config)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ImageConfig>(&bytes).ok())
            .and_then(|config| config.config?.labels)
            .unwrap_or_default()
    };
    images.retain(|image| {
        let dangling = image.name == image.id().to_string();
        let listed_as = Reference::parse(&image.name).ok();
        let by_reference = match (&wanted, &listed_as) {
            (None, _) => true,
            (Some(_), None) => false,
            // A repository alone lists all its tags, as docker does.
            (Some(wanted), Some(name)) => {
                name.name() == wanted.name() && (!explicit_tag || name.tag == wanted.tag)
            }
        };
        by_reference
            && filters.allows("dangling", |f| (f == "true") == dangling)
            && filters.allows("label", |f| label_matches(f, &labels_of(image)))
            && filters.allows("reference", |pattern| {
                !dangling && reference_matches(pattern, &image.name)
            })
            && {
                let at = created(image).unwrap_or(image.pulled);
                before.iter().all(|limit| at < *limit) && since.iter().all(|limit| at > *limit)
            }
    });
    images.sort_by(|a, b| b.pulled.cmp(&a.pulled).then(a.name.cmp(&b.name)));
    let mut out = std::io::stdout().lock();
    let id_of = |image: &ImageRecord| match args.no_trunc {
        true => image.id().to_string(),
        false => image.id().short().to_string(),
    };
    if args.quiet {
        for image in &images {
            writeln!(out, "{}", id_of(image))?;
        }
        return Ok(0);
    }
    // Extracted, as docker counts an image's size.
    let unpacked = |image: &ImageRecord| context.unpacked_size(image);
    // The fields of docker's `images --format`, and rocker's own beside
    // them under names docker does not use.
    let rows = || -> Vec<serde_json::Value> {
        let now = time::now_nanos();
        images
            .iter()
            .map(|image| {
                let (repository, tag) = repository_and_tag(&image.name);
                let at = created(image);
                let size = unpacked(image);
                json!({
                    "Repository": repository,
                    "Tag": tag,
                    "ID": match args.no_trunc {
                        true => image.id().to_string(),
                        false => image.id().short().to_string(),
                    },
                    "Digest": image.manifest,
                    "CreatedAt": at.map(time::rfc3339).unwrap_or_default(),
                    "CreatedSince": at
                        .map(|at| format!("{} ago", time::duration_words(at, now)))
                        .unwrap_or_else(|| "<unknown>".to_string()),
                    "Size": human_size(size),
                    "VirtualSize": human_size(size),
                    "SharedSize": "N/A",
                    "UniqueSize": "N/A",
                    "Containers": "N/A",
                    "Name": image.name,
                    "Platform": image.platform,
                    "SizeBytes": size,
                    "DownloadSizeBytes": image.size(),
                })
            })
            .collect()
    };
    match args.format {
        // docker's: one object per line.
        Format::Json => {
            for row in rows() {
                writeln!(out, "{row}")?;
            }
        }
        Format::Template(template) => template::print_each(&template, &rows())?,
        Format::Text => {
            let now = time::now_nanos();
            let rows: Vec<Vec<String>> = images
                .iter()
                .map(|image| {
                    let (repository, tag) = repository_and_tag(&image.name);
                    let mut row = vec![repository.to_string(), tag.to_string()];
                    if args.digests {
                        row.push(image.manifest.to_string());
                    }
                    row.extend([
                        id_of(image),
                        created(image)
                            .map(|at| format!("{} ago", time::duration_words(at, now)))
                            .unwrap_or_else(|| "<unknown>".to_string()),
                        human_size(unpacked(image)),
                    ]);
                    row
                })
                .collect();
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            write_table(&mut out, &header, &rows)?;
        }
    }
    Ok(0)
}

pub fn rmi_command(args: RmiArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    for text in &args.images {
        let found = context.find(text)?;
        if found.is_empty() {
            return Err(no_such_image(text));
        }
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        if found.len() > 1 && !args.force {
            return Err(StatusError::new(
                1,
                format!(
                    "{text} names several images ({}); remove them by name, or use -f",
                    names.join(", ")
                ),
            )
            .into());
        }
        let doomed: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        for removed in context.store.remove_images(|i| doomed.contains(&i.name))? {
            println!("Untagged: {}", removed.name);
        }
    }
    let (layers, _) = context.store.collect_garbage(pins)?;
    if layers > 0 {
        println!("Deleted {layers} unused layers");
    }
    Ok(0)
}

/// `rocker tag SOURCE TARGET`: the image under one more name, normalized
/// as pull names it (`app` is `docker.io/library/app:latest`). A name
/// another image held moves to this one, as in docker.
pub fn tag_command(args: TagArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let Some(image) = context.find_one(&args.source)? else {
        return Err(no_such_image(&args.source));
    };
    let target = Reference::parse(&args.target)?;
    if target.digest.is_some() {
        bail!(
            "{}: a tag cannot name a digest (the digest is the content's); give \
             REPOSITORY[:TAG]",
            args.target
        );
    }
    let name = target.to_string();
    // Garbage collection waits meanwhile: the layers stay while the image
    // gets its new name, even if another rocker removes its old one.
    let _lock = context.store.lock_shared()?;
    context.store.put_image(ImageRecord { name, ..image })?;
    Ok(0)
}

/// One row of `rocker history`, newest first.
struct HistoryRow {
    /// The image's id on the top row, as docker shows it.
    id: Option<String>,
    created: Option<u64>,
    created_by: String,
    size: u64,
    comment: String,
}

/// The image's history, newest first: each config history entry, with the
/// size of the layer it made (entries with `empty_layer` made none). An
/// image whose config has no history gets a row per layer.
fn history_rows(context: &ImageContext, image: &ImageRecord) -> Result<Vec<HistoryRow>> {
    let config: ImageConfig = serde_json::from_slice(&context.store.read_blob(&image.config)?)
        .with_context(|| format!("reading the config of {}", image.name))?;
    let mut layers = image
        .layers
        .iter()
        .map(|layer| tree_size(&context.store.layer_path(&layer.diff_id)));
    let mut rows: Vec<HistoryRow> = match config.history.is_empty() {
        true => layers
            .map(|size| HistoryRow {
                id: None,
                created: None,
                created_by: String::new(),
                size,
                comment: String::new(),
            })
            .collect(),
        false => config
            .history
            .iter()
            .map(|entry| HistoryRow {
                id: None,
                created: entry.created.as_deref().and_then(time::parse_rfc3339),
                created_by: entry.created_by.clone().unwrap_or_default(),
                size: match entry.empty_layer {
                    true => 0,
                    false => layers.next().unwrap_or(0),
                },
                comment: entry.comment.clone().unwrap_or_default(),
            })
            .collect(),
    };
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = Some(image.id().to_string());
    }
    Ok(rows)
}

/// `rocker history IMAGE`: how each layer was made, newest first.
pub fn history_command(args: HistoryArgs) -> Result<i32> {
    let context = ImageContext::open()?;
    let Some(image) = context.find_one(&args.image)? else {
        return Err(no_such_image(&args.image));
    };
    let rows = history_rows(&context, &image)?;
    let short_id = |id: &Option<String>| match id {
        Some(id) if args.no_trunc => id.clone(),
        Some(id) => id.trim_start_matches("sha256:")[..12].to_string(),
        None => "<missing>".to_string(),
    };
    if args.quiet {
        for row in &rows {
            println!("{}", short_id(&row.id));
        }
        return Ok(0);
    }
    if let Format::Template(template) = &args.format {
        let now = time::now_nanos();
        let list: Vec<_> = rows
            .iter()
            .map(|row| {
                json!({
                    "ID": short_id(&row.id),
                    "CreatedAt": row.created.map(time::rfc3339).unwrap_or_default(),
                    "CreatedSince": row
                        .created
                        .map(|at| format!("{} ago", time::duration_words(at, now)))
                        .unwrap_or_default(),
                    "CreatedBy": row.created_by,
                    "Size": human_size(row.size),
                    "Comment": row.comment,
                })
            })
            .collect();
        template::print_each(template, &list)?;
        return Ok(0);
    }
    if let Format::Json = args.format {
        let list: Vec<_> = rows
            .iter()
            .map(|row| {
                json!({
                    "id": row.id.clone().unwrap_or_else(|| "<missing>".to_string()),
                    "created": row.created.map(time::rfc3339),
                    "created_by": row.created_by,
                    "size": row.size,
                    "comment": row.comment,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let now = time::now_nanos();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut created_by = row.created_by.clone();
            if !args.no_trunc && created_by.chars().count() > 45 {
                created_by = format!("{}…", created_by.chars().take(44).collect::<String>());
            }
            vec![
                short_id(&row.id),
                row.created
                    .map(|at| format!("{} ago", time::duration_words(at, now)))
                    .unwrap_or_else(|| "<unknown>".to_string()),
                created_by,
                human_size(row.size),
                row.comment.clone(),
            ]
        })
        .collect();
    write_table(
        &mut std::io::stdout().lock(),
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &table,
    )?;
    Ok(0)
}

/// The layers containers pin, once the dirs of runs killed before they
/// recorded their container are swept (they would pin layers for ever).
pub fn pins(store_root: &std::path::Path) -> Vec<String> {
    sweep_unrecorded(store_root, UNRECORDED_GRACE);
    layers_in_use(store_root)
}

/// How long a container dir may go without a record before it counts as
/// a killed run's: making one takes well under that.
pub const UNRECORDED_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

pub fn prune_command() -> Result<i32> {
    let context = ImageContext::open()?;
    let (layers, blobs) = context.store.collect_garbage(pins)?;
    println!("Deleted {layers} unused layers and {blobs} unused blobs");
    Ok(0)
}

pub fn inspect_command(args: InspectArgs) -> Result<i32> {
    let mut reports = vec![];
    for text in &args.images {
        reports.extend(image_reports(text)?);
    }
    print_reports(&args.format, &reports)?;
    Ok(0)
}

/// `inspect`'s output: the reports as a JSON list, or each through the
/// template.
pub fn print_reports(format: &Format, reports: &[serde_json::Value]) -> Result<()> {
    match format {
        Format::Template(template) => template::print_each(template, reports),
        _ => {
            println!("{}", serde_json::to_string_pretty(reports)?);
            Ok(())
        }
    }
}

/// What `inspect` says of the images `text` names (one unless an id
/// prefix matches several names); an error when none.
pub fn image_reports(text: &str) -> Result<Vec<serde_json::Value>> {
    let context = ImageContext::open()?;
    let found = context.find(text)?;
    if found.is_empty() {
        return Err(no_such_image(text));
    }
    let mut reports = vec![];
    let mut reported = std::collections::BTreeSet::new();
    for image in &found {
        // One image under several names is reported once, with them all.
        if !reported.insert(image.id().clone()) {
            continue;
        }
        let names: Vec<&str> = found
            .iter()
            .filter(|other| other.id() == image.id())
            .map(|other| other.name.as_str())
            .collect();
        let config: serde_json::Value =
            serde_json::from_slice(&context.store.read_blob(&image.config)?)
                .with_context(|| format!("reading the config of {}", image.name))?;
        reports.push(json!({
            "Id": image.id(),
            "Name": image.name,
            "RepoTags": names,
            "Digest": image.manifest,
            "Platform": image.platform,
            "Size": context.unpacked_size(image),
            "Layers": image.layers.iter().map(|l| json!({
                "Digest": l.digest, "DiffID": l.diff_id, "Size": l.size,
                "Path": context.store.layer_path(&l.diff_id),
            })).collect::<Vec<_>>(),
            // docker's fields, from the image config.
            "RepoDigests": names
                .iter()
                .filter_map(|name| Reference::parse(name).ok())
                .map(|reference| format!("{}@{}", reference.name(), image.manifest))
                .collect::<Vec<_>>(),
            "Created": config["created"],
            "Author": config["author"],
            "Architecture": config["architecture"],
            "Os": config["os"],
            "Variant": config["variant"],
            "Config": config["config"],
            "RootFS": {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]},
            // The whole config, as the image holds it (history included).
            "ImageConfig": config,
        }));
    }
    Ok(reports)
}
