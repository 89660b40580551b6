//! `rocker build [-t NAME] [-f FILE] CONTEXT`: a Containerfile built step
//! by step. Metadata steps change the config in memory; each RUN is an
//! ordinary container run by `run`'s own code (same runtime, root
//! emulation, network) over the image so far, and committed by `commit`'s
//! code into the next image; each COPY is a layer written from the
//! context. Every step's image is a store image under its id, remembered
//! in the build cache by the step's key, so a second build runs nothing
//! that did not change.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use super::commit::{commit_container, target_names, Commit};
use super::image::ImageContext;
use crate::build::archive;
use crate::build::cache::{Cache, Key};
use crate::build::containerfile;
use crate::build::copy;
use crate::build::ignore::Ignore;
use crate::build::instruction::{self, Command, Instruction, Step};
use crate::build::metadata::{self, Scope};
use crate::build::mounts::{cache_dir_name, RunMount};
use crate::build::stages::{self, Plan};
use crate::build::words;
use crate::cli::args::{BuildArgs, PullPolicy, RunArgs};
use crate::container::record::{Containers, State};
use crate::error::StatusError;
use crate::host::config::Config;
use crate::image::assemble::{assemble, NewImage};
use crate::image::layer::ingest::{take_layer, ImageBudget, Incoming, Keep};
use crate::image::manifest::{Compression, Platform};
use crate::image::store::ImageRecord;
use crate::rootfs::backing::layers;
use crate::util::fs::replace_file;
use crate::util::lock::FileLock;

/// The label a build's step containers carry, so that the containers of
/// a build killed outright can be found and removed by the next.
const STEP_LABEL: &str = "rocker.build.step";

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
    // the context's mistakes too.
    build(args).map_err(|err| match err.downcast_ref::<StatusError>() {
        Some(_) => err,
        None => StatusError::new(BUILD_FAILED, format!("{err:#}")).into(),
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
            let policy = match self.args.pull {
                true => PullPolicy::Always,
                false => PullPolicy::Missing,
            };
            let (_lock, record) = super::run::locked_image(
                &self.context,
                &self.host_config,
                &image,
                policy,
                self.args.quiet,
            )?;
            Some(record)
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
                if !heredocs.is_empty() {
                    return self.copy_heredocs(
                        state,
                        step,
                        heredocs,
                        sources,
                        destination,
                        chown.as_deref(),
                        chmod.as_deref(),
                    );
                }
                if *add && sources.iter().any(|s| crate::build::url::is_url(s)) {
                    return self.add_urls(
                        state,
                        step,
                        sources,
                        destination,
                        checksum.as_deref(),
                        chown.as_deref(),
                        chmod.as_deref(),
                    );
                }
                let from = match from {
                    Some(from) => {
                        let name = words::expand(from, self.escape, &|name| state.lookup(name))?;
                        Some(self.tree_of(plan, index, &name)?)
                    }
                    None => None,
                };
                self.copy(
                    state,
                    step,
                    *add,
                    sources,
                    destination,
                    from,
                    chown.as_deref(),
                    chmod.as_deref(),
                )
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

    /// The environment a RUN sees: the config's, then the ARGs in force
    /// that no ENV overrides, then the proxy build-args.
    fn run_env(&self, state: &StageState) -> Vec<String> {
        let mut env: Vec<String> = state
            .config
            .get("Env")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        for (name, value) in &state.args {
            if state.env_value(name).is_none() {
                env.push(format!("{name}={value}"));
            }
        }
        for name in PROXY_ARGS {
            if let (Some(value), false) =
                (self.build_args.get(*name), state.args.contains_key(*name))
            {
                env.push(format!("{name}={value}"));
            }
        }
        env
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

    fn run(
        &mut self,
        state: &mut StageState,
        step: &Step,
        command: &Command,
        mounts: &[String],
        network: Option<&str>,
    ) -> Result<()> {
        let mounts = mounts
            .iter()
            .map(|text| crate::build::mounts::parse(text))
            .collect::<Result<Vec<_>>>()?;
        let argv = metadata::command_words(&state.config, command);
        let env = self.run_env(state);
        let network = network.unwrap_or(&self.args.network).to_string();
        let network = match network.as_str() {
            "default" => "slirp4netns".to_string(),
            "none" | "host" => network,
            other => bail!("--network={other}: a build step takes default, none or host"),
        };
        let user = state
            .config
            .get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let workdir = state
            .config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let key = state.key.then(&[
            "RUN",
            &serde_json::to_string(&argv)?,
            &serde_json::to_string(&env)?,
            &user,
            &workdir,
            &network,
            &format!("{mounts:?}"),
        ]);
        if let Some(image) = self.cached(&key)? {
            return self.reuse(state, image, key);
        }
        let Some(base) = state.image.clone() else {
            bail!("RUN needs an image to run in: FROM scratch has no files (COPY some in first)");
        };
        let scratch = self.context.store.temp_dir("build-run")?;
        let cidfile = scratch.path().join("cid");
        let mut words: Vec<String> = vec![
            "--label".into(),
            format!(
                "{STEP_LABEL}={}",
                step.text.chars().take(200).collect::<String>()
            ),
            "--pull".into(),
            "never".into(),
            "--quiet".into(),
            "--cidfile".into(),
            cidfile.display().to_string(),
            "--network".into(),
            network,
            "--entrypoint".into(),
            String::new(),
        ];
        for entry in &env {
            words.extend(["-e".to_string(), entry.clone()]);
        }
        if !workdir.is_empty() {
            words.extend(["-w".to_string(), workdir]);
        }
        if !user.is_empty() {
            words.extend(["-u".to_string(), user]);
        }
        // Held until the step ends: sharing=locked caches, one step each.
        let mut cache_locks = vec![];
        for mount in &mounts {
            match mount {
                RunMount::Cache {
                    target,
                    id,
                    locked,
                    readonly,
                } => {
                    let dir = self
                        .context
                        .store
                        .root()
                        .join(CACHE_MOUNTS)
                        .join(cache_dir_name(id));
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating the cache mount {}", dir.display()))?;
                    if *locked {
                        cache_locks.push(FileLock::exclusive(&dir.with_extension("lock"))?);
                    }
                    let options = if *readonly { ":ro" } else { "" };
                    words.extend([
                        "-v".to_string(),
                        format!("{}:{target}{options}", dir.display()),
                    ]);
                }
                RunMount::Tmpfs { target } => words.extend(["--tmpfs".to_string(), target.clone()]),
            }
        }
        words.push(base.id().to_string());
        words.extend(argv.iter().cloned());
        let run_args = RunArgs::from_words(&words).map_err(|err| anyhow::anyhow!("{err}"))?;
        let containers = Containers::open(&self.context.dirs)?;
        let mut removal = ContainerRemoval {
            containers: &containers,
            cidfile: &cidfile,
        };
        let status = {
            let _quiet = match self.args.quiet {
                true => Some(QuietOutput::start(scratch.path())?),
                false => None,
            };
            super::run::run(run_args).context("running the step's container")?
        };
        if status != 0 {
            if self.args.quiet {
                // What -q kept back is what explains the failure.
                let output = std::fs::read(scratch.path().join("output")).unwrap_or_default();
                let _ = std::io::stderr().write_all(&output);
            }
            return Err(StatusError::new(
                BUILD_FAILED,
                format!(
                    "the command {} exited with status {status}",
                    serde_json::to_string(&argv)?
                ),
            )
            .into());
        }
        let id = std::fs::read_to_string(&cidfile).context("reading the step container's id")?;
        let record = containers.find(id.trim())?;
        let image = commit_container(
            &self.context,
            &containers,
            &record,
            &base,
            Commit {
                config: state.config.clone(),
                earlier: std::mem::take(&mut state.pending),
                created_by: step.text.clone(),
                comment: None,
                author: None,
                pause: false,
                build_cache: true,
            },
            &[],
        )?;
        removal.now()?;
        self.made(state, image, key)
    }

    /// The files of what COPY --from=`name` names (an earlier stage, or an
    /// image), laid out in a directory of the store's temp dir.
    fn tree_of(&mut self, plan: &Plan, index: usize, name: &str) -> Result<PathBuf> {
        let image = match plan.stage_named(name, index) {
            Some(stage) => self.built[stage]
                .clone()
                .with_context(|| format!("stage {name} was not built"))?,
            None => {
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
                )?;
                record
            }
        };
        let id = image.id().to_string();
        if let Some(tree) = self.trees.get(&id) {
            return Ok(tree.path().join("root"));
        }
        let store = &self.context.store;
        let temp = store.temp_dir("build-from")?;
        {
            let _shared = store.lock_shared()?;
            let layers = super::run::layers_of(&self.context, &image)?;
            let layers: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
            crate::rootfs::backing::copy::flatten(&layers, &temp.path().join("root"))
                .with_context(|| format!("laying out the files of {name} for COPY --from"))?;
        }
        let root = temp.path().join("root");
        self.trees.insert(id, temp);
        Ok(root)
    }

    /// ADD of URLs: each fetched now into a directory the step copies from.
    #[allow(clippy::too_many_arguments)]
    fn add_urls(
        &mut self,
        state: &mut StageState,
        step: &Step,
        sources: &[String],
        destination: &str,
        checksum: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
    ) -> Result<()> {
        let expand = |text: &str| words::expand(text, self.escape, &|name| state.lookup(name));
        let temp = self.context.store.temp_dir("build-url")?;
        let root = temp.path().join("fetched");
        std::fs::create_dir(&root)?;
        let limit = self.host_config.max_layer_size()?;
        let mut names = vec![];
        for source in sources {
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
        self.copy(
            state,
            step,
            false,
            &names,
            destination,
            Some(root),
            chown,
            chmod,
        )
    }

    /// `COPY <<EOF /path`: each here-document a file of that text (taken
    /// as written: its variables are not expanded).
    #[allow(clippy::too_many_arguments)]
    fn copy_heredocs(
        &mut self,
        state: &mut StageState,
        step: &Step,
        heredocs: &[crate::build::containerfile::Heredoc],
        sources: &[String],
        destination: &str,
        chown: Option<&str>,
        chmod: Option<&str>,
    ) -> Result<()> {
        let temp = self.context.store.temp_dir("build-heredoc")?;
        let root = temp.path().join("docs");
        std::fs::create_dir(&root)?;
        let mut names = vec![];
        for source in sources {
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
        self.copy(
            state,
            step,
            false,
            &names,
            destination,
            Some(root),
            chown,
            chmod,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        state: &mut StageState,
        step: &Step,
        add: bool,
        sources: &[String],
        destination: &str,
        from: Option<PathBuf>,
        chown: Option<&str>,
        chmod: Option<&str>,
    ) -> Result<()> {
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
            Some(image) => super::run::layers_of(&self.context, image)?,
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

/// `rocker builder prune`: the build cache's images that no name holds,
/// the cache's entries for them, its cache mounts, and the layers only
/// they used.
pub fn builder_prune_command() -> Result<i32> {
    let context = ImageContext::open()?;
    let removed = prune_build_cache(&context.store)?;
    let (layers, _) = context.store.collect_garbage(super::image::pins)?;
    println!(
        "Deleted {removed} build cache images, {layers} layers only they used, and the RUN cache \
         mounts"
    );
    Ok(0)
}

/// Removes the build cache but for the layers (garbage collection's job
/// after): the steps' images no name holds, their cache entries, the cache
/// mounts. Returns how many images went.
pub fn prune_build_cache(store: &crate::image::store::Store) -> Result<usize> {
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
pub fn cache_mounts_dir(store: &crate::image::store::Store) -> PathBuf {
    store.root().join(CACHE_MOUNTS)
}

/// The first 12 hex digits of an image's id, as progress shows it.
fn short(image: &ImageRecord) -> String {
    let id = image.id().to_string();
    let hex = id.strip_prefix("sha256:").unwrap_or(&id);
    hex.chars().take(12).collect()
}

/// `--chown=USER[:GROUP]` as ids, names looked up in the image's account
/// files; a user alone gives its id as the group too, as docker does.
fn owner_in(layer_dirs: &[PathBuf], chown: &str) -> Result<(u32, u32)> {
    let (user, group) = match chown.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (chown, None),
    };
    let read = |path: &str| layers::read_from_layers(layer_dirs, path, 4 << 20);
    let id_in = |file: &str, name: &str, field: usize| -> Result<u32> {
        if let Ok(id) = name.parse::<u32>() {
            return Ok(id);
        }
        let text = read(file)?.unwrap_or_default();
        text.lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.first() == Some(&name))
                    .then(|| fields.get(field)?.parse().ok())
                    .flatten()
            })
            .with_context(|| format!("--chown={chown}: {name} is not in the image's {file}"))
    };
    let uid = id_in("/etc/passwd", user, 2)?;
    let gid = match group {
        Some(group) => id_in("/etc/group", group, 2)?,
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

/// The step containers of builds that were killed (their maker, the
/// build's own process, is gone, and they no longer run): removed, as the
/// build would have removed them.
fn remove_dead_builds_containers(containers: &Containers) {
    let Ok(records) = containers.list() else {
        return;
    };
    for record in records {
        if !record.labels.contains_key(STEP_LABEL)
            || crate::rootfs::backing::container_dir::maker_alive(&containers.dir(&record.id))
            || matches!(containers.state(&record.id), Ok(State::Running(_)) | Err(_))
        {
            continue;
        }
        let removed = containers
            .lock()
            .and_then(|lock| containers.remove(&record.id, &lock));
        if let Err(err) = removed {
            eprintln!("rocker: warning: removing a killed build's container: {err:#}");
        }
    }
}

/// Removes a step's container (named in the cid file once recorded),
/// now or when the step fails.
struct ContainerRemoval<'a> {
    containers: &'a Containers,
    cidfile: &'a Path,
}

impl ContainerRemoval<'_> {
    fn remove(&self) -> Result<()> {
        let Ok(id) = std::fs::read_to_string(self.cidfile) else {
            return Ok(());
        };
        let lock = self.containers.lock()?;
        self.containers.remove(id.trim(), &lock)?;
        let _ = std::fs::remove_file(self.cidfile);
        Ok(())
    }

    fn now(&mut self) -> Result<()> {
        self.remove()
    }
}

impl Drop for ContainerRemoval<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.remove() {
            eprintln!("rocker: warning: removing a build step's container: {err:#}");
        }
    }
}

/// `-q`: the steps' output goes to a file instead of ours while a step
/// runs (fds 1 and 2 point there), and comes back after.
struct QuietOutput {
    saved_out: std::os::fd::OwnedFd,
    saved_err: std::os::fd::OwnedFd,
}

impl QuietOutput {
    fn start(dir: &Path) -> Result<QuietOutput> {
        use std::os::fd::AsFd;
        let _ = std::io::stdout().flush();
        let log = std::fs::File::create(dir.join("output"))?;
        let saved_out = nix::unistd::dup(std::io::stdout().as_fd())?;
        let saved_err = nix::unistd::dup(std::io::stderr().as_fd())?;
        nix::unistd::dup2_stdout(&log)?;
        nix::unistd::dup2_stderr(&log)?;
        Ok(QuietOutput {
            saved_out,
            saved_err,
        })
    }
}

impl Drop for QuietOutput {
    fn drop(&mut self) {
        let _ = nix::unistd::dup2_stdout(&self.saved_out);
        let _ = nix::unistd::dup2_stderr(&self.saved_err);
    }
}
