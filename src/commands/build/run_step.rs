//! A build's RUN step: an ordinary container, run by `run`'s own code
//! (same runtime, root emulation and network) over the image so far, with
//! its cache mounts, then committed by `commit`'s code into the next
//! image and removed.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{Builder, StageState, BUILD_FAILED, CACHE_MOUNTS, PROXY_ARGS};
use crate::build::instruction::{Command, Step};
use crate::build::metadata;
use crate::build::mounts::{cache_dir_name, RunMount};
use crate::cli::args::RunArgs;
use crate::commands::commit::{commit_container, Commit};
use crate::container::record::{Containers, State};
use crate::error::StatusError;
use crate::util::lock::FileLock;

impl Builder<'_> {
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

    pub(super) fn run(
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
            // The image's VOLUMEs stay part of the step's layer: what RUN
            // writes there is kept, as BuildKit keeps it.
            "--image-volume".into(),
            "ignore".into(),
            // Committed, then removed: no sync of its writes is of use (as
            // buildah mounts its steps), and dpkg's fsyncs cost a RUN dear.
            "--volatile-root".into(),
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
            crate::commands::run::run(run_args).context("running the step's container")?
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
}

/// The step containers of builds that were killed (their maker, the
/// build's own process, is gone, and they no longer run): removed, as the
/// build would have removed them.
pub(super) fn remove_dead_builds_containers(containers: &Containers) {
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
            .and_then(|lock| containers.remove_with_volumes(&record.id, &lock));
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
        self.containers.remove_with_volumes(id.trim(), &lock)?;
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

/// The label a build's step containers carry, so that the containers of
/// a build killed outright can be found and removed by the next.
const STEP_LABEL: &str = "rocker.build.step";
