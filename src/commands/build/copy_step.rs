//! A build's COPY and ADD steps: layers written straight from the
//! context (or a stage's files, here-documents, fetched URLs, unpacked
//! archives), never through a container.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{Builder, StageState};
use crate::build::cache::Key;
use crate::build::ignore::Ignore;
use crate::build::instruction::Step;
use crate::build::stages::Plan;
use crate::build::{archive, copy, metadata, words};
use crate::image::assemble::{assemble, NewImage};
use crate::image::layer::ingest::{take_layer, Incoming, Keep};
use crate::image::manifest::Compression;
use crate::rootfs::backing::layers;
use crate::rootfs::users;
use crate::spec::UserSpec;

/// `--chown=USER[:GROUP]` as ids, names looked up in the image's account
/// files; a user alone gives its id as the group too, as docker does.
fn owner_in(layer_dirs: &[PathBuf], chown: &str) -> Result<(u32, u32)> {
    let read = |path: &str| layers::read_from_layers(layer_dirs, path, 4 << 20);
    let spec = UserSpec::parse(chown)?;
    let resolved = users::resolve(
        Some(&spec),
        read("/etc/passwd")?.as_deref(),
        read("/etc/group")?.as_deref(),
    )
    .with_context(|| format!("--chown={chown}"))?;
    let uid = resolved.ids.uid;
    // docker: a user alone is its own id as the group too, not its
    // primary group.
    let gid = match spec.group {
        Some(_) => resolved.ids.gid,
        None => uid,
    };
    Ok((uid, gid))
}

/// The archives ADD's sources name: all of them, or none (rocker does not
/// yet unpack archives and copy plain files in one ADD, as docker does).
fn archives_among(
    origin: &copy::Origin<'_>,
    sources: &[String],
) -> Result<Vec<(PathBuf, archive::Kind)>> {
    let mut archives = vec![];
    let mut plain = vec![];
    for source in sources {
        for relative in origin.expand(source)? {
            let path = origin.root.join(&relative);
            match archive::kind_of(&path)? {
                Some(kind) => archives.push((path, kind)),
                None => plain.push(relative),
            }
        }
    }
    if !archives.is_empty() && !plain.is_empty() {
        bail!(
            "ADD of archives and plain files at once ({}) is not supported yet: give the \
             archives an ADD of their own",
            plain.join(", ")
        );
    }
    Ok(archives)
}

/// What a COPY or ADD step copies, and how.
#[derive(Clone, Copy)]
pub(super) struct CopyArgs<'a> {
    pub sources: &'a [String],
    pub destination: &'a str,
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
}

impl Builder<'_> {
    /// The files of what COPY --from=`name` names (an earlier stage, or an
    /// image), laid out in a directory of the store's temp dir.
    pub(super) fn tree_of(&mut self, plan: &Plan, index: usize, name: &str) -> Result<PathBuf> {
        let image = match plan.stage_named(name, index) {
            Some(stage) => self.built[stage]
                .clone()
                .with_context(|| format!("stage {name} was not built"))?,
            None => self.image_named(name)?,
        };
        let id = image.id().to_string();
        if let Some(tree) = self.trees.get(&id) {
            return Ok(tree.path().join("root"));
        }
        let store = &self.context.store;
        let temp = store.temp_dir("build-from")?;
        {
            let _shared = store.lock_shared()?;
            let layers = crate::commands::run::layers_of(&self.context, &image)?;
            let layers: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
            crate::rootfs::backing::copy::flatten(&layers, &temp.path().join("root"))
                .with_context(|| format!("laying out the files of {name} for COPY --from"))?;
        }
        let root = temp.path().join("root");
        self.trees.insert(id, temp);
        Ok(root)
    }

    /// ADD of URLs: each fetched now into a directory the step copies from.
    pub(super) fn add_urls(
        &mut self,
        state: &mut StageState,
        step: &Step,
        what: CopyArgs<'_>,
        checksum: Option<&str>,
    ) -> Result<()> {
        let expand = |text: &str| words::expand(text, self.escape, &|name| state.lookup(name));
        let temp = self.context.store.temp_dir("build-url")?;
        let root = temp.path().join("fetched");
        std::fs::create_dir(&root)?;
        let limit = self.host_config.max_layer_size()?;
        let mut names = vec![];
        for source in what.sources {
            let url = expand(source)?;
            if !crate::build::url::is_url(&url) {
                bail!("ADD of URLs and files at once is not supported yet: give {url} an ADD of its own");
            }
            self.progress(&format!("fetching {url}"));
            let path = crate::build::url::fetch(&url, &root, checksum, limit)?;
            names.push(
                path.file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .to_string(),
            );
        }
        let fetched = CopyArgs {
            sources: &names,
            ..what
        };
        self.copy(state, step, false, fetched, Some(root))
    }

    /// `COPY <<EOF /path`: each here-document a file of that text (taken
    /// as written: its variables are not expanded).
    pub(super) fn copy_heredocs(
        &mut self,
        state: &mut StageState,
        step: &Step,
        heredocs: &[crate::build::containerfile::Heredoc],
        what: CopyArgs<'_>,
    ) -> Result<()> {
        let temp = self.context.store.temp_dir("build-heredoc")?;
        let root = temp.path().join("docs");
        std::fs::create_dir(&root)?;
        let mut names = vec![];
        for source in what.sources {
            let name = source.trim_start_matches("<<").trim_start_matches('-');
            let name = name.trim_matches(|c| c == '\'' || c == '"');
            let Some(heredoc) = heredocs.iter().find(|h| h.name == name) else {
                bail!("COPY takes here-documents or files, not both: {source}");
            };
            std::fs::write(root.join(&heredoc.name), &heredoc.body)?;
            std::fs::set_permissions(
                root.join(&heredoc.name),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            )?;
            names.push(heredoc.name.clone());
        }
        let documents = CopyArgs {
            sources: &names,
            ..what
        };
        self.copy(state, step, false, documents, Some(root))
    }

    pub(super) fn copy(
        &mut self,
        state: &mut StageState,
        step: &Step,
        add: bool,
        what: CopyArgs<'_>,
        from: Option<PathBuf>,
    ) -> Result<()> {
        let CopyArgs {
            sources,
            destination,
            chown,
            chmod,
        } = what;
        let keyword = if add { "ADD" } else { "COPY" };
        let expand = |text: &str| words::expand(text, self.escape, &|name| state.lookup(name));
        let no_ignore = Ignore::default();
        let (root, ignore) = match (&from, &self.source) {
            (Some(tree), _) => (tree.clone(), &no_ignore),
            (None, Some(context)) => (context.clone(), &self.ignore),
            (None, None) => bail!("{keyword} needs a build context: give a directory, not -"),
        };
        let sources = sources
            .iter()
            .map(|s| expand(s))
            .collect::<Result<Vec<_>>>()?;
        if add && sources.iter().any(|s| s.contains("://")) {
            bail!("ADD fetches http:// and https:// URLs only: download the file with RUN");
        }
        let workdir = state
            .config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        let mut destination_text = expand(destination)?;
        let keeps_slash = destination_text.ends_with('/');
        destination_text = metadata::resolve_path(&workdir, &destination_text);
        if keeps_slash && !destination_text.ends_with('/') {
            destination_text.push('/');
        }
        let layer_dirs = match &state.image {
            Some(image) => crate::commands::run::layers_of(&self.context, image)?,
            None => vec![],
        };
        let owner = match chown {
            Some(chown) => owner_in(&layer_dirs, &expand(chown)?)?,
            None => (0, 0),
        };
        let chmod = chmod
            .map(|text| {
                u32::from_str_radix(text, 8)
                    .ok()
                    .filter(|mode| *mode <= 0o7777)
                    .with_context(|| format!("--chmod={text}: give an octal mode such as 755"))
            })
            .transpose()?;
        let origin = copy::Origin {
            root: &root,
            ignore,
        };
        let has_dir = |path: &str| layers::is_directory_in_layers(&layer_dirs, path);
        if add && from.is_none() {
            let archives = archives_among(&origin, &sources)?;
            if !archives.is_empty() {
                let chown = chown.map(|_| owner);
                return self.add_archives(
                    state,
                    step,
                    &archives,
                    &destination_text,
                    chown,
                    &has_dir,
                );
            }
        }
        let plan = copy::plan(
            &origin,
            &copy::Request {
                sources: &sources,
                destination: &destination_text,
                owner,
                chmod,
                image_has_dir: &has_dir,
            },
        )?;
        let key = state.key.then(&[keyword, &destination_text, &plan.digest]);
        if let Some(image) = self.cached(&key)? {
            return self.reuse(state, image, key);
        }
        let store = &self.context.store;
        let _shared = store.lock_shared()?;
        let temp = store.temp_dir("build-copy")?;
        let tar_path = temp.path().join("layer.tar");
        let file = std::fs::File::create(&tar_path)
            .with_context(|| format!("creating {}", tar_path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        copy::write_tar(&plan, &mut out)?;
        out.flush().context("writing the layer")?;
        drop(out);
        self.store_layer(state, step, &tar_path, key)
    }

    /// ADD of local archives: unpacked under the destination, as a layer.
    fn add_archives(
        &mut self,
        state: &mut StageState,
        step: &Step,
        archives: &[(PathBuf, archive::Kind)],
        destination: &str,
        owner: Option<(u32, u32)>,
        image_has_dir: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        let dest = destination.trim_end_matches('/');
        let dest = if dest.is_empty() { "/" } else { dest };
        let mut parts = vec!["ADD".to_string(), dest.to_string(), format!("{owner:?}")];
        for (path, _) in archives {
            parts.push(archive::digest(path)?);
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let key = state.key.then(&parts);
        if let Some(image) = self.cached(&key)? {
            return self.reuse(state, image, key);
        }
        let parents = copy::missing_dirs(dest, image_has_dir);
        let store = &self.context.store;
        let _shared = store.lock_shared()?;
        let temp = store.temp_dir("build-add")?;
        let tar_path = temp.path().join("layer.tar");
        let file = std::fs::File::create(&tar_path)
            .with_context(|| format!("creating {}", tar_path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        archive::write_layer(archives, dest, &parents, owner, &mut out)?;
        out.flush().context("writing the layer")?;
        drop(out);
        self.store_layer(state, step, &tar_path, key)
    }

    /// A layer tar made by a step, into the store and onto the stage.
    fn store_layer(
        &mut self,
        state: &mut StageState,
        step: &Step,
        tar_path: &Path,
        key: Key,
    ) -> Result<()> {
        let store = &self.context.store;
        let incoming = Incoming {
            compression: Compression::None,
            blob: None,
            diff_id: None,
        };
        let layer = take_layer(
            store,
            std::fs::File::open(tar_path)?,
            &incoming,
            Keep::Compressed(Compression::Gzip),
            &self.budget()?,
        )
        .context("storing the layer")?;
        let image = assemble(
            store,
            NewImage {
                base: state.image.as_ref(),
                layers: vec![layer],
                config: state.config.clone(),
                earlier: std::mem::take(&mut state.pending),
                created_by: step.text.clone(),
                comment: None,
                author: None,
                build_cache: true,
            },
            &[],
        )?;
        self.made(state, image, key)
    }
}
