//! `rocker build [-t NAME] [-f FILE] CONTEXT`: a Containerfile built step
//! by step. Metadata steps change the config in memory; each RUN is an
//! ordinary container run by `run`'s own code (same runtime, root
//! emulation, network) over the image so far, and committed by `commit`'s
//! code into the next image; each COPY is a layer written from the
//! context. Every step's image is a store image under its id, remembered
//! in the build cache by the step's key, so a second build runs nothing
//! that did not change.

mod copy_step;
mod prune;
mod run_step;

use copy_step::CopyArgs;
pub use prune::{builder_prune_command, cache_mounts_dir, prune_build_cache};
use run_step::remove_dead_builds_containers;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use super::commit::target_names;
use super::image::ImageContext;
use crate::build::cache::{Cache, Key};
use crate::build::containerfile;
use crate::build::ignore::Ignore;
use crate::build::instruction::{self, Instruction, Step};
use crate::build::metadata::{self, Scope};
use crate::build::stages::{self, Plan};
use crate::build::words;
use crate::cli::args::{BuildArgs, PullPolicy};
use crate::container::record::Containers;
use crate::error::StatusError;
use crate::host::config::Config;
use crate::image::assemble::{assemble, NewImage};
use crate::image::layer::ingest::ImageBudget;
use crate::image::manifest::Platform;
use crate::image::store::ImageRecord;
use crate::util::fs::replace_file;

/// Where RUN --mount=type=cache directories live, in the store.
const CACHE_MOUNTS: &str = "build-cache-mounts";

/// docker's exit status for a failed build.
const BUILD_FAILED: i32 = 1;

/// ARGs every build has without --build-arg, and which stay out of the
/// history: the proxy settings.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The Containerfile and the context it is built in (none for `-`).
struct Source {
    text: String,
    context: Option<PathBuf>,
}

fn read_source(args: &BuildArgs) -> Result<Source> {
    let read_stdin = || -> Result<String> {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the Containerfile from standard input")?;
        Ok(text)
    };
    if args.context == "-" {
        return Ok(Source {
            text: read_stdin()?,
            context: None,
        });
    }
    let context = PathBuf::from(&args.context);
    if !context.is_dir() {
        bail!(
            "the build context {} is not a directory: give the directory the Containerfile's \
             COPY reads from, or - to read the Containerfile from standard input",
            context.display()
        );
    }
    let file = match &args.file {
        Some(path) if path.as_os_str() == "-" => {
            return Ok(Source {
                text: read_stdin()?,
                context: Some(context),
            })
        }
        Some(path) => path.clone(),
        None => ["Containerfile", "Dockerfile"]
            .iter()
            .map(|name| context.join(name))
            .find(|path| path.is_file())
            .with_context(|| {
                format!(
                    "{} has no Containerfile or Dockerfile; give one with -f",
                    context.display()
                )
            })?,
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    Ok(Source {
        text,
        context: Some(context),
    })
}

/// `--build-arg NAME=VALUE`, or `NAME` for this environment's value
/// (skipped when unset, as docker does).
fn build_arg_values(given: &[String]) -> BTreeMap<String, String> {
    given
        .iter()
        .filter_map(|arg| match arg.split_once('=') {
            Some((name, value)) => Some((name.to_string(), value.to_string())),
            None => std::env::var(arg).ok().map(|value| (arg.clone(), value)),
        })
        .collect()
}

/// The ARGs a FROM line may use: BuildKit's platform ones, then the ARGs
/// before the first FROM (a --build-arg wins over their defaults).
fn global_args(
    plan: &Plan,
    escape: char,
    build_args: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<BTreeMap<String, String>> {
    let platform = Platform::host();
    let mut platform_text = format!("{}/{}", platform.os, platform.architecture);
    if let Some(variant) = &platform.variant {
        platform_text = format!("{platform_text}/{variant}");
    }
    let mut globals: BTreeMap<String, String> = [
        ("TARGETPLATFORM", platform_text.clone()),
        ("TARGETOS", platform.os.clone()),
        ("TARGETARCH", platform.architecture.clone()),
        (
            "TARGETVARIANT",
            platform.variant.clone().unwrap_or_default(),
        ),
        ("BUILDPLATFORM", platform_text),
        ("BUILDOS", platform.os.clone()),
        ("BUILDARCH", platform.architecture.clone()),
        ("BUILDVARIANT", platform.variant.clone().unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for step in &plan.global_args {
        let Instruction::Arg(text) = &step.instruction else {
            continue;
        };
        let lookup = |name: &str| globals.get(name).cloned();
        for (name, default) in words::pairs(text, escape, false, &lookup)? {
            let value = build_args.get(&name).cloned().or(default);
            if build_args.contains_key(&name) {
                used.insert(name.clone());
            }
            if let Some(value) = value {
                globals.insert(name, value);
            }
        }
    }
    Ok(globals)
}

/// One stage being built.
struct StageState {
    /// The last image made (or the base); None on scratch before a layer.
    image: Option<ImageRecord>,
    /// Its config's `config` as the steps so far left it.
    config: Map<String, Value>,
    /// Metadata steps since `image`, for the history.
    pending: Vec<String>,
    key: Key,
    /// The ARGs in force in this stage.
    args: BTreeMap<String, String>,
    cmd_set: bool,
}

impl StageState {
    fn env_value(&self, name: &str) -> Option<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(Value::as_str)
            .find_map(|entry| {
                let (key, value) = entry.split_once('=')?;
                (key == name).then(|| value.to_string())
            })
    }

    /// A variable as the builder substitutes it: ENV over ARG.
    fn lookup(&self, name: &str) -> Option<String> {
        self.env_value(name)
            .or_else(|| self.args.get(name).cloned())
    }

    /// A step's image is now the stage's.
    fn adopt(&mut self, image: ImageRecord, config: Map<String, Value>, key: Key) {
        self.image = Some(image);
        self.config = config;
        self.pending.clear();
        self.key = key;
    }
}

struct Builder<'a> {
    context: ImageContext,
    host_config: Config,
    args: &'a BuildArgs,
    escape: char,
    source: Option<PathBuf>,
    ignore: Ignore,
    cache: Cache,
    build_args: BTreeMap<String, String>,
    globals: BTreeMap<String, String>,
    used_args: BTreeSet<String>,
    /// Each stage's image, once built.
    built: Vec<Option<ImageRecord>>,
    /// The files of the images COPY --from read, each laid out once per
    /// build (by image id).
    trees: BTreeMap<String, crate::image::store::TempDir>,
    total: usize,
    done: usize,
}

pub fn build_command(args: BuildArgs) -> Result<i32> {
    // docker's status for any build that fails, the Containerfile's and
    // the context's mistakes too, and a step's container that could not
    // start (run's own 125, 126 or 127 stay inside the message).
    build(args).map_err(|err| match err.downcast_ref::<StatusError>() {
        Some(status) if status.status == BUILD_FAILED => err,
        _ => StatusError::new(BUILD_FAILED, format!("{err:#}")).into(),
    })
}

fn build(args: BuildArgs) -> Result<i32> {
    let source = read_source(&args)?;
    let file = containerfile::parse(&source.text)?;
    let steps = file
        .lines
        .iter()
        .map(|line| instruction::interpret(line, file.escape))
        .collect::<Result<Vec<_>>>()?;
    let plan = stages::plan(steps)?;
    let build_args = build_arg_values(&args.build_args);
    let mut used_args = BTreeSet::new();
    let globals = global_args(&plan, file.escape, &build_args, &mut used_args)?;
    let target = plan.target(args.target.as_deref())?;
    let image_of = |step: &Step| match &step.instruction {
        Instruction::From { image, .. } => {
            words::expand(image, file.escape, &|name| globals.get(name).cloned())
                .unwrap_or_else(|_| image.clone())
        }
        _ => String::new(),
    };
    let needed = plan.needed(target, &image_of);
    let names: Vec<String> = args
        .tags
        .iter()
        .map(|tag| target_names(Some(tag)))
        .collect::<Result<Vec<_>>>()?
        .concat();
    let context = ImageContext::open()?;
    remove_dead_builds_containers(&Containers::open(&context.dirs)?);
    let ignore = match &source.context {
        Some(dir) => Ignore::of_context(dir)?,
        None => Ignore::default(),
    };
    let mut builder = Builder {
        host_config: Config::load(&context.dirs.config)?,
        cache: Cache::open(context.store.root()),
        context,
        args: &args,
        escape: file.escape,
        source: source.context,
        ignore,
        build_args,
        globals,
        used_args,
        built: vec![None; plan.stages.len()],
        trees: BTreeMap::new(),
        total: needed.iter().map(|i| 1 + plan.stages[*i].steps.len()).sum(),
        done: 0,
    };
    for index in needed {
        let image = builder.stage(&plan, index, index == target)?;
        builder.built[index] = Some(image);
    }
    let image = builder.built[target].clone().expect("the target was built");
    if !names.is_empty() {
        builder.context.store.put_images(
            names
                .iter()
                .map(|name| ImageRecord {
                    name: name.clone(),
                    build_cache: false,
                    ..image.clone()
                })
                .collect(),
        )?;
    }
    let unused: Vec<&String> = builder
        .build_args
        .keys()
        .filter(|name| !builder.used_args.contains(*name) && !PROXY_ARGS.contains(&name.as_str()))
        .collect();
    if !unused.is_empty() {
        eprintln!(
            "rocker: warning: the build-args {} were not consumed (no ARG declares them)",
            unused
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(path) = &args.iidfile {
        replace_file(path, image.id().to_string().as_bytes(), 0o644)
            .with_context(|| format!("writing the image id to {}", path.display()))?;
    }
    if !args.quiet {
        for name in &names {
            println!("Successfully tagged {name}");
        }
    }
    println!("{}", image.id());
    Ok(0)
}

impl Builder<'_> {
    fn progress(&self, line: &str) {
        if !self.args.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn step_line(&mut self, step: &Step) -> String {
        self.done += 1;
        let line = format!("STEP {}/{}: {}", self.done, self.total, step.text);
        self.progress(&line);
        line
    }

    /// The image config's `config`, every field of it as stored (a typed
    /// read would drop those rocker does not model, such as OnBuild).
    fn image_config(&self, image: &ImageRecord) -> Result<Map<String, Value>> {
        let config: Value = serde_json::from_slice(&self.context.store.read_blob(&image.config)?)
            .with_context(|| format!("reading the config of {}", image.name))?;
        Ok(config
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }

    /// The image `name` names, from the store, pulled when it is missing
    /// (or always, with --pull): a FROM's, or a COPY --from's.
    fn image_named(&self, name: &str) -> Result<ImageRecord> {
        let policy = match self.args.pull {
            true => PullPolicy::Always,
            false => PullPolicy::Missing,
        };
        let (_lock, record) = super::run::locked_image(
            &self.context,
            &self.host_config,
            name,
            policy,
            self.args.quiet,
            None,
        )?;
        Ok(record)
    }

    fn budget(&self) -> Result<ImageBudget> {
        Ok(ImageBudget::new(
            self.host_config.max_layer_size()?,
            self.host_config.max_image_size()?,
        ))
    }

    /// Builds stage `index` of `plan` and returns its image.
    fn stage(&mut self, plan: &Plan, index: usize, is_target: bool) -> Result<ImageRecord> {
        let stage = &plan.stages[index];
        let line = self.step_line(&stage.from);
        let mut state = self
            .from(plan, index, &stage.from)
            .with_context(|| line.clone())?;
        // The base's ONBUILD triggers run first, and are not inherited.
        let triggers: Vec<String> = state
            .config
            .remove("OnBuild")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        for trigger in triggers {
            let file = containerfile::parse(&trigger)?;
            for line in &file.lines {
                let step = instruction::interpret(line, self.escape)
                    .with_context(|| format!("the base image's ONBUILD {trigger}"))?;
                self.total += 1;
                let text = self.step_line(&step);
                self.step(plan, index, &mut state, &step)
                    .with_context(|| text)?;
            }
        }
        for step in &stage.steps {
            let text = self.step_line(step);
            self.step(plan, index, &mut state, step)
                .with_context(|| text)?;
        }
        if is_target && !self.args.labels.is_empty() {
            let pairs: Vec<(String, String)> = self
                .args
                .labels
                .iter()
                .map(|label| match label.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (label.clone(), String::new()),
                })
                .collect();
            crate::image::config_changes::add_labels(&mut state.config, &pairs);
            let text = format!(
                "LABEL {}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            state.key = state.key.then(&[&text]);
            state.pending.push(text);
        }
        self.finish(state)
    }

    /// The stage's start: an earlier stage's image, scratch, or an image
    /// from the store (pulled if need be, or always with --pull).
    fn from(&mut self, plan: &Plan, index: usize, step: &Step) -> Result<StageState> {
        let Instruction::From {
            image, platform, ..
        } = &step.instruction
        else {
            unreachable!("a stage starts with FROM");
        };
        let globals = &self.globals;
        let image = words::expand(image, self.escape, &|name| globals.get(name).cloned())?;
        if let Some(platform) = platform {
            let host = Platform::host();
            let wanted = words::expand(platform, self.escape, &|name| globals.get(name).cloned())?;
            if !wanted.starts_with(&format!("{}/{}", host.os, host.architecture)) {
                bail!(
                    "--platform={wanted}: rocker builds for this machine only ({}/{})",
                    host.os,
                    host.architecture
                );
            }
        }
        let base = if let Some(earlier) = plan.stage_named(&image, index) {
            Some(
                self.built[earlier]
                    .clone()
                    .with_context(|| format!("stage {image} was not built"))?,
            )
        } else if image == "scratch" {
            None
        } else {
            Some(self.image_named(&image)?)
        };
        let config = match &base {
            Some(image) => self.image_config(image)?,
            None => Map::new(),
        };
        let key = Key::of_base(
            &base
                .as_ref()
                .map_or("scratch".to_string(), |i| i.id().to_string()),
        );
        Ok(StageState {
            image: base,
            config,
            pending: vec![],
            key,
            args: BTreeMap::new(),
            cmd_set: false,
        })
    }

    fn step(
        &mut self,
        plan: &Plan,
        index: usize,
        state: &mut StageState,
        step: &Step,
    ) -> Result<()> {
        match &step.instruction {
            Instruction::Arg(text) => self.arg(state, text),
            Instruction::Run {
                command,
                mounts,
                network,
            } => self.run(state, step, command, mounts, network.as_deref()),
            Instruction::Copy {
                add,
                sources,
                destination,
                from,
                chown,
                chmod,
                checksum,
                heredocs,
            } => {
                let what = CopyArgs {
                    sources,
                    destination,
                    chown: chown.as_deref(),
                    chmod: chmod.as_deref(),
                };
                if !heredocs.is_empty() {
                    return self.copy_heredocs(state, step, heredocs, what);
                }
                if *add && sources.iter().any(|s| crate::build::url::is_url(s)) {
                    return self.add_urls(state, step, what, checksum.as_deref());
                }
                let from = match from {
                    Some(from) => {
                        let name = words::expand(from, self.escape, &|name| state.lookup(name))?;
                        Some(self.tree_of(plan, index, &name)?)
                    }
                    None => None,
                };
                self.copy(state, step, *add, what, from)
            }
            Instruction::From { .. } => unreachable!("FROM starts a stage"),
            other => {
                let lookup = |name: &str| state.lookup(name);
                let mut cmd_set = state.cmd_set;
                let mut config = state.config.clone();
                let mut scope = Scope {
                    escape: self.escape,
                    lookup: &lookup,
                    cmd_set: &mut cmd_set,
                };
                let text = metadata::apply(&mut config, other, &mut scope)?
                    .expect("every other instruction is metadata");
                state.config = config;
                state.cmd_set = cmd_set;
                state.key = state.key.then(&[&text]);
                state.pending.push(text);
                Ok(())
            }
        }
    }

    /// ARG NAME[=DEFAULT]: the --build-arg's value, else the default, else
    /// the global ARG's value.
    fn arg(&mut self, state: &mut StageState, text: &str) -> Result<()> {
        let lookup = |name: &str| state.lookup(name);
        let declared = words::pairs(text, self.escape, false, &lookup)?;
        for (name, default) in declared {
            if name.is_empty() {
                bail!("ARG takes NAME[=DEFAULT]");
            }
            let value = match self.build_args.get(&name) {
                Some(value) => {
                    self.used_args.insert(name.clone());
                    Some(value.clone())
                }
                None => default.or_else(|| self.globals.get(&name).cloned()),
            };
            // The value is part of the key: a RUN after it sees it.
            state.key = state
                .key
                .then(&["ARG", &name, value.as_deref().unwrap_or("")]);
            if let Some(value) = value {
                state.args.insert(name, value);
            }
        }
        Ok(())
    }

    fn cached(&self, key: &Key) -> Result<Option<ImageRecord>> {
        if self.args.no_cache {
            return Ok(None);
        }
        let Some(id) = self.cache.get(key)? else {
            return Ok(None);
        };
        // An image pruned since is a miss.
        Ok(self.context.find_one(&id).ok().flatten())
    }

    fn reuse(&self, state: &mut StageState, image: ImageRecord, key: Key) -> Result<()> {
        self.progress(&format!("--> CACHED {}", short(&image)));
        let config = self.image_config(&image)?;
        state.adopt(image, config, key);
        Ok(())
    }

    fn made(&self, state: &mut StageState, image: ImageRecord, key: Key) -> Result<()> {
        self.cache.put(&key, &image.id().to_string())?;
        self.progress(&format!("--> {}", short(&image)));
        let config = state.config.clone();
        state.adopt(image, config, key);
        Ok(())
    }

    /// The stage's image: the last step's, or one more for metadata steps
    /// after it (cached too, so an unchanged build makes the same image).
    fn finish(&mut self, mut state: StageState) -> Result<ImageRecord> {
        if state.pending.is_empty() {
            if let Some(image) = state.image.take() {
                return Ok(image);
            }
        }
        let key = state.key.then(&["image"]);
        if let Some(image) = self.cached(&key)? {
            return Ok(image);
        }
        let mut earlier = std::mem::take(&mut state.pending);
        let created_by = earlier.pop().unwrap_or_else(|| "FROM scratch".to_string());
        let image = assemble(
            &self.context.store,
            NewImage {
                base: state.image.as_ref(),
                layers: vec![],
                config: state.config,
                earlier,
                created_by,
                comment: None,
                author: None,
                build_cache: true,
            },
            &[],
        )?;
        self.cache.put(&key, &image.id().to_string())?;
        Ok(image)
    }
}

/// The first 12 hex digits of an image's id, as progress shows it.
fn short(image: &ImageRecord) -> String {
    let id = image.id().to_string();
    let hex = id.strip_prefix("sha256:").unwrap_or(&id);
    hex.chars().take(12).collect()
}
